"""The supervisor with stand-in workers (tiny Python children): restart with backoff, stop
forwarded and waited for, a user mistake stops the host; and the real thing end to end:
``run --sim --workers 2`` with one ops endpoint and one summary. Real processes, real clock."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from trio_harvest.cli.commands import main
from trio_harvest.scale.aggregate import WorkerView
from trio_harvest.scale.supervisor import Supervisor, SupervisorSettings

from ..ports import free_port

CHILD = r"""
import json, signal, sys, time
from pathlib import Path
marker = Path(sys.argv[1]); mode = sys.argv[2]
runs = int(marker.read_text()) + 1 if marker.exists() else 1
marker.write_text(str(runs))
if mode == "usage":
    print("trio_harvest: error: bad flag", file=sys.stderr); sys.exit(2)
if mode == "crash-once" and runs == 1:
    sys.exit(1)
if mode == "clean-exit-once" and runs == 1:
    sys.exit(0)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
Path(f"{marker}.ready{runs}").write_text("1")  # handlers in place
print("ready", flush=True)
while not stop:
    time.sleep(0.01)
time.sleep(0.3)  # the final flush
print(json.dumps({"frames": 10, "seconds": 1.0, "rows_written": {"prices/X": runs},
                  "rows_deadlettered": {}, "rows_lost": {}}), flush=True)
"""


def supervisor(tmp_path: Path, mode: str, n: int = 2, **settings: Any) -> Supervisor:
    workers = [WorkerView(i, (f"S{i}USDT",)) for i in range(n)]
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def argv_of(w: WorkerView) -> list[str]:
        return [sys.executable, str(script), str(tmp_path / f"runs-{w.index}"), mode]

    opts = SupervisorSettings(backoff_initial=0.05, backoff_max=0.2, stop_bound=20, **settings)
    return Supervisor(workers, argv_of, opts, handle_signals=False)


async def until(cond: Any, seconds: float = 20.0) -> None:
    with trio.fail_after(seconds):
        while not cond():
            await trio.sleep(0.02)


async def test_a_dead_worker_is_restarted_and_a_stop_waits_for_each_flush(tmp_path: Path) -> None:
    sup = supervisor(tmp_path, "crash-once")
    async with trio.open_nursery() as nursery:
        codes: list[int] = []

        async def go() -> None:
            codes.append(await sup.run())

        nursery.start_soon(go)
        await until(lambda: all(Path(f"{tmp_path / f'runs-{w.index}'}.ready2").exists()
                                for w in sup.workers))
        sup.request_stop(signal.SIGTERM)
    assert codes == [0]
    for w in sup.workers:
        assert w.last_exit == 0 and w.restarts == 1 and not w.up
        assert w.summary is not None and w.summary["rows_written"] == {"prices/X": 2}


async def test_without_duration_a_worker_that_exits_cleanly_is_restarted_too(
    tmp_path: Path,
) -> None:
    sup = supervisor(tmp_path, "clean-exit-once", n=1, restart_clean_exits=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sup.run)
        await until(lambda: Path(f"{tmp_path / 'runs-0'}.ready2").exists())
        sup.request_stop(signal.SIGTERM)
    assert sup.workers[0].last_exit == 0 and sup.workers[0].summary is not None


async def test_a_worker_that_fails_on_a_user_mistake_stops_the_host(tmp_path: Path) -> None:
    sup = supervisor(tmp_path, "usage", n=1)
    logged: list[str] = []
    sup.log_sink = logged.append
    with trio.fail_after(20):
        code = await sup.run()
    assert code == 2 and sup.fatal and sup.workers[0].restarts == 0
    # the worker's own line reaches the supervisor's stderr, marked with the worker
    assert "".join(logged) == "[worker 0] trio_harvest: error: bad flag\n"


def test_log_lines_are_marked_with_their_worker() -> None:
    from trio_harvest.scale.supervisor import tag_line

    assert tag_line(3, "2026-01-01 INFO app: harvesting") == "[worker 3] 2026-01-01 INFO app: harvesting"
    assert json.loads(tag_line(1, '{"level": "INFO", "msg": "x"}')) == {
        "worker": 1, "level": "INFO", "msg": "x"}
    assert tag_line(0, "{not json") == "[worker 0] {not json"


def _poll(port: int, seen: dict[str, Any], done: threading.Event) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        while not done.is_set():
            try:
                h = client.get("/healthz")
                m = client.get("/metrics")
                st = client.get("/status")
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            doc = h.json()
            if h.status_code == 200 and len(doc["workers"]) == 2:
                seen.update(health=doc, metrics=m.text, status=st.json())
                return
            time.sleep(0.1)


def test_run_with_two_workers_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port(3)  # the host's, then one per worker
    data = tmp_path / "data"
    seen: dict[str, Any] = {}
    done = threading.Event()
    poller = threading.Thread(target=_poll, args=(port, seen, done))
    poller.start()
    try:
        code = main(["run", "--sim", "--workers", "2", "--symbols", "BTCUSDT,ETHUSDT,LINKUSDT",
                     "--duration", "5", "--data-dir", str(data), "--metrics-port", str(port),
                     "--rotate-sec", "1", "--min-file-rows", "1", "--summary-json",
                     "--health-interval", "0.5", "--log-level", "WARNING"])
    finally:
        done.set()
        poller.join()
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["workers"]) == {"0", "1"}
    # load-weighted: BTC and ETH (the heavy two) on different workers, LINK with the lighter side
    assert summary["workers"]["0"]["symbols"] == 1 and summary["workers"]["1"]["symbols"] == 2
    assert summary["frames"] > 0 and not sum(summary["rows_lost"].values())
    prices = pl.read_parquet(str(data / "venue=*" / "date=*" / "symbol=*" / "kind=prices" / "*.parquet"),
                             hive_partitioning=True)
    assert set(prices["symbol"].unique()) == {"BTCUSDT", "ETHUSDT", "LINKUSDT"}
    assert summary["rows_written"]["prices/LINKUSDT"] == prices.filter(
        pl.col("symbol") == "LINKUSDT").height
    # one endpoint for the host while it ran, every worker's samples labelled
    assert seen, "the host endpoint never reported both workers healthy"
    assert seen["health"]["healthy"] is True
    frames = [s for f in text_string_to_metric_families(seen["metrics"]) for s in f.samples
              if s.name == "trio_harvest_frames_received_total"]
    assert {s.labels["worker"] for s in frames} == {"0", "1"}
    assert seen["status"]["workers"]["1"]["symbols"] == ["ETHUSDT", "LINKUSDT"]
    assert sorted((data / "_locks").iterdir()) == [data / "_locks" / "shard-0-of-2.lock",
                                                   data / "_locks" / "shard-1-of-2.lock"]


def test_each_worker_runs_its_shard_and_the_hosts_rest_budget_is_shared() -> None:
    from trio_harvest.cli.scale import worker_argv
    from trio_harvest.config import build_config

    cfg = build_config({"workers": 4, "backfill_weight": 2000})
    settings = SupervisorSettings(metrics_port=9100)
    argv = worker_argv(cfg, ["run", "--workers", "4", "--symbols", "A1USDT"], 2, 4, settings)
    assert argv[1:3] == ["-m", "trio_harvest"]
    tail = argv[3:]
    assert tail[:4] == ["run", "--workers", "4", "--symbols"]
    # later flags win in argparse: the worker is one shard, not a supervisor of its own
    assert tail[tail.index("--workers", 2) + 1] == "1"
    assert tail[tail.index("--shard") + 1] == "2/4"
    assert tail[tail.index("--backfill-weight") + 1] == "500"  # 2000 / 4: Binance counts per IP
    assert tail[tail.index("--metrics-port") + 1] == "9103"


def test_the_workers_of_a_host_share_its_memory_for_buffered_rows() -> None:
    from trio_harvest.cli.scale import worker_argv
    from trio_harvest.config import build_config

    cfg = build_config({"workers": 4, "max_buffered_mb": 200})
    argv = worker_argv(cfg, ["run", "--workers", "4"], 1, 4, SupervisorSettings(metrics_port=0))
    assert argv[argv.index("--max-buffered-mb") + 1] == "50"


SUPERVISOR = r"""
import sys, trio
sys.path.insert(0, sys.argv[3])
from trio_harvest.scale.aggregate import WorkerView
from trio_harvest.scale.supervisor import Supervisor, SupervisorSettings
child, marker = sys.argv[1], sys.argv[2]
sup = Supervisor([WorkerView(0, ("AUSDT",))],
                 lambda w: [sys.executable, child, marker, "stay"], SupervisorSettings())
