"""The ops endpoint over real loopback sockets with a real HTTP client (httpx), the Prometheus
text parsed by prometheus-client's own parser. Real clock (sockets and threads)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from trio_harvest.app import Harvester
from trio_harvest.cli.commands import main
from trio_harvest.config import ConfigError
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition

from ..conftest import make_config
from ..opsfakes import FakeExchange, logging_restored, wait_for
from ..ports import free_port


@asynccontextmanager
async def running(harvester: Harvester) -> AsyncIterator[httpx.AsyncClient]:
    async with trio.open_nursery() as nursery:
        await nursery.start(harvester.run)
        port = harvester.ops.port
        assert port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            yield client
        harvester.request_stop("test over")


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def harvester(tmp_path: Path, save: Any = None, **overrides: Any) -> tuple[Harvester, FakeExchange]:
    exchange = FakeExchange(symbols=("BTCUSDT", "ETHUSDT"), interval=0.01)
    # trades and books only: the stream counts below are theirs (derivatives: test_health.py)
    settings: dict[str, Any] = dict(symbols=("BTCUSDT", "ETHUSDT"), depth_levels=5,
                                    rotate_sec=0.2, min_file_rows=1, health_interval=0.1,
                                    metrics_port=free_port(), auto_recover=False,
                                    channels="trades,book,quotes")
    settings.update(overrides)
    cfg = make_config(tmp_path, **settings)
    return Harvester(cfg, connect=exchange.connect, save=save), exchange


async def test_metrics_healthz_and_status_answer_over_loopback(tmp_path: Path) -> None:
    h, _exchange = harvester(tmp_path, metrics_per_symbol=True)
    async with running(h) as client:
        await wait_for(lambda: h.rotation.stats.kind("prices").files_written >= 2)
        r = await client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        m = samples(r.text)
        assert all(name.startswith("trio_harvest_") for name in m)
        assert sum(v for _, v in m["trio_harvest_frames_received_total"]) > 0
        assert dict((lbl["category"], v) for lbl, v in m["trio_harvest_decode_errors_total"]) == {
            "malformed": 0.0, "unexpected": 0.0, "rejected": 0.0}
        written = {lbl["kind"]: v for lbl, v in m["trio_harvest_rows_written_total"]}
        assert written["prices"] > 0 and written["orderbook"] > 0
        assert {lbl["kind"] for lbl, _ in m["trio_harvest_rows_deadlettered_total"]} >= {"prices"}
        assert sum(v for _, v in m["trio_harvest_reconnects_total"]) == 0
        lanes = {(lbl["kind"], lbl["symbol"]) for lbl, _ in m["trio_harvest_symbol_lane_depth"]}
        assert ("prices", "BTCUSDT") in lanes and ("orderbook", "ETHUSDT") in lanes
        by_kind = {lbl["kind"]: v for lbl, v in m["trio_harvest_lanes"]}
        assert by_kind["prices"] == 2 and by_kind["orderbook"] == 2
        assert {lbl["venue"] for lbl, _ in m["trio_harvest_lane_depth"]} == {"binance-usdm"}
        latency = {lbl["kind"]: v for lbl, v in m["trio_harvest_write_latency_seconds_count"]
                   if lbl["outcome"] == "ok"}
        assert latency["prices"] >= 2
        assert m["trio_harvest_limiter_total"] == [({}, 2.0)]
        assert 0 <= m["trio_harvest_limiter_in_use"][0][1] <= 2
        stale = {lbl["stream"]: v
                 for lbl, v in m["trio_harvest_symbol_stream_staleness_seconds"]}
        assert set(stale) == {"btcusdt@aggTrade", "ethusdt@aggTrade", "btcusdt@depth5@100ms",
                              "ethusdt@depth5@100ms", "btcusdt@bookTicker", "ethusdt@bookTicker"}
        assert all(0 <= v < 1 for v in stale.values())
        streams = {(lbl["connection"], lbl["stream_kind"]): v for lbl, v in m["trio_harvest_streams"]}
        assert sum(streams.values()) == 6 and {k for _, k in streams} == {
            "aggTrade", "depth", "bookTicker"}
        assert sum(v for _, v in m["trio_harvest_streams_delivering"]) == 6
        assert m["trio_harvest_resident_memory_bytes"][0][1] > 10_000_000
        assert m["trio_harvest_healthy"] == [({}, 1.0)]
        assert m["trio_harvest_deadletter_files"] == [({}, 0.0)]

        r = await client.get("/healthz")
        assert r.status_code == 200 and r.json()["status"] == "healthy"

        r = await client.get("/status")
        doc = r.json()
        assert r.status_code == 200 and doc["status"] == "healthy"
        assert len(doc["connections"]) == 2 and all(c["connected"] for c in doc["connections"])
        assert len(doc["streams"]) == 6 and all(s["delivering"] for s in doc["streams"])
        assert {(ln["kind"], ln["symbol"]) for ln in doc["lanes"]} >= {("prices", "BTCUSDT")}
        assert doc["writes"]["prices"]["files_written"] >= 2
        assert doc["writes"]["prices"]["last_write_age_s"] is not None
        assert doc["deadletter"]["files"] == 0 and doc["recovery"]["auto"] is False

        page = await client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert b"fetch(\"status\"" in page.content
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/metrics")).status_code == 405
        head = await client.head("/healthz")
        assert head.status_code == 200 and head.content == b""
        # OpenMetrics on request, as Prometheus negotiates it
        r = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        assert r.text.rstrip().endswith("# EOF")


async def test_failing_writes_turn_healthz_503_with_a_reason_while_ingest_continues(
    tmp_path: Path,
) -> None:
    async def read_only_disk(part: Partition, gate: PublishGate) -> None:
        raise OSError(30, "Read-only file system")

    h, _exchange = harvester(tmp_path, save=read_only_disk)
    async with running(h) as client:
        await wait_for(lambda: h.rotation.stats.kind("prices").write_failures >= 2)
        frames = h.router.stats.frames
        r = await client.get("/healthz")
        assert r.status_code == 503
        doc = r.json()
        assert doc["status"] == "degraded"
        assert any(p["code"] == "writes_failing" and "Read-only file system" in p["message"]
                   for p in doc["problems"])
        await wait_for(lambda: h.router.stats.frames > frames + 50)  # ingest goes on
        m = samples((await client.get("/metrics")).text)
        assert m["trio_harvest_healthy"] == [({}, 0.0)]
        dead = {lbl["kind"]: v for lbl, v in m["trio_harvest_rows_deadlettered_total"]}
        assert dead["prices"] > 0
        failed = {lbl["kind"]: v for lbl, v in m["trio_harvest_write_latency_seconds_count"]
                  if lbl["outcome"] == "failed"}
        assert failed["prices"] >= 2
        # the health task scans the dead letter on disk and reports its backlog
        await wait_for(lambda: h.ops.sampler.backlog.files > 0)
        status = (await client.get("/status")).json()
        assert status["deadletter"]["files"] > 0 and status["deadletter"]["rows"] > 0
    assert h.stop_state.reason == "test over"


async def test_keep_alive_serves_several_requests_on_one_connection(tmp_path: Path) -> None:
    h, _exchange = harvester(tmp_path)
    async with running(h) as client:
        for _ in range(5):
            assert (await client.get("/healthz")).status_code in (200, 503)
    assert h.ops.server.requests == 5 and h.ops.server.errors == 0


async def test_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        h, _exchange = harvester(tmp_path, metrics_port=port)
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} is already in use"):
            await h.run()
        assert h.connections == []  # nothing started


def test_cli_port_in_use_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with logging_restored():
            code = main(["run", "--data-dir", str(tmp_path / "d"), "--metrics-port", str(port),
                         "--ws-url", "ws://127.0.0.1:9", "--duration", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "already in use" in err and "Traceback" not in err


def test_status_document_is_json_serialisable_without_trio_time(tmp_path: Path) -> None:
    # /status is built from stats only; before the run nothing is connected yet
    h, _ = harvester(tmp_path)
    doc = trio.run(_status, h)
    json.dumps(doc)
    assert doc["connections"] == [] and doc["status"] == "healthy"


async def _status(h: Harvester) -> dict[str, Any]:
    return h.ops.status()


async def test_a_failing_handler_and_a_bad_client_do_not_hurt_the_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h, _exchange = harvester(tmp_path)

    def broken() -> dict[str, Any]:
        raise RuntimeError("a bug in /status")

    monkeypatch.setattr(h.ops, "status", broken)
    async with running(h) as client:
        assert (await client.get("/status")).status_code == 500
        assert h.ops.server.errors == 1
        port = h.ops.port
        assert port is not None
        for junk in (b"\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nX: " + b"a" * 40_000):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            with trio.move_on_after(5):
                await stream.send_all(junk)
                answer = await stream.receive_some(1024)
                assert answer == b"" or answer.startswith(b"HTTP/1.1 4")
            await stream.aclose()
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
    assert h.stop_state.reason == "test over"
