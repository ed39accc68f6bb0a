"""A whole market: 500 symbols at 10k msg/s from a separate simulator, the harvester as its own
process (``run --ws-url … --rest-url …`` with default settings), then SIGTERM.

Measured over the window (from the first frames to the SIGTERM): the harvester's CPU (all
threads, % of one core, from /proc), its RSS (sampled every 0.5 s, and the kernel's VmHWM),
frames received (``/metrics``), and the journal's bytes per record (every segment's last size
seen on disk, over the records the journal reports). Then the stop: seconds from SIGTERM to
exit, rows in the dead letter, and the harvester's own line on where the stop spent its time
(``stop_phases``). Then ``compact --older-than 0 --delete-after 0`` (run here, at the end: this
bench does not wait for auto-compaction) and the files per (date, symbol, kind, hour), and the
write amplification: bytes written by rotation plus bytes compaction wrote, over the bytes of
the final dataset.

Run: ``python bench/wholemarket.py [--quick] [--symbols N] [--rate R] [--duration S]``. Full
mode runs 15 minutes, ``--quick`` 60 s. Output: a table, then (last line) one JSON object.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

TARGETS = {"cpu_pct": 50.0, "rss_peak_mb": 1000.0, "files_per_partition_hour": 2}
_PART = re.compile(r"part-(\d+)-(\d+)-")


def metrics(port: int) -> dict[str, float]:
    """``/metrics`` summed by metric name (labels dropped)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        except ValueError:
            continue
    return out


def metric(m: dict[str, float], suffix: str) -> float:
    return sum(v for k, v in m.items() if k.endswith(suffix))


def hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def journal_sizes(jdir: Path, seen: dict[str, int]) -> None:
    """Remember each segment's largest size seen (segments only grow, then go)."""
    try:
        for entry in os.scandir(jdir):
            if entry.name.startswith("seg-"):
                try:
                    size = entry.stat().st_size
                except OSError:
                    continue
                if size > seen.get(entry.name, 0):
                    seen[entry.name] = size
    except OSError:
        pass


def deadletter_rows(data_dir: Path) -> int:
    rows = 0
    for name in ("deadletter", "_deadletter"):
        for f in (data_dir / name).rglob("*.ndjson"):
            if "_rejected" in f.parts:
                continue
            with open(f, "rb") as fh:
                rows += sum(1 for _ in fh)
    return rows


def parquet_files(data_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in data_dir.glob("**/kind=*/*.parquet")}