trio.run(sup.run)
"""


def test_a_worker_whose_supervisor_is_killed_stops_cleanly(tmp_path: Path) -> None:
    import subprocess

    # the stand-in keeps the workers' contract (parent.py): end of file on stdin = stop cleanly
    (tmp_path / "child.py").write_text(CHILD.replace(
        "time.sleep(0.3)  # the final flush", "marker.with_suffix('.stopped').write_text('1')")
        .replace("marker.write_text(str(runs))",
                 "marker.with_suffix('.pid').write_text(str(os.getpid()))\nmarker.write_text(str(runs))")
        .replace("import json, signal, sys, time", "import json, os, signal, sys, threading, time")
        .replace("print(\"ready\", flush=True)",
                 "threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop.append(1)), "
                 "daemon=True).start()\nprint(\"ready\", flush=True)"))
    (tmp_path / "sup.py").write_text(SUPERVISOR)
    marker = tmp_path / "runs-0"
    root = str(Path(__file__).resolve().parents[2])
    sup = subprocess.Popen([sys.executable, str(tmp_path / "sup.py"), str(tmp_path / "child.py"),
                            str(marker), root], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not Path(f"{marker}.ready1").exists():  # its signal handlers are in place
            assert time.monotonic() < deadline and sup.poll() is None
            time.sleep(0.05)
        os.kill(sup.pid, signal.SIGKILL)  # no chance to forward anything
        sup.wait(timeout=10)
        stopped = marker.with_suffix(".stopped")
        while not stopped.exists():
            assert time.monotonic() < deadline, "the orphaned worker never saw its stdin close"
            time.sleep(0.05)
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        pid_file = marker.with_suffix(".pid")
        if pid_file.exists():  # never leave the stand-in worker behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
