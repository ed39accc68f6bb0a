"""New connections within the venue's per-IP limit, end to end: OKX refuses a handshake beyond 3
a second (HTTP 429), and so does the simulator speaking OKX. A burst of raw handshakes is refused
there; the harvester, opening 7 connections at once from the command line, is refused none and
never has to reconnect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.ingest.connection import RECOVERABLE, websocket_connector

from .cli.test_cli import run_cli
from .conftest import make_config
from .ops.test_ops_http import samples
from .ports import free_port


def _sim(seconds: int) -> tuple[subprocess.Popen[str], str]:
    sim = subprocess.Popen([sys.executable, "-m", "trio_harvest", "sim", "--venue", "okx-swap",
                            "--port", "0", "--rate", "200", "--duration", str(seconds)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    ws = sim.stdout.readline().split("listening on ")[1].split()[0]
    return sim, ws


def _stopped(sim: subprocess.Popen[str]) -> str:
    sim.terminate()
    out, _ = sim.communicate(timeout=30)
    return next(x for x in out.splitlines() if x.startswith("simulator stopped"))


def test_the_okx_simulator_refuses_a_burst_of_handshakes() -> None:
    """The check the harvester must pass can fail: five handshakes at once, two refused."""
    sim, ws = _sim(30)
    refused = 0

    async def burst() -> None:
        connect = websocket_connector(1 << 20)  # the harvester's own, not paced

        async def one() -> None:
            nonlocal refused
            try:
                async with connect(f"{ws}/ws/v5/public"):
                    await trio.sleep(0.2)
            except RECOVERABLE as exc:
                assert "429" in str(exc)
                refused += 1

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)

    try:
        trio.run(burst)
    finally:
        line = _stopped(sim)
    assert refused == 2
    assert "2 handshakes refused for too many new connections" in line


def test_the_harvester_opens_its_connections_within_the_limit(tmp_path: Path) -> None:
    sim, ws = _sim(60)
    try:
        out = run_cli("run", "--venue", "okx-swap", "--ws-url", ws, "--rest-url",
                      ws.replace("ws://", "http://"), "--symbols", "BTC-USDT-SWAP,ETH-USDT-SWAP",
                      "--streams-per-connection", "2", "--duration", "5", "--data-dir",
                      str(tmp_path / "d"))
    finally:
        line = _stopped(sim)
    assert out.returncode == 0, out.stderr
    assert "over 7 connections" in out.stderr  # more than the venue takes in one second
    assert "reconnects 0" in out.stdout + out.stderr
    assert "paced to 3 per 1.2s" in out.stderr  # the ones past the third waited their turn
    assert "7 connections" in line and "refused" not in line, line


async def test_the_wait_for_a_turn_is_a_metric(tmp_path: Path) -> None:
    """``/metrics`` counts the seconds new connections waited under the venue's limit: seven
    OKX connections at once, three a turn, so the ones past the third waited."""
    cfg = make_config(tmp_path, sim=True, venue="okx-swap", sim_rate=200.0,
                      streams_per_connection=2, metrics_port=free_port(), shutdown_grace=6.0)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(3.0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.ops.port}",
                                     timeout=10) as client:
            text = (await client.get("/metrics")).text
        h.request_stop("test over")
    [(labels, value)] = samples(text)["trio_harvest_connect_wait_seconds_total"]
    assert labels == {"venue": "okx-swap"} and value > 1.0
    assert h.connect_window is not None and value == pytest.approx(h.connect_window.waited)
