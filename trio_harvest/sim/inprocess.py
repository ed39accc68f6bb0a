"""The simulator inside a harvester's own nursery (``run --sim``): built from the run's config,
serving on a loopback port the harvester then connects to.

Owns that start-up only. Never harvests; the simulator itself is ``server.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from .calibration import sim_rate
from .faultplan import parse_faults
from .listing import initial_listing
from .server import SimConfig, Simulator
from .venue import USDM, profile

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("trio_harvest.app")


async def start_simulator(nursery: trio.Nursery, cfg: Config, clock_ms: Callable[[], int],
                          venue: str = USDM) -> tuple[Simulator, str]:
    """Start serving in ``nursery`` in ``venue``'s wire format; returns the simulator and its
    websocket URL."""
    # a universe (all, patterns): the simulator lists its catalogue, as a venue would
    catalogue = profile(venue).catalogue
    symbols = initial_listing(cfg.universe, catalogue) if cfg.universe else cfg.symbols
    simulator = Simulator(
        SimConfig(symbols=symbols, rate=sim_rate(cfg.sim_rate, len(symbols)),
                  seed=cfg.sim_seed,
                  faults=parse_faults(cfg.sim_faults) if cfg.sim_faults else None, venue=venue),
        clock_ms=clock_ms,
    )
    port = await nursery.start(simulator.serve)
    url = f"ws://127.0.0.1:{port}"
    log.info("built-in simulator listening on %s", url)
    return simulator, url
