"""A local order book per instId, kept from OKX ``books`` by the ``seqId`` chain, with the
checksum checked whenever OKX sends one that is not 0.

Owns the rules (reference/venues.md, section 3) as a small state machine:

- a **snapshot on the socket** (``action: snapshot``) replaces the book whatever its state and
  makes it live (outcome ``SNAPSHOT``): OKX sends one after every subscribe;
- ``SYNCING`` (no book: an update came first, or the chain broke): updates are buffered
  (bounded; one unbroken chain) until a snapshot arrives, from the socket or from REST
  (``GET /api/v5/market/books``, whose ``seqId`` aligns it: the announced mode without the
  socket snapshot);
- ``AWAIT_FIRST`` (a REST snapshot of ``seqId`` L is loaded): updates with ``seqId <= L`` are
  older and dropped; the first kept one needs ``prevSeqId <= L < seqId``, else the snapshot is
  too old (``STALE_SNAPSHOT``: fetch another);
- ``LIVE``: every update has ``prevSeqId ==`` the previous ``seqId``. A heartbeat
  (``seqId == prevSeqId``, no levels) confirms the chain and changes nothing (dropped). A reset
  after maintenance (``seqId < prevSeqId``) still chains on ``prevSeqId``: it is applied and the
  chain goes on from its lower ``seqId``, ids never have to grow. A repeat of the last update,
  or of one of the last few applied (by ``seqId``), is a duplicate (dropped). Anything else
  is a ``BREAK``: the book is cleared and resyncs; ``last_break`` names the rule
  (``okx seqId``). A non-zero checksum that the rebuilt book does not give is a break too
  (``okx checksum``).

Deletes of levels the book does not hold are ignored (the 2022 capture has many, and its
checksums still match). Pure: no trio, no I/O, no clock.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import APPLIED, BREAK, BUFFERED, DROPPED, SNAPSHOT, STALE_SNAPSHOT
from ..bookside import BookSide, Level, TopColumns
from .wire import OkxBook, RawLevel, levels

SYNCING = "syncing"
AWAIT_FIRST = "await_first"
LIVE = "live"

MAX_LEVELS = 400  # per side: the ``books`` channel's depth
CHECKSUM_LEVELS = 25
SEQ_RULE = "okx seqId"
CHECKSUM_RULE = "okx checksum"
RECENT = 32  # applied seqIds remembered: a message among them again is a duplicate


def follows(prev_seq: int, ev: Any) -> bool:
    """The chain: an update's ``prevSeqId`` is the previous message's ``seqId``."""
    return bool(ev.prev_update_id == prev_seq)


def bridges(snapshot_seq: int, ev: Any) -> bool:
    """The first update applied on a REST snapshot of ``snapshot_seq``:
    ``prevSeqId <= snapshot_seq < seqId``."""
    return bool(ev.prev_update_id <= snapshot_seq < ev.update_id)


def checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """The signed CRC32 of the top 25 levels interleaved ``bidPx:bidSz:askPx:askSz`` (a side
    that runs out first leaves its part out), from the raw strings."""
    parts: list[str] = []
    for i in range(CHECKSUM_LEVELS):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class SnapshotError(ValueError):
    """A REST books body that is not a book."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """``GET /api/v5/market/books``: the book as of ``seqId`` (``last_update_id``)."""

    last_update_id: int
    bids: list[Level]
    asks: list[Level]
    raw_bids: list[RawLevel]
    raw_asks: list[RawLevel]
    ts_ms: int = 0


def parse_snapshot(body: Mapping[str, Any], scale: float = 1.0) -> Snapshot:
    """``{"code":"0","data":[{"asks","bids","ts","seqId"}]}`` into a ``Snapshot`` (sizes times
    ``scale``: the answer names no instId, the caller knows whose it is).
    ``SnapshotError`` for anything else (an error answer, no ``seqId``)."""
    try:
        if str(body.get("code", "0")) != "0":
            raise ValueError(f"code {body.get('code')}: {str(body.get('msg', ''))[:100]}")
        entry = body["data"][0]
        seq = entry["seqId"]
        if isinstance(seq, bool) or not isinstance(seq, int):
            raise TypeError("seqId")
        raw_bids, raw_asks = entry["bids"], entry["asks"]
        return Snapshot(seq, levels(raw_bids, scale), levels(raw_asks, scale), raw_bids,
                        raw_asks, int(entry.get("ts") or 0))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SnapshotError(f"not a books snapshot ({exc.__class__.__name__}: {exc})") from None


@dataclass(frozen=True, slots=True)
class Break:
    """A lost update (or a checksum the book does not give) while live."""

    rule: str  # SEQ_RULE or CHECKSUM_RULE: named in the gap's reason
    expected: int  # seqId of the last applied message
    prev_update_id: int
    update_id: int
    start_ms: int
    end_ms: int

    @property
    def detail(self) -> str:
        if self.rule == CHECKSUM_RULE:
            return (f"checksum mismatch at seqId={self.update_id}; resync from a snapshot")
        return (f"expected prevSeqId={self.expected}, got prevSeqId={self.prev_update_id} "
                f"(seqId={self.update_id}); resync from a snapshot")


@dataclass(slots=True)
class BookStats:
    applied: int = 0
    buffered: int = 0
    dropped: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    resets: int = 0  # updates with seqId < prevSeqId (after maintenance)
    overflowed: int = 0
    breaks: int = 0
    checksum_breaks: int = 0
    checksums: int = 0  # non-zero checksums verified
    snapshots: int = 0  # socket and REST
    stale_snapshots: int = 0
    syncs: int = 0


@dataclass(slots=True)
class LocalBook:
    """One instId's book. See the module docstring for the rules."""

    symbol: str
    max_levels: int = MAX_LEVELS
    buffer_limit: int = 200
    state: str = SYNCING
    snapshot_id: int = -1
    last_update_id: int = -1
    last_ts_ms: int = 0
    last_break: Break | None = None
    stats: BookStats = field(default_factory=BookStats)
    bids: BookSide = field(init=False)
    asks: BookSide = field(init=False)
    _raw: tuple[dict[float, tuple[str, str]], dict[float, tuple[str, str]]] = field(init=False)
    _buffer: deque[tuple[OkxBook, int]] = field(init=False)
    _recent: deque[int] = field(init=False)  # seqIds of the last updates applied

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=RECENT)
        self.bids = BookSide(True, self.max_levels)
        self.asks = BookSide(False, self.max_levels)
        self._raw = ({}, {})
        self._buffer = deque(maxlen=self.buffer_limit)

    @property
    def live(self) -> bool:
        return self.state == LIVE

    @property
    def needs_snapshot(self) -> bool:
        return self.state == SYNCING

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        return self.bids.top(n), self.asks.top(n)

    def top_columns(self, n: int) -> TopColumns:
        return (*self.bids.top_columns(n), *self.asks.top_columns(n))

    def on_event(self, ev: OkxBook, recv_ms: int = 0) -> str:
        """Apply, buffer or drop one ``books`` message; one of the outcome constants."""
        if ev.is_snapshot:
            if self.state == LIVE and ev.update_id in self._recent:
                self.stats.duplicates += 1  # the same snapshot again (a repeated frame)
                return DROPPED
            self._reset()
            self._load(ev.bids, ev.asks, ev.raw_bids, ev.raw_asks)
            self.stats.snapshots += 1
            self.stats.syncs += 1
            self.state = LIVE
            self.last_update_id = ev.update_id
            self._recent.append(ev.update_id)
            self.last_ts_ms = ev.event_ms
            if ev.checksum and not self._verify(ev):
                return BREAK
            return SNAPSHOT
        state = self.state
        if state == LIVE:
            last = self.last_update_id
            if ev.prev_update_id == last:
                if ev.update_id == last and not ev.raw_bids and not ev.raw_asks:
                    self.stats.heartbeats += 1
                    return DROPPED
                if ev.update_id < ev.prev_update_id:
                    self.stats.resets += 1
                self._apply(ev)
                if ev.checksum and not self._verify(ev):
                    return BREAK
                return APPLIED
            if ev.update_id in self._recent:  # applied already (a repeated frame, an overlap)
                self.stats.duplicates += 1
                return DROPPED
            if ev.update_id == last and ev.prev_update_id == ev.update_id:
                self.stats.heartbeats += 1  # a repeated heartbeat
                return DROPPED
            self.stats.breaks += 1
            self.last_break = Break(SEQ_RULE, last, ev.prev_update_id, ev.update_id,
                                    self.last_ts_ms, ev.event_ms)
            self._reset()
            self._buffer.append((ev, recv_ms))
            self.stats.buffered += 1
            return BREAK
        if state == AWAIT_FIRST:
            snap = self.snapshot_id
            if ev.update_id <= snap:
                self.stats.dropped += 1
                return DROPPED
            if ev.prev_update_id <= snap:
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
                if ev.update_id <= tail and ev.prev_update_id < ev.update_id:
                    self.stats.duplicates += 1
                    return DROPPED
                buf.clear()  # the chain broke before any snapshot: older updates are useless
        if len(buf) == buf.maxlen:
            self.stats.overflowed += 1
        buf.append((ev, recv_ms))
        self.stats.buffered += 1
        return BUFFERED

    def apply_snapshot(self, snap: Snapshot) -> list[tuple[OkxBook, int]] | None:
        """Load a REST snapshot while syncing; the buffered updates to feed to ``on_event``
        next, oldest first (None: no snapshot was needed)."""
        if self.state != SYNCING:
            return None
        self.stats.snapshots += 1
        self._load(snap.bids, snap.asks, snap.raw_bids, snap.raw_asks)
        self.snapshot_id = snap.last_update_id
        self.state = AWAIT_FIRST
        replay = list(self._buffer)
        self._buffer.clear()
        return replay

    def reset(self) -> None:
        self._reset()

    def as_state(self) -> dict[str, Any]:
        """A live book as plain values (levels best first, with the text of each level the
        checksum is computed over): what ``restore`` takes back."""
        rb, ra = self._raw
        return {"last_update_id": self.last_update_id, "last_ts_ms": self.last_ts_ms,
                "snapshot_id": self.snapshot_id,
                "bids": self.bids.top(len(self.bids)), "asks": self.asks.top(len(self.asks)),
                "raw_bids": [list(rb[p]) for p, _ in self.bids.top(len(self.bids)) if p in rb],
                "raw_asks": [list(ra[p]) for p, _ in self.asks.top(len(self.asks)) if p in ra]}

    def restore(self, state: Mapping[str, Any]) -> list[tuple[OkxBook, int]]:
        """Make the book live as ``state`` (from ``as_state()``) says, and hand back the
        updates buffered meanwhile, oldest first, to feed to ``on_event``. Raises
        ``ValueError`` for a state that is not one."""
        try:
            bids = [(float(p), float(q)) for p, q in state["bids"]]
            asks = [(float(p), float(q)) for p, q in state["asks"]]
            raw_bids = [(str(p), str(q)) for p, q in state.get("raw_bids", ())]
            raw_asks = [(str(p), str(q)) for p, q in state.get("raw_asks", ())]
            last, ts = int(state["last_update_id"]), int(state["last_ts_ms"])
            snapshot_id = int(state.get("snapshot_id", last))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a book state ({exc.__class__.__name__}: {exc})") from None
        replay = list(self._buffer)
        self._reset()
        self.bids.load(bids)
        self.asks.load(asks)
        rb, ra = self._raw
        for lv in raw_bids:
            rb[float(lv[0])] = lv
        for lv in raw_asks:
            ra[float(lv[0])] = lv
        self.state, self.snapshot_id = LIVE, snapshot_id
        self.last_update_id, self.last_ts_ms = last, ts
        self._recent.append(last)
        self.last_break = None
        return replay

    # -- internals -------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.state = SYNCING
        self.bids.clear()
        self.asks.clear()
        self._raw[0].clear()
        self._raw[1].clear()
        self.snapshot_id = -1
        self.last_update_id = -1
        self._buffer.clear()
        self._recent.clear()

    def _load(self, bids: list[Level], asks: list[Level], raw_bids: list[RawLevel],
              raw_asks: list[RawLevel]) -> None:
        self.bids.load(bids)
        self.asks.load(asks)
        rb, ra = self._raw
        rb.clear()
        ra.clear()
        for (p, _), lv in zip(bids, raw_bids, strict=False):
            rb[p] = (lv[0], lv[1])
        for (p, _), lv in zip(asks, raw_asks, strict=False):
            ra[p] = (lv[0], lv[1])

    def _apply(self, ev: OkxBook) -> None:
        bids, asks = self.bids, self.asks
        bids.update(ev.bids)
        asks.update(ev.asks)
        rb, ra = self._raw
        for (price, size), lv in zip(ev.bids, ev.raw_bids, strict=False):
            if size > 0:
                rb[price] = (lv[0], lv[1])
            else:
                rb.pop(price, None)
        for (price, size), lv in zip(ev.asks, ev.raw_asks, strict=False):
            if size > 0:
                ra[price] = (lv[0], lv[1])
            else:
                ra.pop(price, None)
        limit = 2 * self.max_levels  # levels the sides dropped at their far end
        if len(rb) > limit:
            self._raw = ({p: rb[p] for p in bids.sizes if p in rb}, ra)
        if len(ra) > limit:
            self._raw = (self._raw[0], {p: ra[p] for p in asks.sizes if p in ra})
        self.last_update_id = ev.update_id
        self._recent.append(ev.update_id)
        self.last_ts_ms = ev.event_ms
        self.stats.applied += 1

    def _verify(self, ev: OkxBook) -> bool:
        """The message's checksum against the book; a mismatch clears it (a ``BREAK``)."""
        rb, ra = self._raw
        bids = [rb[p] for p, _ in self.bids.top(CHECKSUM_LEVELS)]
        asks = [ra[p] for p, _ in self.asks.top(CHECKSUM_LEVELS)]
        self.stats.checksums += 1
        if checksum(bids, asks) == ev.checksum:
            return True
        self.stats.checksum_breaks += 1
        self.stats.breaks += 1
        self.last_break = Break(CHECKSUM_RULE, self.last_update_id, ev.prev_update_id,
                                ev.update_id, self.last_ts_ms, ev.event_ms)
        self._reset()
        return False
