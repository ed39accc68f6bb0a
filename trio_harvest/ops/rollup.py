"""Rolls hundreds of per-symbol readings up into a few per kind and per connection, and picks the
worst few: what ``/metrics``, ``/status`` and the live page show at 500 symbols.

Owns the roll-up rules (lanes by kind; streams by connection and stream kind; a stream's
staleness; the order "worst first"). Pure: no trio, no I/O, no clock. Never hides a count: a
roll-up always says how many it stands for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .health import StreamView

TOP_N = 10  # /status and the page list this many of the worst lanes and streams


class LaneLike(Protocol):
    """A live lane or its snapshot view: what a roll-up reads of it."""

    @property
    def kind(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def high(self) -> int: ...
    @property
    def capacity(self) -> int: ...


def fill(lane: LaneLike) -> float:
    """How full a lane is (0..1 of its capacity, the emergency watermark)."""
    return lane.level / lane.capacity if lane.capacity > 0 else 0.0


@dataclass(slots=True)
class LaneRollup:
    """The lanes of one kind."""

    lanes: int = 0
    rows: int = 0  # rows buffered in them now
    capacity: int = 0
    above_high: int = 0  # lanes at or above their high watermark (flush now)
    full: int = 0  # lanes at capacity
    fill_max: float = 0.0  # the fullest lane's fill

    def as_dict(self) -> dict[str, object]:
        return {"lanes": self.lanes, "rows": self.rows, "capacity": self.capacity,
                "above_high": self.above_high, "full": self.full,
                "fill_max": round(self.fill_max, 4)}


def lanes_by_kind(lanes: Iterable[LaneLike]) -> dict[str, LaneRollup]:
    out: dict[str, LaneRollup] = {}
    for lane in lanes:
        r = out.get(lane.kind)
        if r is None:
            r = out[lane.kind] = LaneRollup()
        r.lanes += 1
        r.rows += lane.level
        r.capacity += lane.capacity
        if lane.level >= lane.capacity:
            r.full += 1
        if lane.level >= lane.high:
            r.above_high += 1
        f = fill(lane)
        if f > r.fill_max:
            r.fill_max = f
    return dict(sorted(out.items()))


L = TypeVar("L", bound=LaneLike)


def top_lanes(lanes: Iterable[L], n: int = TOP_N) -> list[L]:
    """The ``n`` fullest lanes (by fill, then rows), fullest first; empty lanes are left out."""
    busy = [ln for ln in lanes if ln.level > 0]
    busy.sort(key=lambda ln: (-fill(ln), -ln.level, ln.kind, ln.symbol))
    return busy[:n]


def staleness(s: StreamView, uptime: float) -> float:
    """Seconds a stream has gone without a frame: since its last frame if it delivered in this
    session, else since its connection opened, else since its last frame ever, else since the
    start."""
    if s.delivered_this_session and s.age is not None:
        return s.age
    if s.since_connect is not None:
        return s.since_connect
    return s.age if s.age is not None else uptime


def is_stale(s: StreamView, uptime: float) -> bool:
    return staleness(s, uptime) > s.stale_after


@dataclass(slots=True)
class StreamRollup:
    """The streams of one kind on one connection."""

    streams: int = 0
    delivering: int = 0  # delivered a frame since the connection opened
    stale: int = 0  # silent for longer than their kind's stale_after
    staleness_max: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"streams": self.streams, "delivering": self.delivering, "stale": self.stale,
                "staleness_max_s": round(self.staleness_max, 3)}


def streams_by_connection(streams: Iterable[StreamView], uptime: float
                          ) -> dict[tuple[str, str], StreamRollup]:
    """Keyed by (connection, stream kind), e.g. ``("public[0]", "depth")``."""
    out: dict[tuple[str, str], StreamRollup] = {}
    for s in streams:
        key = (s.connection, s.kind)
        r = out.get(key)
        if r is None:
            r = out[key] = StreamRollup()
        r.streams += 1
        r.delivering += s.delivered_this_session
        age = staleness(s, uptime)
        r.stale += age > s.stale_after
        if age > r.staleness_max:
            r.staleness_max = age
    return dict(sorted(out.items()))


def top_streams(streams: Iterable[StreamView], uptime: float, n: int = TOP_N
                ) -> list[StreamView]:
    """The ``n`` stalest streams, relative to their kind's cadence, stalest first."""
    ranked = sorted(streams, key=lambda s: (-staleness(s, uptime) / s.stale_after, s.stream))
    return ranked[:n]
