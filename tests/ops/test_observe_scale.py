"""Observability at 500 symbols: ``/metrics`` rolled up by venue, kind and connection (a few
hundred lines, not 21k), per-symbol series only on request, and a ``/status`` that lists the worst
few lanes and streams with counts, never all of them. Real sockets, real clock."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.commands import build_parser
from trio_harvest.config import load_config
from trio_harvest.ops.health import LaneView, StreamView
from trio_harvest.ops.metrics import HarvestMetrics
from trio_harvest.ops.rollup import lanes_by_kind, streams_by_connection, top_lanes, top_streams
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition

from ..conftest import make_config
from ..opsfakes import FakeExchange, wait_for
from ..ports import free_port
from .test_ops_http import samples

SYMBOLS = tuple(f"S{i:03d}USDT" for i in range(500))
MAX_LINES = 3000


async def test_metrics_and_status_stay_small_at_500_symbols(tmp_path: Path) -> None:
    exchange = FakeExchange(symbols=SYMBOLS, interval=0.5)
    cfg = make_config(tmp_path, symbols=SYMBOLS, depth_levels=5, rotate_sec=1.0,
                      min_file_rows=1, health_interval=0.5, metrics_port=free_port(),
                      auto_recover=False, progress_interval=0, journal=False,
                      channels="trades,book,quotes")  # 3 streams a symbol, counted below
    h = Harvester(cfg, connect=exchange.connect, save=_discard)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await wait_for(lambda: all(c.stats.connected for c in h.connections)
                       and h.rotation.stats.kind("prices").files_written > 0, seconds=20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.ops.port}",
                                     timeout=10.0) as client:
            text = (await client.get("/metrics")).text
            status = (await client.get("/status")).json()
        # the same harvester with per-symbol series (what --metrics-per-symbol binds)
        full = HarvestMetrics()
        full.bind(h.ops, per_symbol=True)
        full_text = full.exposition()[0].decode()
        h.request_stop("test over")

    lines = text.count("\n")
    print(f"/metrics at 500 symbols: {lines} lines by default, {full_text.count(chr(10))} with "
          "per-symbol series")
    assert lines <= MAX_LINES, f"/metrics has {lines} lines at 500 symbols"
    m = samples(text)
    assert not any(name.startswith("trio_harvest_symbol_") for name in m)
    assert not any("symbol" in labels for series in m.values() for labels, _ in series)
    assert sum(v for _, v in m["trio_harvest_streams"]) == 1500
    assert sum(v for _, v in m["trio_harvest_streams_delivering"]) == 1500
    assert {lbl["kind"]: v for lbl, v in m["trio_harvest_lanes"]}["prices"] == 500
    conns = {lbl["connection"] for lbl, _ in m["trio_harvest_frames_received_total"]}
    assert len(conns) == len(h.connections) >= 8
    assert {lbl["venue"] for lbl, _ in m["trio_harvest_connection_up"]} == {"binance-usdm"}

    fm = samples(full_text)
    assert full_text.count("\n") > 5 * MAX_LINES  # what the default spares a scrape
    symbols = {lbl["symbol"] for lbl, _ in fm["trio_harvest_symbol_lane_depth"]}
    assert symbols == set(SYMBOLS)
    assert len(fm["trio_harvest_symbol_stream_staleness_seconds"]) == 1500

    # /status: counts and the worst few, never a list of every lane or stream
    assert status["streams_total"] == 1500 and len(status["streams"]) == 10
    assert sum(r["streams"] for r in status["streams_by_connection"]) == 1500
    assert status["lanes_total"] >= 1500 and len(status["lanes"]) <= 10
    assert status["lanes_by_kind"]["prices"]["lanes"] == 500
    assert len(status["problems"]) <= 20


async def _discard(part: Partition, gate: PublishGate) -> None:
    """A disk that takes every file at once: the run is about what is observed."""


def test_the_flag_the_environment_and_toml_turn_per_symbol_series_on(tmp_path: Path) -> None:
    args = build_parser().parse_args(["run", "--metrics-per-symbol"])
    assert args.metrics_per_symbol is True
    assert load_config({"data_dir": str(tmp_path)}).metrics_per_symbol is False
    assert load_config({"data_dir": str(tmp_path), "metrics_per_symbol": True}
                       ).metrics_per_symbol is True
    assert load_config({"data_dir": str(tmp_path)}, env={"TRIO_HARVEST_METRICS_PER_SYMBOL": "true"}
                       ).metrics_per_symbol is True
    toml = tmp_path / "h.toml"
    toml.write_text("metrics_per_symbol = true\n")
    assert load_config({"data_dir": str(tmp_path)}, config_file=toml).metrics_per_symbol is True


def _stream(i: int, kind: str, age: float) -> StreamView:
    return StreamView(f"public[{i // 200}]", f"S{i:03d}USDT", f"s{i:03d}usdt@{kind}", kind, 10.0,
                      age, 60.0, True)


def test_rollups_count_everything_and_rank_the_worst_first() -> None:
    streams = [_stream(i, k, age=float(i % 7)) for i in range(500) for k in ("aggTrade", "depth")]
    streams[123] = _stream(61, "depth", age=55.0)  # stale: 55 s > 10 s
    rolled = streams_by_connection(streams, uptime=60.0)
    assert sum(r.streams for r in rolled.values()) == 1000
    assert sum(r.stale for r in rolled.values()) == 1
    assert rolled[("public[0]", "depth")].staleness_max == 55.0
    worst = top_streams(streams, uptime=60.0)
    assert len(worst) == 10 and worst[0].age == 55.0

    lanes = [LaneView("prices", f"S{i:03d}USDT", level=i, high=400, capacity=1000)
             for i in range(500)]
    by = lanes_by_kind(lanes)["prices"]
    assert by.lanes == 500 and by.rows == sum(range(500)) and by.above_high == 100
    assert by.full == 0 and by.fill_max == 0.499
    top = top_lanes(lanes, 3)
    assert [ln.level for ln in top] == [499, 498, 497]
    assert top_lanes([LaneView("prices", "A", 0, 1, 2)]) == []  # empty lanes are not news
