"""The seam where fault injection plugs in between the market model and the connections.

Owns only the interface: a ``Faults`` object may rewrite the model's events before fan-out
(skip or duplicate agg ids, drop diff-depth events, skew clocks) and each frame on its way to one
connection (garbage, truncation, oversize, duplicates). Connection-level faults (forced
disconnects, stalls) act on ``Simulator.connections``. No fault is implemented here; with no
``Faults`` object the simulator is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .events import Event


class Faults(Protocol):
    def on_events(self, events: list[Event]) -> list[Event]:
        """The events to publish instead of ``events`` (called once per simulator step)."""
        ...

    def on_frame(self, conn_id: int, stream: str, frame: str) -> Sequence[str]:
        """The frames to queue for connection ``conn_id`` instead of ``frame`` (maybe none)."""
        ...
