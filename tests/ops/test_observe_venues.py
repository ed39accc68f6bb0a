"""The ops endpoint of a run of several venues (two ``[venues.<name>]`` tables on the simulator)
answers for every venue, not only the first: ``/metrics`` has each venue's series (one family
each, ``venue``-labelled, still aggregated: fewer lines than the venues' own expositions added
up, and nothing promtool objects to beyond what one venue's exposition already has),
``/status`` each venue's connections, roll-ups and top-N, ``/healthz`` each venue's health with
its reasons named by venue; each venue's progress lines name it. Real sockets, real clock."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trio_harvest.config import venue_configs
from trio_harvest.multivenue import MultiHarvester
from trio_harvest.ops.allvenues import AllVenues
from trio_harvest.ops.health import HealthReport, Problem
from trio_harvest.venuetables import parse_tables

from ..conftest import make_config
from ..ports import free_port
from .test_ops_http import samples

TWO = {"binance-usdm": ["BTCUSDT", "ETHUSDT"], "binance-spot": ["BTCUSDT", "ETHUSDT", "BNBUSDT"]}


def promtool_problems(text: str) -> set[str]:
    """``promtool check metrics`` on ``text``: the problems it lists (a parse error fails)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (.ci/run does it)"
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode in (0, 3), done.stderr  # 3: lint findings only; else unparsable
    return {line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()}


async def test_metrics_status_and_health_cover_every_venue(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_harvest")
    cfg = make_config(tmp_path, sim=True, sim_rate=200.0, metrics_port=free_port(),
                      health_interval=0.5, progress_interval=1.0, shutdown_grace=6.0,
                      rotate_sec=0.5, min_file_rows=1,
                      venue_tables=parse_tables({k: {"symbols": v} for k, v in TWO.items()}))
    multi = MultiHarvester(venue_configs(cfg))
    async with trio.open_nursery() as nursery:
        await nursery.start(multi.run)
        await trio.sleep(3.0)
        port = multi.units[0].ops.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            text = (await client.get("/metrics")).text
            status = (await client.get("/status")).json()
            health = await client.get("/healthz")
        own = [u.ops.metrics.exposition()[0].decode() for u in multi.units]
        multi.request_stop("test over")

    m = samples(text)  # parses: one family per name, whatever the venues
    for family in ("trio_harvest_frames_received_total", "trio_harvest_connection_up",
                   "trio_harvest_lanes", "trio_harvest_rows_written_total",
                   "trio_harvest_limiter_total", "trio_harvest_uptime_seconds",
                   "trio_harvest_healthy"):
        assert {lbl["venue"] for lbl, _ in m[family]} == set(TWO), family
    lanes = {lbl["venue"]: v for lbl, v in m["trio_harvest_lanes"] if lbl["kind"] == "prices"}
    assert lanes == {v: len(s) for v, s in TWO.items()}
    streams = {v: sum(x for lbl, x in m["trio_harvest_streams"] if lbl["venue"] == v)
               for v in TWO}
    assert streams == {v: len(u.router.streams) for v, u in
                       zip(TWO, multi.units, strict=True)}
    assert all(streams.values())
    # process-wide: once, as in a run of one venue
    assert [lbl for lbl, _ in m["trio_harvest_resident_memory_bytes"]] == [{}]
    assert len(m["trio_harvest_deadletter_files"]) == 1
    assert not any("symbol" in lbl for series in m.values() for lbl, _ in series)
    assert text.count("\n") < sum(t.count("\n") for t in own)  # headers once, nothing twice
    assert promtool_problems(text) <= promtool_problems(own[0])

    assert set(status["venues"]) == set(TWO)
    for venue, doc in status["venues"].items():
        assert doc["venue"] == venue and doc["frames"] > 0, venue
        assert doc["connections"] and all(c["venue"] == venue for c in doc["connections"])
        assert doc["streams_total"] == streams[venue]
        assert sum(r["streams"] for r in doc["streams_by_connection"]) == streams[venue]
        assert len(doc["streams"]) <= 10 and len(doc["lanes"]) <= 10
        assert doc["lanes_by_kind"]["prices"]["lanes"] == len(TWO[venue])
    assert status["frames"] == sum(d["frames"] for d in status["venues"].values())
    assert status["connections_total"] == sum(len(d["connections"])
                                              for d in status["venues"].values())
    assert "deadletter" in status and "rss_bytes" in status

    doc = health.json()
    assert set(doc["venues"]) == set(TWO)
    assert health.status_code == (200 if all(d["status"] == "healthy"
                                              for d in doc["venues"].values()) else 503)
    for venue in TWO:  # each unit's own progress lines, named by venue
        assert any(r.name == "trio_harvest.progress" and r.getMessage().startswith(f"[{venue}] ")
                   for r in caplog.records), venue


class FakeOps:
    """One venue's operations as the merge reads them."""

    def __init__(self, venue: str, report: HealthReport) -> None:
        self.venue = venue
        self.report = report
        self.registry: Any = None

    def health_report(self) -> HealthReport:
        return self.report

    def status(self) -> dict[str, Any]:
        return {"venue": self.venue, "status": self.report.status, **self.report.as_dict(),
                "frames": 5, "connections": [{"venue": self.venue, "connected": True}]}


def test_one_degraded_venue_makes_the_run_unhealthy_and_is_named() -> None:
    silent = Problem("stream_silent", "btcusdt@aggTrade", "btcusdt@aggTrade silent for 30s")
    venues = AllVenues([FakeOps("binance-usdm", HealthReport()),
                        FakeOps("binance-spot", HealthReport(problems=(silent,)))])
    healthy, doc = venues.health()
    assert not healthy and doc["status"] == "degraded"
    assert doc["reasons"] == ["[binance-spot] btcusdt@aggTrade silent for 30s"]
    assert [p["venue"] for p in doc["problems"]] == ["binance-spot"]
    assert doc["venues"]["binance-usdm"]["status"] == "healthy"
    status = venues.status()
    assert status["status"] == "degraded" and status["frames"] == 10
    assert status["reasons"] == doc["reasons"] and status["connections_up"] == 2
