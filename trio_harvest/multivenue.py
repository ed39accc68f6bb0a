"""Several venues in one run: one ``Harvester`` per configured venue, supervised together.

Owns what a run of ``[venues.<name>]`` tables adds to the single-venue harvester: the one
start-up sweep of the shared dataset (before any venue writes), starting every venue's harvest
unit in one nursery, fanning a stop request out to all of them, and ending the others when one
ends. Each unit keeps everything a venue owns: its connections, router, repair (continuity,
backfill and its REST weight budget), diff books, listing follower, lanes (its ``venue=``
partitions), signal engines, its simulator with ``--sim``, and its journal
(``<journal>/<venue>``, replayed into that venue's router on a restart). The dataset-wide duties
(metrics endpoint, dead-letter auto-recovery, background compaction) stay with the first venue
(``config.venue_configs``), whose endpoint answers for every venue (ops/allvenues.py). Never
touches a venue's internals.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import trio

from .app import Harvester
from .config import Config
from .errors import ConfigError
from .ops.allvenues import AllVenues
from .startup import sweep_dataset

log = logging.getLogger("trio_harvest.app")

# the venue whose unit a task (or its worker thread) belongs to: trio and ``to_thread`` copy the
# context into every task and thread a unit starts, so each log line can say its venue
_VENUE: contextvars.ContextVar[str] = contextvars.ContextVar("trio_harvest_venue", default="")


class VenueLogPrefix(logging.Filter):
    """Prefixes ``[venue]`` to a log line written by a venue's unit (once per record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        venue = _VENUE.get()
        if venue and not getattr(record, "venue", ""):
            record.venue = venue
            record.msg = f"[{venue}] {record.msg}"
        return True


@contextlib.contextmanager
def venue_log_prefix() -> Iterator[None]:
    """While a run of several venues lasts, its log lines name their venue."""
    handlers = [*logging.getLogger().handlers, *logging.getLogger("trio_harvest").handlers]
    prefix = VenueLogPrefix()
    for handler in handlers:
        handler.addFilter(prefix)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(prefix)


class MultiHarvester:
    """The venues of one run; ``await run()`` as for a ``Harvester``."""

    def __init__(self, configs: Sequence[Config], *, handle_signals: bool = False,
                 unit_kw: Callable[[Config], Mapping[str, Any]] | None = None,
                 **harvester_kw: Any) -> None:
        """``unit_kw``: a venue's own ``Harvester`` arguments (a shard's weights and its pair
        namespace), beside the ``harvester_kw`` every venue shares."""
        if not configs:
            raise ValueError("no venue to harvest")
        self.handle_signals = handle_signals
        self.units = [Harvester(c, sweep_temps=False, **harvester_kw,
                                **(unit_kw(c) if unit_kw is not None else {}))
                      for c in configs]
        if len(self.units) > 1:  # the first venue's endpoint answers for every venue
            self.units[0].ops.all_venues = AllVenues([h.ops for h in self.units])
        # background compaction (the first venue's duty) covers every venue's symbols
        self.units[0].compact_symbols = tuple(dict.fromkeys(
            s for h in self.units for s in h.config.symbols))
        self._token: trio.lowlevel.TrioToken | None = None

    @property
    def config(self) -> Config:
        return self.units[0].config

    def request_stop(self, reason: str) -> None:
        for h in self.units:
            h.request_stop(reason)

    def stop_from_thread(self, reason: str) -> None:
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self.request_stop, reason, trio_token=token)

    async def run(self, *, task_status: trio.TaskStatus[MultiHarvester] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        self._token = trio.lowlevel.current_trio_token()
        first = self.units[0]
        await trio.to_thread.run_sync(sweep_dataset, first.config, first.data_store,
                                      first.deadletter_store, abandon_on_cancel=True)
        try:
            with venue_log_prefix():
                await self._run_units(task_status)
        except ExceptionGroup as group:  # a user mistake (the metrics port in use): one line
            user, rest = group.split(ConfigError)
            if user is not None and rest is None:
                raise _first_leaf(user) from None
            raise

    async def _run_units(self, task_status: trio.TaskStatus[MultiHarvester]) -> None:
        async with trio.open_nursery() as outer:
            if self.handle_signals:
                outer.start_soon(self._watch_signals)
            async with trio.open_nursery() as units:
                for h in self.units:
                    await units.start(self._run_unit, h)
                log.info("harvesting %d venues in one run: %s", len(self.units),
                         ", ".join(h.config.venue for h in self.units))
                task_status.started(self)
            outer.cancel_scope.cancel()

    async def _run_unit(self, h: Harvester, *,
                        task_status: trio.TaskStatus[Harvester] = trio.TASK_STATUS_IGNORED,
                        ) -> None:
        _VENUE.set(h.config.venue)  # this task's context: copied into every task the unit starts
        try:
            await h.run(task_status=task_status)
        finally:
            # one venue ended (its stop, or a crash that tears the others down anyway): the
            # others stop cleanly too, so no venue runs on alone unnoticed. Only those not yet
            # stopping: a second request would cut their final flush short.
            reason = h.stop_state.reason or f"{h.config.venue} ended"
            for other in self.units:
                if not other.stop_state.requested.is_set():
                    other.request_stop(reason)

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.request_stop(signal.Signals(signum).name)


def _first_leaf(group: BaseExceptionGroup[ConfigError]) -> ConfigError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
