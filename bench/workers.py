"""Highest sustained rate with ``run --workers 1`` and ``run --workers 2`` against the same
simulator, and the CPU per message of the whole harvester (supervisor + workers).

For each worker count and offered rate: a fresh simulator process (``python -m trio_harvest
sim``) and ``python -m trio_harvest run --workers W --ws-url <sim> …`` as a child process with the
host ops endpoint on. After a warm-up, a window: frames from the host's ``/metrics`` (summed over
the ``worker`` label), CPU of the supervisor and each worker from /proc, and the simulator's CPU
(on a 2-core machine the simulator competes with the workers for the same cores: it is
reported, not hidden). A run *keeps up* when it ended less than one second of frames behind the
simulator's queue (frames queued − frames received, over the receive rate in the window; a
harvester that falls behind piles up seconds) and no connection was dropped as a slow consumer.
On a loaded machine the simulator may send less than the nominal ``offered`` rate: the received
rate is the figure, ``offered`` only the ladder's step.
Last line: one JSON object, keys ``workers.1.max_rate``, ``workers.2.max_rate``, ``scaling`` (= their ratio).

    python bench/workers.py --quick      # about 75 s: offered 8k, 16k, 24k msg/s
    python bench/workers.py              # 8k … 24k in 4k steps, 5 s windows (2-3 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import _common as C
import httpx
from prometheus_client.parser import text_string_to_metric_families

MAX_BACKLOG_S = 1.0  # frames queued but not received when the run stopped, in seconds of rate
SYMBOLS = 100  # rendezvous hashing splits these 52 / 48 over two workers


free_port = C.free_port


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                for child in fh.read().split():
                    out.append(int(child))
                    out.extend(descendants(int(child)))
    except OSError:
        pass
    return out


def tree_cpu(pid: int) -> tuple[float, int]:
    total, n = 0.0, 0
    for p in (pid, *descendants(pid)):
        try:
            total += C.proc_cpu_seconds(p)
            n += 1
        except OSError:
            continue
    return total, n


def frames_from(port: int) -> tuple[float, int]:
    """Frames received by the whole host, and how many workers reported."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total, workers = 0.0, set()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "trio_harvest_frames_received_total":
                total += s.value
                workers.add(s.labels.get("worker"))
    return total, len(workers)


def measure(workers: int, rate: float, syms: tuple[str, ...], warmup: float,
            window: float) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="bench-workers-")
    port = free_port()
    sim = C.SimProcess(rate, syms).start()
    duration = warmup + window + 2.0
    cmd = [sys.executable, "-m", "trio_harvest", "run", "--workers", str(workers),
           "--ws-url", sim.url, "--rest-url", sim.rest_url, "--symbols", ",".join(syms),
           "--duration", str(duration), "--data-dir", data_dir, "--metrics-port", str(port),
           "--health-interval", "1", "--summary-json", "--log-level", "ERROR"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    res: dict[str, Any] = {"workers": workers, "offered": rate}
    try:
        start = time.monotonic()
        while True:  # warm-up: every worker connected and counting, then ``warmup`` seconds
            time.sleep(0.5)
            try:
                _f, n = frames_from(port)
            except httpx.HTTPError:
                n = 0
            if n >= workers and time.monotonic() - start >= warmup:
                break
            if time.monotonic() - start > warmup + 30:
                raise RuntimeError("workers did not start")
        f0, _ = frames_from(port)
        c0, procs = tree_cpu(proc.pid)
        s0, t0 = sim.cpu(), time.perf_counter()
        time.sleep(window)
        f1, _ = frames_from(port)
        c1, _ = tree_cpu(proc.pid)
        s1, t1 = sim.cpu(), time.perf_counter()
        out, _ = proc.communicate(timeout=duration + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stopped = sim.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    secs = t1 - t0
    frames = f1 - f0
    summary = json.loads(out.strip().splitlines()[-1])
    queued = stopped["frames_queued"]
    res.update({
        "recv_per_s": round(frames / secs, 1),
        "cpu_pct": round(100 * (c1 - c0) / secs, 1),
        "us_per_msg": round(1e6 * (c1 - c0) / frames, 1) if frames else None,
        "sim_cpu_pct": round(100 * (s1 - s0) / secs, 1),
        "processes": procs,
        "delivered": round(summary["frames"] / queued, 4) if queued else None,
        "slow_consumer_closes": stopped["slow_consumer_closes"],
        "rows_lost": sum(summary["rows_lost"].values()),
        "rows_deadlettered": sum(summary["rows_deadlettered"].values()),
    })
    # behind: frames the simulator queued that the harvester never read, in seconds of its rate
    backlog = (queued - summary["frames"]) if queued else None
    rate_now = res["recv_per_s"]
    res["backlog_s"] = round(backlog / rate_now, 2) if backlog is not None and rate_now else None
    res["sustained"] = bool(res["backlog_s"] is not None and res["backlog_s"] <= MAX_BACKLOG_S
                            and not stopped["slow_consumer_closes"])
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="rates 8k, 16k, 24k, 3 s windows (about 75 s)")
    p.add_argument("--full", action="store_true", help="rates 8k..32k, 8 s windows")
    p.add_argument("--rates", default=None, help="comma-separated offered rates (msg/s)")
    p.add_argument("--symbols", type=int, default=SYMBOLS)
    args = p.parse_args(argv)
    rates = ([8000.0, 16000.0, 24000.0] if args.quick else
             [8000.0, 12000.0, 16000.0, 20000.0, 24000.0, 28000.0, 32000.0] if args.full else
             [8000.0, 12000.0, 16000.0, 20000.0, 24000.0])
    if args.rates:
        rates = [float(r) for r in args.rates.split(",")]
    warmup, window = (2.0, 3.0) if args.quick else (4.0, 8.0) if args.full else (3.0, 5.0)
    syms = C.symbols(args.symbols)
    load = os.getloadavg()
    results: list[dict[str, Any]] = []
    best: dict[int, float] = {}
    for workers in (1, 2):
        for rate in rates:
            r = measure(workers, rate, syms, warmup, window)
            results.append(r)
            if r["sustained"]:
                best[workers] = max(best.get(workers, 0.0), r["recv_per_s"])
            else:
                break  # fell behind: higher rates will not keep up either
    print(C.table(["workers", "offered", "recv msg/s", "delivered", "behind s",
                   "kept up", "CPU %", "us/msg", "sim CPU %", "procs", "dead-l.", "lost"],
                  [(r["workers"], r["offered"], r["recv_per_s"], r["delivered"],
                    r["backlog_s"], r["sustained"],
                    r["cpu_pct"], r["us_per_msg"], r["sim_cpu_pct"], r["processes"],
                    r["rows_deadlettered"], r["rows_lost"]) for r in results]))
    one, two = best.get(1, 0.0), best.get(2, 0.0)
    print(f"highest sustained: 1 worker {one:,.0f} msg/s, 2 workers {two:,.0f} msg/s "
          f"(the simulator shares the {os.cpu_count()} cores)")
    doc: dict[str, Any] = {
        "workers.1.max_rate": one, "workers.2.max_rate": two,
        "scaling": round(two / one, 3) if one else None,
        "symbols": args.symbols, "rates": rates, "runs": results,
        "us_per_msg": {str(w): min((r["us_per_msg"] for r in results
                                    if r["workers"] == w and r["us_per_msg"]), default=None)
                       for w in (1, 2)},
        **C.conditions(load),
    }
    C.emit_json(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
