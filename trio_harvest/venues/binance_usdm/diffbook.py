"""A local order book per symbol, kept from Binance USD-M diff depth plus a REST snapshot.

Owns the synchronisation rules (reference/binance-usdm-streams.md) as a small state machine:

- ``SYNCING``: no usable book. Events are buffered (bounded: the oldest go first; the buffer is
  always one unbroken ``pu`` chain) until a snapshot is given to ``apply_snapshot``.
- ``AWAIT_FIRST``: the snapshot (``lastUpdateId`` = L) is loaded. Events with ``u < L`` are
  dropped; the first applied event must span L (``U <= L <= u``) or chain straight onto it
  (``pu == L``: the snapshot was taken exactly at an event boundary). An event that starts after
  L without chaining onto it means the snapshot is older than the stream can bridge: back to
  ``SYNCING`` (``STALE_SNAPSHOT``; ask for another one). No gap: the book was not live.
- ``LIVE``: each event must have ``pu`` equal to the previous event's ``u``. An event with
  ``u <=`` the last applied ``u`` is a duplicate or replay and is dropped (quantities are
  absolute, so applying it again would corrupt the book). Any other ``pu`` mismatch is a
  ``BREAK``: the book is cleared, the breaking event starts a new buffer, and ``last_break``
  describes the gap (for a ``gaps`` row with reason "book sequence break").

Also owns the price levels (a dict price -> size plus a sorted key list per side, bounded to
``max_levels`` per side by dropping the far end) and top-N extraction. Pure: no trio, no I/O,
no clock; events are ``decode.DepthUpdate`` structs, snapshots come from ``parse_snapshot``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import APPLIED as APPLIED
from ..base import BREAK as BREAK
from ..base import BUFFERED as BUFFERED
from ..base import DROPPED as DROPPED
from ..base import STALE_SNAPSHOT as STALE_SNAPSHOT
from ..base import BookLevels
from ..bookside import BookSide as BookSide
from ..bookside import Level as Level
from ..bookside import TopColumns
from .decode import DepthUpdate

# States
SYNCING = "syncing"
AWAIT_FIRST = "await_first"
LIVE = "live"

# Outcomes of ``LocalBook.on_event`` (the venue-neutral names of ``venues.base``)

MAX_LEVELS = 1000  # per side; Binance's largest snapshot
BUFFER_LIMIT = 200  # events kept while waiting for a snapshot (20 s of @100ms)


def follows(prev_update_id: int, ev: BookLevels) -> bool:
    """The book rule while live: an event's ``pu`` is the previous event's ``u``
    (``LocalBook.on_event`` inlines it)."""
    return ev.prev_update_id == prev_update_id


def bridges(last_update_id: int, ev: BookLevels) -> bool:
    """The first event applied on a snapshot of ``last_update_id``: ``U <= lastUpdateId <= u``,
    or ``pu == lastUpdateId`` (``LocalBook.on_event`` inlines it, after dropping ``u < last``)."""
    return ev.update_id >= last_update_id and (
        ev.first_update_id <= last_update_id or ev.prev_update_id == last_update_id)


class SnapshotError(ValueError):
    """A REST depth body that is not a depth snapshot."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """``GET /fapi/v1/depth``: the book as of update ``last_update_id``, best levels first."""

    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    ts_ms: int = 0  # T (or E) of the response, 0 when absent


def parse_snapshot(body: Mapping[str, Any]) -> Snapshot:
    """Turn a decoded REST depth body (``{"lastUpdateId":..,"bids":[["p","q"],..],..}``) into a
    ``Snapshot``. Raises ``SnapshotError`` for anything else (e.g. ``{"code":-1121,...}``)."""
    try:
        last = body["lastUpdateId"]
        if isinstance(last, bool) or not isinstance(last, int):
            raise TypeError("lastUpdateId")
        bids = [(float(p), float(q)) for p, q, *_ in body["bids"]]
        asks = [(float(p), float(q)) for p, q, *_ in body["asks"]]
        ts = body.get("T") or body.get("E") or 0
        return Snapshot(last, bids, asks, int(ts))
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"not a depth snapshot ({exc.__class__.__name__}: {exc})") from None


@dataclass(frozen=True, slots=True)
class Break:
    """A ``pu`` mismatch while live: the updates between ``expected_pu`` and ``U`` were lost."""

    expected_pu: int  # u of the last applied event
    prev_update_id: int  # pu of the breaking event
    first_update_id: int  # U of the breaking event
    update_id: int  # u of the breaking event
    start_ms: int  # ts of the last applied event
    end_ms: int  # ts of the breaking event

    @property
    def detail(self) -> str:
        return (f"expected pu={self.expected_pu}, got pu={self.prev_update_id} "
                f"(U={self.first_update_id}, u={self.update_id}); resync from a REST snapshot")


@dataclass(slots=True)
class BookStats:
    applied: int = 0
    buffered: int = 0
    dropped: int = 0
    duplicates: int = 0
    overflowed: int = 0  # buffered events pushed out by newer ones
    breaks: int = 0
    snapshots: int = 0
    stale_snapshots: int = 0
    syncs: int = 0  # times the book went live


Buffered = tuple[DepthUpdate, int]  # (event, recv_ms)


@dataclass(slots=True)
class LocalBook:
    """One symbol's diff-depth book. See the module docstring for the rules."""

    symbol: str
    max_levels: int = MAX_LEVELS
    buffer_limit: int = BUFFER_LIMIT
    state: str = SYNCING
    snapshot_id: int = -1  # L of the loaded snapshot (AWAIT_FIRST, LIVE)
    last_update_id: int = -1  # u of the last applied event
    last_ts_ms: int = 0
    last_break: Break | None = None
    stats: BookStats = field(default_factory=BookStats)
    bids: BookSide = field(init=False)
    asks: BookSide = field(init=False)
    _buffer: deque[Buffered] = field(init=False)

    def __post_init__(self) -> None:
        self.bids = BookSide(True, self.max_levels)
        self.asks = BookSide(False, self.max_levels)
        self._buffer = deque(maxlen=self.buffer_limit)

    # -- queries ---------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.state == LIVE

    @property
    def needs_snapshot(self) -> bool:
        return self.state == SYNCING

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` bids (highest first) and asks (lowest first)."""
        return self.bids.top(n), self.asks.top(n)

    def top_columns(self, n: int) -> TopColumns:
        """``top(n)`` as columns: bid prices, bid sizes, ask prices, ask sizes."""
        return (*self.bids.top_columns(n), *self.asks.top_columns(n))

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, ev: DepthUpdate, recv_ms: int = 0) -> str:
        """Apply, buffer or drop one diff event; returns one of the outcome constants."""
        state = self.state
        if state == LIVE:
            if ev.prev_update_id == self.last_update_id:
                self._apply(ev)
                return APPLIED
            if ev.update_id <= self.last_update_id:
                self.stats.duplicates += 1
                return DROPPED
            self.stats.breaks += 1
            ts = ev.trade_ms or ev.event_ms
            self.last_break = Break(self.last_update_id, ev.prev_update_id, ev.first_update_id,
                                    ev.update_id, self.last_ts_ms, ts)
            self._reset()
            self._buffer.append((ev, recv_ms))
            self.stats.buffered += 1
            return BREAK
        if state == AWAIT_FIRST:
            last = self.snapshot_id
            if ev.update_id < last:
                self.stats.dropped += 1
                return DROPPED
            if ev.first_update_id <= last or ev.prev_update_id == last:
                self.state = LIVE
                self.stats.syncs += 1
                self._apply(ev)
                return APPLIED
            self.stats.stale_snapshots += 1
            self._reset()
            self._buffer.append((ev, recv_ms))
            self.stats.buffered += 1
            return STALE_SNAPSHOT
        buf = self._buffer
        if buf:
            tail = buf[-1][0].update_id
            if ev.prev_update_id != tail:
                if ev.update_id <= tail:
                    self.stats.duplicates += 1
                    return DROPPED
                buf.clear()  # the chain broke before any snapshot: older events are useless
        if len(buf) == buf.maxlen:
            self.stats.overflowed += 1
        buf.append((ev, recv_ms))
        self.stats.buffered += 1
        return BUFFERED

    def apply_snapshot(self, snap: Snapshot) -> list[Buffered] | None:
        """Load ``snap`` if the book is syncing and hand back the buffered events, oldest first:
        feed each to ``on_event`` (and emit a row for each one ``APPLIED``). ``None`` when the
        book does not need a snapshot (ignored)."""
        if self.state != SYNCING:
            return None
        self.stats.snapshots += 1
        self.bids.load(snap.bids)
        self.asks.load(snap.asks)
        self.snapshot_id = snap.last_update_id
        self.state = AWAIT_FIRST
        replay = list(self._buffer)
        self._buffer.clear()
        return replay

    def reset(self) -> None:
        """Forget the book (e.g. the depth stream was resubscribed); a new snapshot is needed."""
        self._reset()

    def as_state(self) -> dict[str, Any]:
        """A live book as plain values (levels best first): what ``restore`` takes back."""
        return {"last_update_id": self.last_update_id, "last_ts_ms": self.last_ts_ms,
                "snapshot_id": self.snapshot_id,
                "bids": self.bids.top(len(self.bids)), "asks": self.asks.top(len(self.asks))}

    def restore(self, state: Mapping[str, Any]) -> list[Buffered]:
        """Make the book live as ``state`` (from ``as_state()``) says, and hand back the events
        buffered meanwhile, oldest first: feed each to ``on_event`` (those the state already
        holds are dropped as duplicates, those that follow it apply). Raises ``ValueError``
        for a state that is not one."""
        try:
            bids = [(float(p), float(q)) for p, q in state["bids"]]
            asks = [(float(p), float(q)) for p, q in state["asks"]]
            last, ts = int(state["last_update_id"]), int(state["last_ts_ms"])
            snapshot_id = int(state.get("snapshot_id", last))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a book state ({exc.__class__.__name__}: {exc})") from None
        self.bids.load(bids)
        self.asks.load(asks)
        self.state, self.snapshot_id = LIVE, snapshot_id
        self.last_update_id, self.last_ts_ms = last, ts
        self.last_break = None
        replay = list(self._buffer)
        self._buffer.clear()
        return replay

    # -- internals -------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.state = SYNCING
        self.bids.clear()
        self.asks.clear()
        self.snapshot_id = -1
        self.last_update_id = -1
        self._buffer.clear()

    def _apply(self, ev: DepthUpdate) -> None:
        self.bids.update(ev.bids)
        self.asks.update(ev.asks)
        self.last_update_id = ev.update_id
        self.last_ts_ms = ev.trade_ms or ev.event_ms
        self.stats.applied += 1
