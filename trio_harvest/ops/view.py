"""The narrow, read-only view of a running harvester that operations observe.

Owns the contract between the harvester and everything that watches it (the health task, the
sampler, metrics, automatic recovery, the run summary): the parts they may read, as a
``Protocol``. Operations import this module, never ``app``, so there is no import circle
app -> ops -> app, and a fake view is enough to test them. Never mutates anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import trio

if TYPE_CHECKING:
    from ..config import Config
    from ..ingest.connection import Connection
    from ..ingest.connectpace import AttemptWindow
    from ..journal.journal import Journal
    from ..journal.probe import DiskProbe
    from ..pipeline.lanes import Lanes
    from ..pipeline.rotation import Rotation
    from ..pipeline.router import Router
    from ..repair.coordinator import Repair
    from ..signals.engine import SignalEngine
    from ..storage.writer import Writer


class StopView(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def requested(self) -> trio.Event: ...


class HarvestView(Protocol):
    """What an observer may read of a harvester (all of it read-only)."""

    @property
    def config(self) -> Config: ...
    @property
    def connections(self) -> Sequence[Connection]: ...
    @property
    def connect_window(self) -> AttemptWindow | None: ...  # the venue's per-IP connect pacing
    @property
    def lanes(self) -> Lanes: ...
    @property
    def rotation(self) -> Rotation: ...
    @property
    def router(self) -> Router: ...
    @property
    def writer(self) -> Writer: ...
    @property
    def repair(self) -> Repair: ...
    @property
    def engines(self) -> Mapping[str, SignalEngine]: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def stopped_at(self) -> float | None: ...
    @property
    def stop_state(self) -> StopView: ...
    # the journal (None when off) and the disk probe
    @property
    def journal(self) -> Journal | None: ...
    @property
    def probe(self) -> DiskProbe: ...