def per_partition_hour(files: dict[Path, int]) -> tuple[int, float]:
    """(most, mean) files per (date, symbol, kind, UTC hour of a file's first row)."""
    hours: Counter[tuple[str, int]] = Counter()
    for p in files:
        m = _PART.match(p.name)
        hour = int(m.group(1)) // 3_600_000 if m else -1
        hours[(str(p.parent), hour)] += 1
    if not hours:
        return 0, 0.0
    return max(hours.values()), sum(hours.values()) / len(hours)


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    syms = C.symbols(args.symbols)
    port = C.free_port()
    log_path = data_dir.parent / "harvester.log"
    res: dict[str, Any] = {}
    sim_stats: dict[str, Any] = {}
    with C.SimProcess(args.rate, syms) as sim:
        cmd = [sys.executable, "-m", "trio_harvest", "run", "--ws-url", sim.url,
               "--rest-url", sim.rest_url, "--symbols", ",".join(syms),
               "--data-dir", str(data_dir), "--metrics-port", str(port)]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            res = measure(args, proc, port, data_dir,
                          start_window=lambda: _start_profiler(args.profile, proc.pid),
                          stop_sim=lambda: sim_stats.update(sim.stop()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        res["sim"] = sim_stats or sim.stop()
    lines = log_path.read_text(errors="replace").splitlines()
    res["log_tail"] = lines[-8:]
    # the harvester's own account of its stop: seconds per phase (ingest, backfill, features,
    # authoritative files, derived files, dead letter, journal), what was buffered, whether a
    # compaction round was running
    res["stop_phases"] = next((line.split("app: ", 1)[-1] for line in reversed(lines)
                               if "stop took" in line), None)
    return res


def main_thread_cpu_seconds(pid: int) -> float:
    """utime + stime of the harvester's main thread (the trio loop: ingest, routing, signals,
    features, scheduling); the rest of its CPU is worker threads (Parquet encoding, group
    commits, the journal's commits, compaction)."""
    return C.proc_cpu_seconds(f"{pid}/task/{pid}")


def _start_profiler(path: str | None, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy (raw collapsed stacks of every thread, 100 Hz, without pausing the harvester)
    attached for the measured window only; None without ``--profile``."""
    if not path:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([spy, "record", "-r", "100", "--threads", "-f", "raw", "-o", path,
                             "--nonblocking", "--pid", str(pid)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def measure(args: argparse.Namespace, proc: subprocess.Popen[bytes], port: int,
            data_dir: Path, start_window: Any = lambda: None,
            stop_sim: Any = lambda: None) -> dict[str, Any]:
    jdir = data_dir / "_journal"
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 60
    m0: dict[str, float] = {}
    while time.monotonic() < deadline:  # ready: /metrics answers and frames flow
        try:
            m0 = metrics(port)
            if metric(m0, "frames_received_total") > 0:
                break
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"harvester exited ({proc.returncode}) before receiving frames")
        time.sleep(0.5)
    profiler = start_window()
    t0, cpu0 = time.perf_counter(), C.proc_cpu_seconds(proc.pid)
    main0 = main_thread_cpu_seconds(proc.pid)
    frames0 = metric(m0, "frames_received_total")
    rss_peak, rss_samples = 0.0, []
    first_file_s = None
    while time.perf_counter() - t0 < args.duration:
        time.sleep(0.5)
        rss = C.rss_mb(proc.pid)
        rss_peak = max(rss_peak, rss)
        rss_samples.append((time.perf_counter() - t0, rss))
        journal_sizes(jdir, seen)
        if first_file_s is None and next(data_dir.glob("**/kind=*/*.parquet"), None):
            first_file_s = round(time.perf_counter() - t0, 1)
    m1 = metrics(port)
    wall, cpu = time.perf_counter() - t0, C.proc_cpu_seconds(proc.pid) - cpu0
    cpu_main = main_thread_cpu_seconds(proc.pid) - main0
    rss_peak = max(rss_peak, hwm_mb(proc.pid))
    journal_sizes(jdir, seen)
    records = metric(m1, "journal_records_total")
    if profiler is not None:  # py-spy writes its file on SIGINT; the stop is not profiled
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
    t_sig = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    while proc.poll() is None:  # the journal's last segments, until they go
        journal_sizes(jdir, seen)
        time.sleep(0.05)
    stop_s = time.perf_counter() - t_sig
    stop_sim()  # nothing to receive any more: the simulator's CPU would only slow compaction
    frames = metric(m1, "frames_received_total") - frames0
    before = parquet_files(data_dir)
    t_c = time.perf_counter()
    compact = subprocess.run([sys.executable, "-m", "trio_harvest", "compact", "--data-dir",
                              str(data_dir), "--older-than", "0", "--delete-after", "0"],
                             capture_output=True, text=True) if not args.no_compact else \
        subprocess.CompletedProcess([], 0, "", "")  # the budget once merges settled
    compact_s = time.perf_counter() - t_c
    after = parquet_files(data_dir)
    written_by_compaction = sum(size for p, size in after.items() if p not in before)
    most, mean = per_partition_hour(after)
    final_bytes = sum(after.values())
    return {
        "window_s": round(wall, 1),
        "msgs": int(frames),
        "rate": round(frames / wall, 1),
        "cpu_pct": round(100.0 * cpu / wall, 1),
        "us_per_msg": round(1e6 * cpu / frames, 1) if frames else None,
        "cpu_main_pct": round(100.0 * cpu_main / wall, 1),
        "cpu_threads_pct": round(100.0 * (cpu - cpu_main) / wall, 1),
        "files_written_window": int(metric(m1, "files_written_total")
                                    - metric(m0, "files_written_total")),
        "rss_peak_mb": round(rss_peak, 1),
        "rss_end_mb": round(rss_samples[-1][1], 1) if rss_samples else None,
        "rss_slope_mb_per_min": round(C.slope_per_min(rss_samples), 1),
        "first_file_s": first_file_s,
        "stop_s": round(stop_s, 2),
        "exit_code": proc.returncode,
        "rows_deadlettered": deadletter_rows(data_dir),
        "journal_records": int(records),
        "journal_bytes": sum(seen.values()),
        "journal_bytes_per_frame": round(sum(seen.values()) / records, 1) if records else None,
        "files_before_compact": len(before),
        "files_after_compact": len(after),
        "compact_exit": compact.returncode,
        "compact_s": round(compact_s, 1),
        "compact_tail": compact.stdout.strip().splitlines()[-2:] + compact.stderr.strip(
        ).splitlines()[-2:],
        "files_per_partition_hour": most,
        "files_per_partition_hour_mean": round(mean, 2),
        "parquet_bytes_rotation": sum(before.values()),
        "parquet_bytes_final": final_bytes,
        "write_amplification": round((sum(before.values()) + written_by_compaction)
                                     / final_bytes, 2) if final_bytes else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Whole market: a separate simulator, the harvester as its own process with "
        "default settings, then SIGTERM. Prints a table, then one JSON line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="60 s instead of 15 minutes")
    p.add_argument("--symbols", type=int, default=500)
    p.add_argument("--rate", type=float, default=10_000.0, help="msg/s over all symbols")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of the measured window (default 900, 60 with --quick)")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--no-compact", action="store_true",
                   help="skip the `compact` after the stop (an A/B of the run itself is quicker; "
                   "files_per_partition_hour then counts rotation's files)")
    p.add_argument("--profile", metavar="PATH", default=None,
                   help="attach py-spy to the harvester for the window and the stop (100 Hz, "
                   "all threads) and write its raw collapsed stacks to PATH (py-spy on PATH or "
                   "beside this Python; attaching may need ptrace permission)")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 60.0 if args.quick else 900.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-wholemarket-"))
    data_dir = work / "data"
    try:
        res = run(args, data_dir)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    grace = 10.0
    rows = [(args.symbols, f"{args.rate:,.0f}", res["window_s"], res["msgs"], res["rate"],
             res["cpu_pct"], res["us_per_msg"], res["rss_peak_mb"], res["first_file_s"],
             res["stop_s"], res["rows_deadlettered"], res["journal_bytes_per_frame"],
             res["files_per_partition_hour"], res["write_amplification"])]
    print(f"whole market ({'--quick' if args.quick else 'full'}): simulator and harvester in "
          "separate processes, default settings; compaction: `compact --older-than 0` after the "
          "stop")
    print(C.table(("symbols", "rate", "window s", "msgs", "msg/s", "CPU %", "us/msg",
                   "RSS peak MB", "1st file s", "stop s", "dead-lettered", "journal B/frame",
                   "files/part-hour", "write ampl."), rows))
    print(f"harvester: {res.get('stop_phases')}")
    C.emit_json({
        "bench": "wholemarket", "mode": "quick" if args.quick else "full",
        **C.conditions(load_before), "symbols": args.symbols, "target_rate": args.rate,
        "shutdown_grace_s": grace, "targets": TARGETS,
        **{k: v for k, v in res.items() if k not in ("log_tail", "compact_tail")},
        "compact_tail": res.get("compact_tail"), "log_tail": res.get("log_tail"),
        "cpu_pct": res["cpu_pct"], "stop_s": res["stop_s"],
        "rows_deadlettered": res["rows_deadlettered"], "rss_peak_mb": res["rss_peak_mb"],
        "journal_bytes_per_frame": res["journal_bytes_per_frame"],
        "files_per_partition_hour": res["files_per_partition_hour"],
        "msgs": res["msgs"], "rate": res["rate"], "us_per_msg": res["us_per_msg"],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
