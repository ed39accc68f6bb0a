"""Counters of what the simulator did: frames per stream kind, connections, slow-consumer closes.

Owns the counters and their one-line rendering. Plain data: updated by the fan-out and the
server, read by tests, ``sim_main`` and (later) metrics; it never influences behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .wire import CONTROL, STREAM_KINDS


@dataclass
class SimStats:
    # frames handed to a connection's send queue, by stream kind (and "control" for replies)
    frames: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((*STREAM_KINDS, CONTROL), 0)
    )
    events: int = 0  # events the market model produced
    connections_total: int = 0
    connections_open: int = 0
    rejected: int = 0  # handshakes refused (unknown path)
    connect_refused: int = 0  # handshakes refused with HTTP 429: over the venue's connect limit
    slow_consumer_closes: int = 0  # connections dropped because their send queue overflowed
    pings: int = 0  # server pings answered (venues whose server pings: Spot, COIN-M)
    ping_timeouts: int = 0  # connections closed for want of a pong
    rate_closes: int = 0  # connections closed for sending too many messages per second
    refused_requests: int = 0  # client requests answered with an error (OKX's error events)
    idle_closes: int = 0  # OKX: sockets closed with no subscription or no push for 30 s
    listed: list[str] = field(default_factory=list)  # listed while running (``listing=S``)
    delisted: list[str] = field(default_factory=list)  # delisted while running

    @property
    def frames_total(self) -> int:
        return sum(self.frames.values())

    def render(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in self.frames.items() if v)
        return (
            f"{self.events} market events, {self.frames_total} frames sent ({kinds or 'none'}), "
            f"{self.connections_total} connections, "
            f"{self.slow_consumer_closes} slow-consumer closes"
            + (f", {self.pings} pings answered, {self.ping_timeouts} unanswered"
               if self.pings or self.ping_timeouts else "")
            + (f", {self.rate_closes} closed for too many client messages"
               if self.rate_closes else "")
            + (f", {self.connect_refused} handshakes refused for too many new connections"
               if self.connect_refused else "")
            + (f", {self.idle_closes} closed idle" if self.idle_closes else "")
            + (f", listed {', '.join(self.listed)}, delisted {', '.join(self.delisted)}"
               if self.listed or self.delisted else "")
        )
