"""The harvester: builds every part from a ``Config`` and supervises them in one root nursery.

Owns the wiring (lanes, rotation, writer, router, connections, optional in-process simulator)
and the stop sequence: stop ingest first, then a shielded, deadline-bounded final flush of every
lane; what cannot be written in time goes to the dead letter; a second signal cuts the grace
short. Never drops buffered rows on a stop, and never stops on its own because something looks
unhealthy (old fault 5): only a signal, ``--duration`` or an internal crash ends a run.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .binance.streams import plan_connections, streams_for
from .config import Config
from .gate import PublishGate
from .ingest import ConnectFn, Connection, make_connections, run_ingest, websocket_connector
from .kinds import GAPS, Row, schema_for
from .lanes import Lanes
from .partitions import Partition
from .rotation import DeadLetterFn, Rotation, SaveFn
from .router import Router
from .store import LocalStore
from .writer import Writer

log = logging.getLogger("trio_harvest.app")

WallMs = Callable[[], int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class StopState:
    reason: str = ""
    signals: int = 0
    requested: trio.Event = field(default_factory=trio.Event)


class Harvester:
    """Everything one run owns. Build it, then ``await harvester.run()``."""

    def __init__(
        self,
        config: Config,
        *,
        connect: ConnectFn | None = None,
        save: SaveFn | None = None,
        dead_letter: DeadLetterFn | None = None,
        wall_clock_ms: WallMs = wall_ms,
        handle_signals: bool = False,
        metadata_of: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self.config = config
        self.wall_ms = wall_clock_ms
        self.handle_signals = handle_signals
        self.stop_state = StopState()
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.data_store = LocalStore(config.data_dir)
        self.deadletter_store = LocalStore(config.deadletter_path)
        self.writer = Writer(
            self.data_store,
            self.deadletter_store,
            lambda kind: schema_for(kind, config.depth_levels),
            metadata_of or (lambda kind: {}),
            max_stuck=config.max_stuck_writes,
            wall_ms=wall_clock_ms,
        )
        self.lanes = Lanes(dict(config.watermarks), wake=lambda lane: None)
        self.rotation = Rotation(
            self.lanes,
            save or self._save,
            dead_letter or self.writer.dead_letter,
            rotate_sec=config.rotate_sec,
            write_timeout=config.write_timeout,
            deadletter_timeout=config.deadletter_timeout,
            save_concurrency=config.save_concurrency,
        )
        self.lanes.set_wake(self.rotation.wake)
        self.router = Router(
            self.lanes,
            config.symbols,
            depth_levels=config.depth_levels,
            book=config.book,
            wall_ms=wall_clock_ms,
            now=trio.current_time,
        )
        self._connect = connect or websocket_connector(config.max_message_bytes)
        self.connections: list[Connection] = []
        self.simulator: Any = None
        self._grace_scope: trio.CancelScope | None = None
        self._ingest_scope = trio.CancelScope()
        self.stale_temps_removed = 0

    async def _save(self, part: Partition, gate: PublishGate) -> Any:
        return await self.writer.save(part, gate)

    # -- running -------------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Begin a clean stop (idempotent). A second request during the final flush cuts the
        grace short: everything still buffered goes straight to the dead letter."""
        st = self.stop_state
        st.signals += 1
        if not st.requested.is_set():
            st.reason = reason
            st.requested.set()
            return
        if self._grace_scope is not None:
            log.warning("second stop request (%s): dumping what is left to the dead letter", reason)
            self._grace_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[Harvester] = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        self.stale_temps_removed = await trio.to_thread.run_sync(self._remove_stale_temps)
        try:
            async with trio.open_nursery() as root:
                base_url = cfg.ws_url
                if cfg.sim:
                    base_url = await self._start_simulator(root)
                await root.start(self.rotation.run)
                plans = plan_connections(
                    streams_for(
                        cfg.symbols,
                        depth_levels=cfg.depth_levels,
                        depth_speed=cfg.depth_speed,
                        book=cfg.book,
                        book_ticker=cfg.book_ticker,
                    ),
                    cfg.streams_per_connection,
                )
                self.connections = make_connections(
                    plans,
                    base_url,
                    self._connect,
                    self.router.handle,
                    stall_timeout=cfg.stall_timeout,
                    backoff_initial=cfg.backoff_initial,
                    backoff_max=cfg.backoff_max,
                    on_disconnect=self._on_disconnect,
                )
                root.start_soon(self._run_ingest)
                if self.handle_signals:
                    root.start_soon(self._watch_signals)
                if cfg.duration is not None:
                    root.start_soon(self._stop_after, cfg.duration)
                self.started_at = trio.current_time()
                log.info(
                    "harvesting %d symbols over %d connections from %s into %s",
                    len(cfg.symbols), len(self.connections), base_url, cfg.data_dir,
                )
                task_status.started(self)
                await self.stop_state.requested.wait()
                log.info("stopping (%s): ingest first, then the final flush", self.stop_state.reason)
                self._ingest_scope.cancel()
                await self._final_flush()
                root.cancel_scope.cancel()
        finally:
            self.stopped_at = trio.current_time()
            # An internal crash tore the nursery down: whatever is still in a lane goes to the
            # dead letter (shielded, bounded), so even a crash loses nothing buffered.
            if self.lanes.total_pending():
                with trio.CancelScope(shield=True) as dump:
                    dump.deadline = trio.current_time() + cfg.deadletter_timeout + 1.0
                    await self.rotation.abort()

    async def _run_ingest(self) -> None:
        with self._ingest_scope:
            await run_ingest(self.connections)

    async def _final_flush(self) -> None:
        cfg = self.config
        with trio.CancelScope(shield=True) as grace:
            grace.deadline = trio.current_time() + cfg.shutdown_grace
            self._grace_scope = grace
            if self.stop_state.signals < 2:
                await self.rotation.flush_everything()
        self._grace_scope = None
        if grace.cancelled_caught or self.lanes.total_pending() or self.rotation.busy:
            log.warning("final flush did not finish within the grace; dead-lettering the rest")
            with trio.CancelScope(shield=True) as dump:
                dump.deadline = trio.current_time() + cfg.deadletter_timeout + 1.0
                await self.rotation.abort()

    async def _stop_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        self.request_stop(f"--duration {seconds:g}s reached")

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.request_stop(signal.Signals(signum).name)

    async def _on_disconnect(self, plan: Any, error: str) -> None:
        """Seam for gaps-as-data and backfill (a later issue)."""

    async def put_gap(self, row: Row) -> None:
        await self.lanes.get(GAPS, row[1]).put(row)

    def _remove_stale_temps(self) -> int:
        removed = self.data_store.remove_stale_temps()
        if self.config.deadletter_path != self.config.data_dir / "deadletter":
            removed += self.deadletter_store.remove_stale_temps()
        if removed:
            log.info("removed %d stale temporary files left by an earlier crash", removed)
        return removed

    async def _start_simulator(self, nursery: trio.Nursery) -> str:
        from .sim.server import SimConfig, Simulator

        cfg = self.config
        self.simulator = Simulator(
            SimConfig(symbols=cfg.symbols, rate=cfg.sim_rate, seed=cfg.sim_seed),
            clock_ms=self.wall_ms,
        )
        port = await nursery.start(self.simulator.serve)
        url = f"ws://127.0.0.1:{port}"
        log.info("built-in simulator listening on %s", url)
        return url
