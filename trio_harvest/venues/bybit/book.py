"""One symbol's book kept from a Bybit ``orderbook.{depth}`` topic by its ``u`` chain.

Owns the rule (reference/venues.md, section 4) as a small state machine:

- the topic's first message after a subscribe is a ``snapshot``: it replaces the book and the
  book is live (``SNAPSHOT``: its levels are written as a snapshot). **Any** later snapshot,
  and any message with ``u == 1`` (a service restart), replaces the book again (not a loss:
  the book restarts from complete levels);
- live, each ``delta`` must have ``u == previous u + 1``; ``u <=`` the last one is a duplicate
  or replay (dropped: sizes are absolute); anything else is a lost update (``BREAK``): the book
  is cleared, ``last_break`` says what was expected, and the topic must be resubscribed (a
  fresh snapshot) — ``resubscribe.py`` paces that;
- while waiting for a snapshot, deltas are kept (bounded, one unbroken chain) so a REST
  ``/v5/market/orderbook`` body (its ``u`` is the 1000-level topic's) can be bridged:
  the first delta applied on it has ``u == snapshot u + 1``.

The levels, the buffer, the REST snapshot's loading and the applying of a delta are the diff
book's (``binance_usdm.diffbook.LocalBook``); only the rule differs. Pure: no trio, no I/O, no
clock; events are ``wire.BookEvent`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..base import APPLIED, BREAK, BUFFERED, DROPPED, SNAPSHOT, STALE_SNAPSHOT, BookLevels
from ..binance_usdm import diffbook
from ..binance_usdm.diffbook import LIVE, SYNCING
from ..binance_usdm.diffbook import Snapshot as Snapshot
from ..binance_usdm.diffbook import SnapshotError as SnapshotError
from .wire import BookEvent

RULE = "bybit u"  # how gap rows name the rule that broke



def follows(prev_update_id: int, ev: BookLevels) -> bool:
    """The chain while live: a delta's ``u`` is the previous ``u`` + 1 (a snapshot or ``u == 1``
    restarts the book and so continues any chain)."""
    return ev.update_id == prev_update_id + 1 or _resets(ev)


def bridges(last_update_id: int, ev: BookLevels) -> bool:
    """The first delta applied on a REST snapshot of ``u == last_update_id``."""
    return ev.update_id == last_update_id + 1 or _resets(ev)


def _resets(ev: Any) -> bool:
    return bool(getattr(ev, "snapshot", False)) or ev.update_id == 1


def parse_snapshot(body: Mapping[str, Any]) -> Snapshot:
    """``{"retCode":0,"result":{"s","b","a","ts","u","seq","cts"}}`` -> a ``Snapshot`` as of
    ``u``; ``SnapshotError`` for anything else (a refusal, another shape)."""
    try:
        if body.get("retCode") != 0:
            raise ValueError(f"retCode {body.get('retCode')!r} {str(body.get('retMsg'))[:80]}")
        res = body["result"]
        u = res["u"]
        if isinstance(u, bool) or not isinstance(u, int):
            raise TypeError("u")
        bids = [(float(p), float(q)) for p, q, *_ in res["b"]]
        asks = [(float(p), float(q)) for p, q, *_ in res["a"]]
        return Snapshot(u, bids, asks, int(res.get("cts") or res.get("ts") or 0))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"not an orderbook snapshot ({exc.__class__.__name__}: {exc})") \
            from None


@dataclass(frozen=True, slots=True)
class Break:
    """A delta that does not continue the chain: the updates after ``expected - 1`` were lost."""

    expected: int  # u the next delta should have had
    got: int  # u it had
    start_ms: int  # time of the last applied message
    end_ms: int  # time of the breaking one
    rule: str = RULE  # named in the gap's reason: "book sequence break (bybit u)"

    @property
    def detail(self) -> str:
        return (f"expected u={self.expected}, got u={self.got}; "
                "the topic is resubscribed for a new snapshot")


@dataclass(slots=True)
class LocalBook(diffbook.LocalBook):
    """One topic's book. See the module docstring for the rules."""

    resets: int = 0  # snapshots (and u == 1) that replaced a live book

    def on_event(self, ev: BookEvent, recv_ms: int = 0) -> str:  # type: ignore[override]
        """Apply, reset on, buffer or drop one message; one of the ``venues.base`` outcomes."""
        if ev.snapshot or ev.update_id == 1:
            self._load(ev)
            return SNAPSHOT
        state = self.state
        if state == LIVE:
            if ev.update_id == self.last_update_id + 1:
                self._apply(ev)  # type: ignore[arg-type]  # the same fields a diff event has
                return APPLIED
            if ev.update_id <= self.last_update_id:
                self.stats.duplicates += 1
                return DROPPED
            self.stats.breaks += 1
            self.last_break = Break(  # type: ignore[assignment]  # a ``SequenceBreak`` too
                self.last_update_id + 1, ev.update_id, self.last_ts_ms,
                ev.trade_ms or ev.event_ms)
            return self._restart(ev, recv_ms, BREAK)
        if state != SYNCING:  # a REST snapshot is loaded: its first delta has u == L + 1
            if ev.update_id <= self.snapshot_id:
                self.stats.dropped += 1
                return DROPPED
            if ev.update_id == self.snapshot_id + 1:
                self.state = LIVE
                self.stats.syncs += 1
                self._apply(ev)  # type: ignore[arg-type]
                return APPLIED
            self.stats.stale_snapshots += 1
            return self._restart(ev, recv_ms, STALE_SNAPSHOT)
        buf = self._buffer
        if buf and ev.update_id != buf[-1][0].update_id + 1:
            if ev.update_id <= buf[-1][0].update_id:
                self.stats.duplicates += 1
                return DROPPED
            buf.clear()  # the chain broke before any snapshot: older deltas are useless
        if len(buf) == buf.maxlen:
            self.stats.overflowed += 1
        buf.append((ev, recv_ms))  # type: ignore[arg-type]
        self.stats.buffered += 1
        return BUFFERED

    def _restart(self, ev: BookEvent, recv_ms: int, outcome: str) -> str:
        self._reset()
        self._buffer.append((ev, recv_ms))  # type: ignore[arg-type]
        return outcome

    def _load(self, ev: BookEvent) -> None:
        """A snapshot on the socket (or ``u == 1``): the book is these levels, live at once."""
        if self.state == LIVE:
            self.resets += 1
        else:
            self.stats.syncs += 1
        self.stats.snapshots += 1
        self._reset()
        self.bids.load(ev.bids)
        self.asks.load(ev.asks)
        self.state = LIVE
        self.snapshot_id = self.last_update_id = ev.update_id
        self.last_ts_ms = ev.trade_ms or ev.event_ms
        self.stats.applied += 1
