"""The live page at ``/`` of a running harvester, in a real headless Chromium: it renders with no
console error, loads nothing from elsewhere, refreshes itself and shows the numbers. The
screenshot is the one the docs show (docs/img/live.png). Real clock, real sockets, the built-in
simulator with a disconnect, so gaps and reconnects are on it too. The ``--workers`` host's page
(a section per worker) renders the same way."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import trio

from trio_harvest.app import Harvester
from trio_harvest.ops.page import PAGE
from trio_harvest.ops.web import bound_port, open_sockets
from trio_harvest.scale.aggregate import WorkerView
from trio_harvest.scale.supervisor import Supervisor, SupervisorSettings

from ..browserkit import render
from ..conftest import make_config
from ..opsfakes import wait_for
from ..ports import free_port

SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "live.png"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT")

PAGE_TEXT = "document.body.innerText"
CELLS = """Array.from(document.querySelectorAll('table')).map(t => Array.from(t.rows).map(
  r => Array.from(r.cells).map(c => c.innerText)))"""


def test_the_page_has_no_external_asset() -> None:
    html = PAGE.decode()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    assert "http://" not in html and "https://" not in html and "@import" not in html
    assert "<script>" in html and "<style>" in html


async def test_live_page_in_a_real_browser(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, symbols=SYMBOLS, sim=True, sim_rate=300.0, sim_seed=3,
                      sim_faults="disconnect=2,seed=5", backfill_delay=0.3, rotate_sec=0.5,
                      min_file_rows=1, health_interval=0.3, metrics_port=free_port(),
                      backoff_initial=0.05, backoff_max=0.25, progress_interval=0,
                      journal=True)  # as users run it: the page shows the journal
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: h.rotation.stats.kind("prices").files_written > 0
                       and sum(c.stats.reconnects for c in h.connections) > 0, seconds=20)
        url = f"http://127.0.0.1:{h.ops.port}/?every=0.5"
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).headers["content-type"].startswith("text/html")
        seen = await trio.to_thread.run_sync(
            lambda: render(url, SHOT, settle=2.5, width=1300, height=900,
                           evaluate={"text": PAGE_TEXT, "cells": CELLS}))
        # the --workers host serves the same page over its own /status (one section a worker)
        worker_status = h.ops.status()
        host = Supervisor([WorkerView(0, SYMBOLS, pid=1, up=True, status=worker_status),
                           WorkerView(1, ("LINKUSDT",), up=False)], lambda w: [],
                          SupervisorSettings(), handle_signals=False)
        sockets = await open_sockets("127.0.0.1", 0)
        await nursery.start(host.server.serve, sockets)
        host_url = f"http://127.0.0.1:{bound_port(sockets)}/"
        host_seen = await trio.to_thread.run_sync(
            lambda: render(host_url, settle=1.5, evaluate={"text": PAGE_TEXT}))
        h.request_stop("test over")
        nursery.cancel_scope.cancel()

    assert host_seen.console_errors == []
    host_text = host_seen.values["text"]
    assert "worker 0" in host_text and "worker 1 not running" in host_text
    assert "venue binance-usdm" in host_text and "Lanes and writes, by kind" in host_text

    assert seen.console_errors == []
    text = seen.values["text"]
    assert "venue binance-usdm" in text and "updated" in text
    assert re.search(r"\b(healthy|degraded)\b", text)
    tables = seen.values["cells"]
    heads = [t[0][0] for t in tables]
    assert heads[:2] == ["venue / connection", "kind"]
    conns = tables[0][1:]
    assert len(conns) == len(h.connections) >= 2
    for row in conns:  # each connection: a frame rate (two fetches seen), frames, streams
        assert row[0].startswith("binance-usdm ")
        assert re.fullmatch(r"[\d,.]+", row[2]), row
        assert int(row[3].replace(",", "")) > 0 and int(row[4]) > 0
    kinds = {row[0]: row for row in tables[1][1:]}
    assert int(kinds["prices"][1]) == len(SYMBOLS)  # lanes
    assert int(kinds["prices"][7].replace(",", "")) > 0  # rows written
    assert "Gaps" in text and "Backfill" in text and "Journal" in text and "Dead letter" in text
    assert "disconnect" in text  # the gap the simulated disconnect left
    assert "protecting" in text  # the journal
    assert SHOT.stat().st_size > 10_000
