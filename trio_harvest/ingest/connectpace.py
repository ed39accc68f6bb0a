"""Connection attempts paced to a venue's per-IP limit: at most N opens in any W seconds.

Owns one rule. ``AttemptWindow`` (pure: no trio, no I/O) remembers when the last N attempts
started and says when the next may start; ``share`` divides a host's limit between the worker
processes that share its IP; ``paced`` is the ``ConnectFn`` that waits its turn before each
attempt, in arrival order. Every socket a process opens to the venue (each connection, its
reconnects, the 24 h handover's replacements) goes through the one ``paced`` of its venue, so a
reconnect storm (the network came back, 20 sockets at once) cannot exceed the venue's limit
and earn an IP ban. Never opens a socket itself and never retries (the caller's backoff does).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ..ratelimit import RateLimitedLog
from .transport import ConnectFn, MessageSource

log = logging.getLogger(__name__)
SLOW_TURN_S = 1.0  # an attempt held longer than this is logged (once a minute at most)
# the venue counts handshakes as they arrive, and the network delays each by its own amount: the
# window is kept this much longer than the venue's, so jitter cannot push one over the limit
MARGIN = 0.2

class AttemptWindow:
    """At most ``attempts`` attempts start in any ``seconds``-long window (a sliding window: the
    times of the last ``attempts`` starts)."""

    __slots__ = ("attempts", "seconds", "started", "waited")

    def __init__(self, attempts: int, seconds: float) -> None:
        if attempts < 1 or not seconds > 0:
            raise ValueError(f"need attempts >= 1 and seconds > 0, got {attempts}, {seconds}")
        self.attempts = attempts
        self.seconds = float(seconds)
        self.started: deque[float] = deque(maxlen=attempts)
        self.waited = 0.0  # seconds attempts spent waiting for their turn, in total

    def next_at(self, now: float) -> float:
        """The earliest time the next attempt may start (``now`` if at once)."""
        if len(self.started) < self.attempts:
            return now
        return max(now, self.started[0] + self.seconds)

    def take(self, now: float) -> None:
        """Record an attempt starting at ``now`` (which must not be before ``next_at``)."""
        self.started.append(now)


def share(limit: tuple[int, float], processes: int) -> tuple[int, float]:
    """One process's part of a host's ``(attempts, seconds)`` limit when ``processes`` share the
    IP: the attempts divided, so that together they never exceed it in any window. With fewer
    attempts than processes each gets one per widened window: the host's rate on average (the
    processes do not coordinate, so their first attempts may still meet)."""
    attempts, seconds = limit
    processes = max(1, processes)
    if attempts >= processes:
        return attempts // processes, seconds
    return 1, seconds * math.ceil(processes / attempts)


def window_for(limit: tuple[int, float], processes: int = 1) -> AttemptWindow:
    """The window one of ``processes`` paces its attempts with: its ``share`` of the venue's
    ``limit``, the window ``MARGIN`` longer."""
    attempts, seconds = share(limit, processes)
    return AttemptWindow(attempts, seconds * (1 + MARGIN))


def paced(connect: ConnectFn, window: AttemptWindow) -> ConnectFn:
    """``connect``, each attempt first waiting until ``window`` allows it (callers in arrival
    order: a ``trio.Lock`` is fair). The time is trio's, so tests run under MockClock."""
    turn = trio.Lock()
    ratelog = RateLimitedLog(log, interval=60.0, clock=trio.current_time)

    @asynccontextmanager
    async def open_paced(url: str) -> AsyncIterator[MessageSource]:
        async with turn:
            asked = trio.current_time()
            await trio.sleep_until(window.next_at(asked))
            now = trio.current_time()
            window.take(now)
            window.waited += now - asked
        if now - asked > SLOW_TURN_S:
            ratelog.log(logging.INFO, "turn", "a connection waited %.1fs for its turn: new "
                        "connections are paced to %d per %.3gs (the venue's limit per IP, with a "
                        "margin)", now - asked, window.attempts, window.seconds)
        async with connect(url) as ws:
            yield ws

    return open_paced
