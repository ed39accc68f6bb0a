"""A clean stop logs where its time went: ingest, backfill, features, the authoritative files,
the derived files and the journal, in that order."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import pytest
import trio

from trio_harvest.app import Harvester

from .conftest import make_config
from .opsfakes import FakeExchange, wait_for


async def test_a_clean_stop_logs_its_phases(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    caplog.set_level(logging.INFO, logger="trio_harvest.app")
    exchange = FakeExchange(symbols=("BTCUSDT", "ETHUSDT"), interval=0.005)
    cfg = make_config(tmp_path, symbols=("BTCUSDT", "ETHUSDT"), depth_levels=5)
    h = Harvester(cfg, connect=exchange.connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: h.router.stats.frames >= 50)
        h.request_stop("test over")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stop took")]
    assert len(lines) == 1
    names = [name for name, _s, _c in h.stop_clock.phases()]
    assert names == ["ingest", "backfill", "features", "authoritative files", "derived files",
                     "journal"]
    assert "rows buffered" in lines[0] and "derived files" in lines[0]
    assert gc.get_freeze_count() == 0  # the stop froze the heap for the flush only
