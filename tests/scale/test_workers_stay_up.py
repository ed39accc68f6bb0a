"""``run --sim --workers 2`` as a real supervisor process, long enough to outlive trio's idle
worker threads (the parent-death signal used to follow those threads and stopped every worker
after ~10 s): a SIGKILLed worker is restarted and the other is not; SIGTERM stops the host with
exit 0 and no worker left; a SIGKILLed supervisor leaves workers that make their final flush and
exit 0 on their own. Real processes, real clock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl

from trio_harvest.storage.partitions import DEADLETTER_DIR

from ..ports import free_port

ROOT = Path(__file__).resolve().parents[2]
THREAD_IDLE = 10.0  # trio's thread cache ends a thread idle this long
SYMBOLS = "BTCUSDT,ETHUSDT,LINKUSDT,DOGEUSDT"


def harvester_argv(data: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "trio_harvest", "run", "--sim", "--workers", "2",
            "--symbols", SYMBOLS, "--data-dir", str(data), "--metrics-port", str(port),
            "--health-interval", "0.5", "--log-level", "WARNING", "--summary-json"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TRIO_HARVEST_WORKER_STABLE_AFTER": "3"}


def status(port: int) -> dict[str, Any] | None:
    try:
        doc = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return doc["workers"] if isinstance(doc, dict) else None


def wait_for(cond: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def both_up(port: int) -> dict[str, Any] | None:
    """Both workers running and answering on their ops endpoints (so their signal handlers are
    in place: a stop sent earlier would kill a worker still importing)."""
    doc = status(port)
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["workers"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    if doc and len(doc) == 2 and all(w["up"] and w["pid"] for w in doc.values()) \
            and all(h["http_status"] is not None for h in health.values()):
        return doc
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_outlive_the_thread_cache_and_a_killed_one_alone_is_restarted(
    tmp_path: Path,
) -> None:
    port = free_port(3)  # the host's, then one per worker
    log = (tmp_path / "sup.log").open("wb")
    sup = subprocess.Popen(harvester_argv(tmp_path / "data", port), env=env(),
                           stdout=subprocess.PIPE, stderr=log)
    pids: list[int] = []
    try:
        first = wait_for(lambda: both_up(port), 60, "both workers up")
        pids = [first["0"]["pid"], first["1"]["pid"]]
        # past trio's idle thread timeout and stable_after: nothing may stop or restart
        quiet_until = time.monotonic() + THREAD_IDLE + 2.0
        while time.monotonic() < quiet_until:
            doc = status(port)
            assert doc is not None and sup.poll() is None
            assert [doc["0"]["pid"], doc["1"]["pid"]] == pids, doc
            assert doc["0"]["restarts"] == doc["1"]["restarts"] == 0, doc
            time.sleep(0.5)
        os.kill(pids[0], signal.SIGKILL)
        after = wait_for(lambda: (d := both_up(port)) and d["0"]["pid"] != pids[0] and d,
                         30, "worker 0 restarted")
        assert after["0"]["restarts"] == 1 and after["0"]["last_exit"] == -signal.SIGKILL
        assert after["1"]["restarts"] == 0 and after["1"]["pid"] == pids[1]
        pids.append(after["0"]["pid"])
        sup.send_signal(signal.SIGTERM)
        out, _ = sup.communicate(timeout=60)
        assert sup.returncode == 0, (tmp_path / "sup.log").read_text(errors="replace")[-3000:]
        assert not [p for p in pids if alive(p)]
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    workers = summary["workers"]
    assert [workers["0"]["restarts"], workers["1"]["restarts"]] == [1, 0]
    assert workers["0"]["exit"] == workers["1"]["exit"] == 0  # each made its clean stop
    assert summary["frames"] > 0 and not sum(summary["rows_deadlettered"].values())


# The SIGKILLed supervisor's workers are re-parented to this script (a child subreaper), so it
# can reap them and report how each one ended.
ORPHANS = r"""
import ctypes, json, os, signal, subprocess, sys, time
import httpx
ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
port, argv = int(sys.argv[1]), json.loads(sys.argv[2])
sup = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(sys.argv[3], "wb"))
pids, deadline = [], time.monotonic() + 60
while time.monotonic() < deadline and not pids:
    try:
        doc = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        st = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()["workers"]
        if doc.status_code == 200 and len(st) == 2 and all(w["up"] for w in st.values()):
            pids = [w["pid"] for w in st.values()]
    except (httpx.HTTPError, ValueError, KeyError):
        pass
    time.sleep(0.2)
time.sleep(2.0)  # some rows in the lanes, none written yet (rotation is 60 s away)
os.kill(sup.pid, signal.SIGKILL)
sup.wait()
killed_at, ended = time.monotonic(), {}
while time.monotonic() < killed_at + 60 and len(ended) < len(pids):
    try:
        pid, st = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid in pids:
        ended[pid] = {"code": os.waitstatus_to_exitcode(st), "after_s": time.monotonic() - killed_at}
    elif pid == 0:
        time.sleep(0.05)
for pid in pids:
    if pid not in ended:
        os.kill(pid, signal.SIGKILL)
print(json.dumps({"pids": pids, "ended": {str(k): v for k, v in ended.items()}}))
"""


def test_a_killed_supervisors_workers_flush_and_exit_cleanly(tmp_path: Path) -> None:
    port = free_port(3)  # the host's, then one per worker
    data = tmp_path / "data"
    (tmp_path / "orphans.py").write_text(ORPHANS)
    out = subprocess.run(
        [sys.executable, str(tmp_path / "orphans.py"), str(port),
         json.dumps(harvester_argv(data, port)), str(tmp_path / "sup.log")],
        env=env(), capture_output=True, text=True, timeout=150)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(doc["pids"]) == 2, (doc, (tmp_path / "sup.log").read_text()[-2000:])
    ended = doc["ended"]
    assert set(ended) == {str(p) for p in doc["pids"]}, doc  # both ended on their own
    assert all(e["code"] == 0 for e in ended.values()), doc  # a clean stop, summary and all
    assert all(e["after_s"] < 30 for e in ended.values()), doc  # shutdown_grace 10 s, bounded
    # the final flush wrote every symbol's rows (no rotation happened before it) and nothing
    # went to the dead letter
    prices = pl.read_parquet(str(data / "venue=*" / "date=*" / "symbol=*" / "kind=prices" / "*.parquet"),
                             hive_partitioning=True)
    assert set(prices["symbol"].unique()) == set(SYMBOLS.split(","))
    dead = data / DEADLETTER_DIR
    assert not dead.exists() or not [p for p in dead.rglob("*") if p.is_file()]
