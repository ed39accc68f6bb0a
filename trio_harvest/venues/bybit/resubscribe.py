"""Resubscribing broken book topics one topic at a time, paced: no resubscribe storm.

A Bybit book whose ``u`` chain broke gets a fresh snapshot only by unsubscribing and
subscribing *that topic* again. When many books break at once (a hiccup on the venue's side
breaks them all), a naive client sends one request pair per topic at once. ``Resubscriber``
instead:

- keeps each broken topic once (a topic already waiting or in flight is not queued again; its
  further breaks cost nothing);
- sends them as ``unsubscribe`` then ``subscribe`` requests of at most
  ``Category.args_per_request`` topics (10 on spot), one client message per ``interval``
  seconds at most (the category's client message pace), oldest break first;
- lets a topic be resubscribed again only ``cooldown`` seconds after its last resubscribe,
  doubling with every resubscribe (up to ``max_cooldown``) until the topic has stayed healthy
  for ``max_cooldown`` after a recovery, so a book that breaks again and again costs fewer and
  fewer requests; a request whose snapshot never came (``timeout``) is retried.

Time is a plain number given by the caller (the trio side passes ``trio.current_time()``; tests a
counter). Pure: no trio, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import control
from .facts import Category


@dataclass(slots=True)
class _Topic:
    attempts: int = 0  # resubscribes since the topic last recovered
    last_at: float = float("-inf")  # when it was last resubscribed
    recovered_at: float = float("-inf")  # when its last snapshot came
    in_flight: bool = False


@dataclass(frozen=True, slots=True)
class Due:
    """What to send now (in order) and the topics it resubscribes (their books start over)."""

    messages: list[str]
    topics: list[str]


@dataclass(slots=True)
class ResubscribeStats:
    breaks: int = 0  # breaks reported
    coalesced: int = 0  # breaks of a topic already waiting or in flight (cost nothing)
    requests: int = 0  # client messages sent (unsubscribe and subscribe each count)
    topics: int = 0  # topic resubscriptions
    timeouts: int = 0  # resubscriptions whose snapshot never came


@dataclass(slots=True)
class Resubscriber:
    category: Category
    interval: float = 0.0  # seconds between two client messages (0: the category's pace)
    cooldown: float = 5.0
    max_cooldown: float = 300.0
    timeout: float = 30.0  # a resubscribed topic without a snapshot by then is retried
    first_id: int = 1_000_000  # request ids (apart from the connection's own)
    stats: ResubscribeStats = field(default_factory=ResubscribeStats)
    _topics: dict[str, _Topic] = field(default_factory=dict)
    _waiting: dict[str, float] = field(default_factory=dict)  # topic -> broke at (ordered)
    _next_send: float = float("-inf")
    _next_id: int = 0
    _subscribe_next: list[str] = field(default_factory=list)  # unsubscribed, to subscribe

    def __post_init__(self) -> None:
        if self.interval <= 0:
            self.interval = 1.0 / self.category.messages_per_second
        self._next_id = self.first_id

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def broke(self, topic: str, now: float) -> None:
        """The book of ``topic`` broke: resubscribe it (once, whatever the number of breaks)."""
        self.stats.breaks += 1
        t = self._topics.setdefault(topic, _Topic())
        if topic in self._waiting or (t.in_flight and now - t.last_at < self.timeout):
            self.stats.coalesced += 1
            return
        if t.in_flight:  # its snapshot never came
            self.stats.timeouts += 1
            t.in_flight = False
        elif now - t.recovered_at > self.max_cooldown:  # healthy for long: a fresh start
            t.attempts = 0
        self._waiting[topic] = now

    def recovered(self, topic: str, now: float) -> None:
        """A snapshot of ``topic`` arrived: its book is live again."""
        t = self._topics.get(topic)
        if t is not None:
            t.in_flight = False
            t.recovered_at = now

    def forget(self, topic: str) -> None:
        """``topic`` is no longer subscribed (a delisting): nothing more to do for it."""
        self._topics.pop(topic, None)
        self._waiting.pop(topic, None)
        if topic in self._subscribe_next:
            self._subscribe_next.remove(topic)

    def _ready_at(self, topic: str) -> float:
        t = self._topics[topic]
        if not t.attempts:
            return float("-inf")
        wait: float = min(self.max_cooldown, self.cooldown * 2.0 ** (t.attempts - 1))
        return t.last_at + wait

    def next_at(self) -> float | None:
        """When ``due`` may next have something to send (None: nothing waits)."""
        if self._subscribe_next:
            return self._next_send
        if not self._waiting:
            return None
        ready = min(self._ready_at(topic) for topic in self._waiting)
        return max(ready, self._next_send)

    def due(self, now: float) -> Due:
        """At most one message, if the pace allows one now: the ``unsubscribe`` of the oldest
        ready topics (``Due.topics``: their books start over now), then, one interval later,
        their ``subscribe`` (which brings each a fresh snapshot)."""
        if now < self._next_send:
            return Due([], [])
        batch = self._subscribe_next
        if batch:
            self._subscribe_next = []
            return self._send(now, control.SUBSCRIBE, batch, [])
        batch = [topic for topic in self._waiting if self._ready_at(topic) <= now]
        batch = batch[: self.category.args_per_request]
        if not batch:
            return Due([], [])
        for topic in batch:
            del self._waiting[topic]
            t = self._topics[topic]
            t.attempts += 1
            t.last_at = now
            t.in_flight = True
        self._subscribe_next = batch
        self.stats.topics += len(batch)
        return self._send(now, control.UNSUBSCRIBE, batch, batch)

    def _send(self, now: float, op: str, batch: list[str], reset: list[str]) -> Due:
        message = control.request(op, batch, self._next_id)
        self._next_id += 1
        self._next_send = now + self.interval
        self.stats.requests += 1
        return Due([message], reset)
