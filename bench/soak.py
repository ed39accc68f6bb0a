"""Soak: minutes at a steady rate with a write outage in the middle; memory must stay bounded and
flat, and every authoritative row must end up on disk.

The simulator runs in its own process (``--symbols`` symbols at ``--rate`` msg/s, default the
realistic 200 / 10 000: aggTrade + depth20@100ms + bookTicker). The harvester runs in this process
(``Harvester(Config)``), so /proc/self/status VmRSS is its memory; RSS and lane depth (rows
buffered in every lane) are sampled every second.

The outage covers ``--outage-from`` .. ``--outage-to`` of the run (default 25 %..50 %), so the
second half shows recovery and steady state. Its kind (``--outage``):

chattr  a real filesystem outage: ``chattr -R +i`` on the data directory (every write then fails
        with EPERM; the dead letter is in a separate directory), ``chattr -R -i`` to restore;
tmpfs   a real full disk: the data directory is a tmpfs of ``--tmpfs-mb`` MB, filled with a filler
        file (ENOSPC) for the outage, the filler removed to restore;
inject  the harvester's ``save`` is wrapped to raise ``OSError`` during the window;
auto    (default) chattr if this process may set the immutable flag here, else inject.

During the outage every partition write fails and goes to the dead letter; after it, the
harvester's automatic recovery (``auto_recover``, inside ``run``) writes the dead-letter files into
partitions. The soak makes it eager (``--recover-after`` s of good writes, every second, a large
batch) so it completes within a short run; with the default settings it waits 60 s and recovers 4
files per 5 s. If anything is still in the dead letter when the run ends, ``recover`` is run once
more after the stop (counted apart, as "recovered after stop").

Rotation settings default to a faster cadence than the Config defaults (``--rotate-sec 5
--max-file-age 15``): with the defaults (60 s / 300 s) nothing is written within a short run, and
memory holds up to 300 s of rows. ``--default-rotation`` uses the Config defaults.

Reported: peak RSS and the RSS slope over the last half (MB/min; target: peak <= 300 MB and flat),
lane depth, rows in (authoritative rows accepted into lanes: prices + orderbook), rows written by
rotation, rows dead-lettered, rows recovered, and the disk check: Parquet rows on disk = rows in,
dead letter empty.

Run: ``python bench/soak.py [--minutes 1] [--quick]``; ``--help`` for the knobs.
Output: a sampled timeline and a summary table, then (last line) one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import trio

from trio_harvest.app import Harvester
from trio_harvest.config import Config
from trio_harvest.kinds import ORDERBOOK, PREVIEW_KINDS, PRICES, QUOTES
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import TMP_PREFIX, Partition
from trio_harvest.storage.recover import Recoverer

AUTH = (PRICES, ORDERBOOK, QUOTES)
TARGET_RSS_MB = 250.0  # realistic RSS <= 250 MB and flat
TARGET_BYTES_PER_ROW = 150.0
TARGET_SLOPE_MB_PER_MIN = 5.0  # "flat": less than this growth per minute over the last half
_DEFAULTS = Config()


# -- outages -------------------------------------------------------------------------------------


class Outage:
    kind = "none"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.active = False

    def setup(self) -> None: ...
    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def teardown(self) -> None: ...


class ChattrOutage(Outage):
    kind = "chattr"

    def start(self) -> None:
        subprocess.run(["chattr", "-R", "+i", str(self.data_dir)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.active = True

    def stop(self) -> None:
        subprocess.run(["chattr", "-R", "-i", str(self.data_dir)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.active = False

    def teardown(self) -> None:
        self.stop()

    @staticmethod
    def available(where: Path) -> bool:
        probe = Path(tempfile.mkdtemp(prefix="chattr-probe-", dir=where))
        try:
            r = subprocess.run(["chattr", "+i", str(probe)], capture_output=True)
            if r.returncode != 0:
                return False
            try:
                (probe / "x").touch()
                return False  # the flag does not stop writes here
            except OSError:
                return True
        except FileNotFoundError:  # no chattr
            return False
        finally:
            subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
            shutil.rmtree(probe, ignore_errors=True)


class TmpfsOutage(Outage):
    kind = "tmpfs"

    def __init__(self, data_dir: Path, size_mb: int) -> None:
        super().__init__(data_dir)
        self.size_mb = size_mb
        self.filler = data_dir / ".bench-filler"
        self.mounted = False

    def setup(self) -> None:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "bench-soak",
                        str(self.data_dir)], check=True, capture_output=True)
        self.mounted = True

    def start(self) -> None:
        chunk = b"\0" * (1 << 20)
        with open(self.filler, "wb") as fh:
            try:
                while True:
                    fh.write(chunk)
                    fh.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        self.active = True

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()
        self.active = False

    def teardown(self) -> None:
        self.stop()
        if self.mounted:
            subprocess.run(["umount", str(self.data_dir)], check=False, capture_output=True)
            self.mounted = False


class InjectedOutage(Outage):
    kind = "inject"


def make_outage(kind: str, data_dir: Path, tmpfs_mb: int) -> Outage:
    if kind == "auto":
        kind = "chattr" if ChattrOutage.available(data_dir.parent) else "inject"
    if kind == "chattr":
        return ChattrOutage(data_dir)
    if kind == "tmpfs":
        return TmpfsOutage(data_dir, tmpfs_mb)
    if kind == "inject":
        return InjectedOutage(data_dir)
    return Outage(data_dir)


# -- the run ---------------------------------------------------------------------------------------


def auth_counts(h: Harvester) -> dict[str, int]:
    kinds = h.rotation.stats.kinds
    return {
        # accepted into a lane, or spilled (a producer cancelled while waiting: dead-lettered)
        "rows_in": sum(lane.stats.accepted + lane.stats.spilled for lane in h.lanes
                       if lane.kind in AUTH),
        "rows_written": sum(kinds[k].rows_written for k in AUTH if k in kinds),
        "rows_deadlettered": sum(kinds[k].rows_deadlettered for k in AUTH if k in kinds),
        "rows_lost": sum(kinds[k].rows_lost for k in AUTH if k in kinds),
        "write_failures": sum(k.write_failures + k.write_timeouts for k in kinds.values()),
    }


async def soak(args: argparse.Namespace, sim: C.SimProcess, data_dir: Path, dl_dir: Path,
               outage: Outage) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if not args.default_rotation:
        extra.update(rotate_sec=args.rotate_sec, max_file_age=args.max_file_age,
                     min_file_rows=args.min_file_rows)
    if args.auto_recover:
        extra.update(auto_recover=True, auto_recover_after=args.recover_after,
                     health_interval=1.0, auto_recover_batch=args.recover_batch)
    else:
        extra.update(auto_recover=False)
    cfg = Config(symbols=C.symbols(args.symbols), ws_url=sim.url, rest_url=sim.rest_url,
                 data_dir=data_dir, deadletter_dir=dl_dir, sim=False, **extra)
    holder: dict[str, Harvester] = {}

    async def save(part: Partition, gate: PublishGate) -> Any:
        if outage.kind == "inject" and outage.active:
            raise OSError(errno.EIO, "injected write outage (bench/soak.py)")
        return await holder["h"].writer.save(part, gate)

    h = Harvester(cfg, save=save)
    holder["h"] = h
    total = args.minutes * 60.0
    t_from, t_to = total * args.outage_from, total * args.outage_to
    samples: list[dict[str, Any]] = []
    events: list[str] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        state = "before"
        tick = 0
        while True:
            tick += 1
            await trio.sleep_until(trio.current_time() + max(0.0, t0 + tick - time.perf_counter()))
            t = time.perf_counter() - t0
            if state == "before" and outage.kind != "none" and t >= t_from:
                await trio.to_thread.run_sync(outage.start)
                state = "outage"
                events.append(f"{t:.0f}s outage start ({outage.kind})")
            elif state == "outage" and t >= t_to:
                await trio.to_thread.run_sync(outage.stop)
                state = "after"
                events.append(f"{t:.0f}s outage end")
            ac = auth_counts(h)
            rec = h.ops.autorecovery.stats
            samples.append({
                "t": round(t, 1), "rss_mb": round(C.rss_mb(), 1),
                "lane_rows": h.lanes.total_pending(),
                "auth_lane_rows": sum(lane.pending for lane in h.lanes if lane.kind in AUTH),
                "frames": h.router.stats.frames, "recovered_rows": rec.rows,
                "recovered_files": rec.files, "state": state, **ac,
            })
            if t >= total:
                break
        cpu = time.process_time() - cpu0
        t_stop = time.perf_counter()
        h.request_stop("soak over")
    stop_s = time.perf_counter() - t_stop
    if outage.active:  # a run shorter than the outage window
        outage.stop()
    final = auth_counts(h)
    kinds = h.rotation.stats.kinds
    return {
        "samples": samples,
        "events": events,
        "cpu_pct": round(100 * cpu / total, 1),
        "final_flush_s": round(stop_s, 2),
        "frames": h.router.stats.frames,
        "reconnects": sum(c.stats.reconnects for c in h.connections),
        "auto_recovered_rows_all_kinds": h.ops.autorecovery.stats.rows,
        "auto_recovered_files": h.ops.autorecovery.stats.files,
        "auto_recovery_failures": h.ops.autorecovery.stats.failures,
        "files_written": sum(k.files_written for k in kinds.values()),
        "preview_rows_written": sum(kinds[k].rows_written for k in PREVIEW_KINDS if k in kinds),
        "preview_rows_deadlettered": sum(kinds[k].rows_deadlettered for k in PREVIEW_KINDS
                                         if k in kinds),
        **final,
    }


def bytes_per_buffered_row(samples: list[dict[str, Any]]) -> float | None:
    """RSS growth per buffered row at steady load: the least-squares slope of RSS against rows
    in all lanes while they only fill, from the end of the warm-up to the first flush (a drop in
    lane rows; freed memory is not always returned to the OS, so later samples would flatter)."""
    grow: list[tuple[float, float]] = []
    for s in samples:
        if s["t"] < 3.0:
            continue
        if grow and s["lane_rows"] < 0.8 * grow[-1][0]:
            break
        grow.append((float(s["lane_rows"]), s["rss_mb"] * 1024 * 1024))
    if len(grow) < 3 or grow[-1][0] - grow[0][0] < 10_000:
        return None
    mx = sum(x for x, _ in grow) / len(grow)
    my = sum(y for _, y in grow) / len(grow)
    den = sum((x - mx) ** 2 for x, _ in grow)
    return round(sum((x - mx) * (y - my) for x, y in grow) / den, 1) if den else None


def disk_counts(data_dir: Path, dl_dir: Path) -> dict[str, int]:
    files = [p for k in AUTH for p in data_dir.glob(f"venue=*/date=*/symbol=*/kind={k}/*.parquet")
             if not p.name.startswith(TMP_PREFIX)]
    rows = C.parquet_rows(files)
    dl_lines = dl_files = 0
    for k in AUTH:
        for f in dl_dir.glob(f"venue=*/{k}/*.ndjson"):
            if f.name.startswith(TMP_PREFIX):
                continue
            dl_files += 1
            with open(f, "rb") as fh:
                dl_lines += sum(1 for _ in fh)
    return {"disk_parquet_rows": rows, "disk_parquet_files": len(files),
            "deadletter_rows_left": dl_lines, "deadletter_files_left": dl_files}


async def recover_rest(data_dir: Path, dl_dir: Path) -> dict[str, int]:
    """What ``python -m trio_harvest recover`` does, once, after the stop."""
    report = await Recoverer(data_dir, dl_dir).recover_all()
    return {"files": len(report.recovered), "rows": report.rows, "failed": len(report.failed)}


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Soak at a steady rate with a write outage in the middle: peak RSS and its "
        "growth over the last half (target <= 300 MB, flat), lane depth, rows in / written / "
        "dead-lettered / recovered (in = written + dead-lettered; all written after recovery). "
        "Prints a timeline and a table, then one JSON line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--minutes", type=float, default=1.0, help="length of the run")
    p.add_argument("--quick", action="store_true", help="same as --minutes 1 (for nox)")
    p.add_argument("--symbols", type=int, default=C.REALISTIC_SYMBOLS)
    p.add_argument("--rate", type=float, default=C.REALISTIC_RATE, help="offered msg/s in total")
    p.add_argument("--outage", choices=("auto", "chattr", "tmpfs", "inject", "none"),
                   default="auto")
    p.add_argument("--outage-from", type=float, default=0.25, help="outage start (fraction of run)")
    p.add_argument("--outage-to", type=float, default=0.5, help="outage end (fraction of run)")
    p.add_argument("--tmpfs-mb", type=int, default=1024, help="size of the tmpfs for --outage tmpfs")
    p.add_argument("--rotate-sec", type=float, default=5.0)
    p.add_argument("--max-file-age", type=float, default=15.0)
    p.add_argument("--min-file-rows", type=int, default=_DEFAULTS.min_file_rows)
    p.add_argument("--default-rotation", action="store_true",
                   help="use the Config defaults for rotation (rotate 60 s, max file age 300 s)")
    p.add_argument("--no-auto-recover", dest="auto_recover", action="store_false",
                   help="leave the dead letter alone during the run (recover after the stop)")
    p.add_argument("--recover-after", type=float, default=5.0,
                   help="auto_recover_after: seconds of good writes before recovery starts")
    p.add_argument("--recover-batch", type=int, default=200,
                   help="auto_recover_batch: dead-letter files per health interval (1 s)")
    p.add_argument("--every", type=float, default=None,
                   help="print a timeline row every S seconds (default: 20 rows)")
    p.add_argument("--keep", action="store_true", help="keep the data directories")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if not 0 <= args.outage_from < args.outage_to <= 1:
        p.error("need 0 <= --outage-from < --outage-to <= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    data_dir, dl_dir = root / "data", root / "deadletter"
    data_dir.mkdir()
    dl_dir.mkdir()
    outage = make_outage(args.outage, data_dir, args.tmpfs_mb)
    try:
        outage.setup()
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"outage {outage.kind} not possible here ({exc}); using an injected failure")
        outage = InjectedOutage(data_dir)
    sim = C.SimProcess(args.rate, C.symbols(args.symbols)).start()
    try:
        res = trio.run(soak, args, sim, data_dir, dl_dir, outage)
        sim_stats = sim.stop()
        dl_before = disk_counts(data_dir, dl_dir)
        after = {"files": 0, "rows": 0, "failed": 0}
        if dl_before["deadletter_files_left"]:
            after = trio.run(recover_rest, data_dir, dl_dir)
        disk = disk_counts(data_dir, dl_dir)
    finally:
        sim.stop()
        outage.teardown()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    samples = res.pop("samples")
    total = args.minutes * 60.0
    half = [(s["t"], s["rss_mb"]) for s in samples if s["t"] >= total / 2]
    peak = max(s["rss_mb"] for s in samples)
    slope = C.slope_per_min(half)
    per_row = bytes_per_buffered_row(samples)
    every = args.every or max(1.0, total / 20)
    shown, next_t = [], 0.0
    for s in samples:
        if s["t"] >= next_t or s is samples[-1]:
            shown.append((s["t"], s["state"], s["rss_mb"], s["lane_rows"], s["frames"],
                          s["rows_in"], s["rows_written"], s["rows_deadlettered"],
                          s["recovered_rows"], s["write_failures"]))
            next_t = s["t"] + every
    print(f"soak: {args.symbols} symbols at {args.rate:g} msg/s for {args.minutes:g} min; outage "
          f"{outage.kind} from {args.outage_from:.0%} to {args.outage_to:.0%}; rotation "
          + ("defaults" if args.default_rotation else
             f"every {args.rotate_sec:g} s, max file age {args.max_file_age:g} s"))
    print(C.table(("t s", "state", "RSS MB", "lane rows", "frames", "rows in", "written",
                   "dead-lettered", "recovered*", "write fails"), shown))
    print("* recovered: rows of every kind the automatic recovery wrote back from the dead letter")
    print("  " + "; ".join(res["events"]))
    print()
    rows_in = res["rows_in"]
    recovered_auth = disk["disk_parquet_rows"] - res["rows_written"]
    balance = rows_in == res["rows_written"] + res["rows_deadlettered"]
    all_written = disk["disk_parquet_rows"] == rows_in and disk["deadletter_rows_left"] == 0
    rss_ok = peak <= TARGET_RSS_MB
    row_ok = per_row is not None and per_row <= TARGET_BYTES_PER_ROW
    flat = slope <= TARGET_SLOPE_MB_PER_MIN
    summary = [
        ("peak RSS MB", peak, f"<= {TARGET_RSS_MB:g}", "yes" if rss_ok else "NO"),
        ("bytes per buffered row", per_row, f"<= {TARGET_BYTES_PER_ROW:g}",
         "yes" if row_ok else "NO"),
        ("RSS slope, last half, MB/min", round(slope, 2), f"<= {TARGET_SLOPE_MB_PER_MIN:g}",
         "yes" if flat else "NO"),
        ("max lane rows", max(s["lane_rows"] for s in samples), "", ""),
        ("rows in (prices+orderbook)", rows_in, "", ""),
        ("rows written by rotation", res["rows_written"], "", ""),
        ("rows dead-lettered", res["rows_deadlettered"], "", ""),
        ("in = written + dead-lettered", "yes" if balance else "NO", "yes", "yes" if balance else "NO"),
        ("rows recovered (on disk - written)", recovered_auth, "", ""),
        ("  of which after the stop (all kinds)", after["rows"], "", ""),
        ("Parquet rows on disk", disk["disk_parquet_rows"], "= rows in", ""),
        ("dead-letter rows left", disk["deadletter_rows_left"], "0", ""),
        ("all written after recovery", "yes" if all_written else "NO", "yes",
         "yes" if all_written else "NO"),
    ]
    print(C.table(("", "value", "target", "met"), summary))
    C.emit_json({
        "bench": "soak",
        **C.conditions(load_before),
        "minutes": args.minutes,
        "symbols": args.symbols,
        "rate": args.rate,
        "outage": outage.kind,
        "outage_window_s": [round(total * args.outage_from, 1), round(total * args.outage_to, 1)],
        "rotation": "defaults" if args.default_rotation else
        {"rotate_sec": args.rotate_sec, "max_file_age": args.max_file_age,
         "min_file_rows": args.min_file_rows},
        "auto_recover": {"on": args.auto_recover, "after_s": args.recover_after,
                         "batch": args.recover_batch},
        "peak_rss_mb": peak,
        "rss_first_mb": samples[0]["rss_mb"],
        "rss_last_mb": samples[-1]["rss_mb"],
        "rss_slope_last_half_mb_per_min": round(slope, 2),
        "max_lane_rows": max(s["lane_rows"] for s in samples),
        "bytes_per_buffered_row": per_row,
        "target_bytes_per_buffered_row": TARGET_BYTES_PER_ROW,
        "rows_in": rows_in,
        "rows_written": res["rows_written"],
        "rows_deadlettered": res["rows_deadlettered"],
        "rows_lost": res["rows_lost"],
        "rows_recovered": recovered_auth,
        "rows_recovered_after_stop_all_kinds": after["rows"],
        "in_equals_written_plus_deadlettered": balance,
        "all_written_after_recovery": all_written,
        "sim_slow_consumer_closes": sim_stats["slow_consumer_closes"],
        **{k: v for k, v in res.items() if k not in ("events",)},
        **disk,
        "targets_met": {"rss": rss_ok, "flat": flat, "balance": balance,
                        "bytes_per_buffered_row": row_ok,
                        "all_written": all_written},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
