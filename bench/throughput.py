"""End-to-end throughput of the harvester from the simulator over loopback, next to the raw
receive rate of the same stream on the same transport, the raw receive cost of each transport,
and the harvester's CPU at a realistic load.

Every measurement runs the simulator (``python -m trio_harvest sim``) in its own process and the
receiver in another fresh process, so the CPU counted is the receiver's alone.

ladder      For each offered rate (``--rates``, total msg/s of aggTrade + depth20@100ms + bookTicker
            over ``--symbols`` symbols), two runs against a fresh simulator each:
              raw       a bare loop per connection on the default transport (``ladder.transport``;
                        ``await ws.recv()`` / ``get_message()`` and count), same URLs and websocket
                        options as the harvester's connector;
              pipeline  the full harvester (``Harvester(Config)``: decode, dedup/continuity,
                        signal engines, lanes, rotation writing Parquet into a temp dir).
            A run *sustains* the rate when it received >= 95 % of the frames the simulator queued
            for it (so no backlog built up) and no connection was dropped (the simulator drops a
            slow consumer at 200 000 queued frames). The highest sustained receive rate of each
            is reported, and their ratio (target >= 0.7). CPU per message (us/msg) is reported
            too: 1e6 / (us/msg) is the rate one core could carry, which is the ceiling when the
            simulator (one Python process, ~tens of thousands of frames/s) is the limit.
transports  Raw receive of *each* transport (websockets trio client, trio-websocket) in the same
            run, the same stream (``--symbols`` symbols at ``--transport-rate`` msg/s), a fresh
            simulator each: CPU of the whole receiving process (all threads) per message,
            ``transports.<name>.us_per_msg``.
realistic   ``--realistic-symbols`` (200) at ``--realistic-rate`` (10 000 msg/s): harvester CPU as a
            percentage of one core over the window (target <= 35 %), with the default Config
            (nothing is due to be written inside a short window with the default rotation, so
            the final flush's CPU per frame is added for the frames of the window as well:
            "with writes"; the pipeline runs with ``shutdown_grace=600`` so that this flush
            writes Parquet rather than dead-lettering what a 10 s grace leaves). The same
            stream through the raw receiver is shown for comparison.

The machine may be shared: ``other load`` is the CPU (in cores) that processes other than the
receiver and the simulator used during the window; rates measured while it is high are lower
than the code can do, CPU per message much less so.

Run: ``python bench/throughput.py [--quick]``; ``--help`` for the knobs.
Output: tables, then (last line) one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import shutil
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
from trio_harvest.ingest.transport import DEFAULT_TRANSPORT, TRANSPORTS
from trio_harvest.kinds import ORDERBOOK, PREVIEW_KINDS, PRICES, QUOTES

TARGET_RATIO = 0.7
TARGET_CPU_PCT = 35.0  # the first version's target, still shown
TARGET_US_ALL = 30.0  # realistic.us_per_msg_all: CPU of every thread, Parquet writes included
TARGET_RSS_MB = 250.0
KEEP_UP = 0.95
AUTH = (PRICES, ORDERBOOK, QUOTES)


# -- one measurement, in a child process ----------------------------------------------------------


def _snapshot(frames: int, sim_pid: int) -> dict[str, Any]:
    return {
        "t": time.perf_counter(),
        "cpu": time.process_time(),
        "threads": C.thread_cpu_seconds(),
        "sim_cpu": _safe(lambda: C.proc_cpu_seconds(sim_pid)),
        "busy": C.machine_busy_seconds(),
        "frames": frames,
    }


def _safe(fn: Any) -> float:
    try:
        return float(fn())
    except OSError:
        return 0.0


def _window(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    wall = b["t"] - a["t"]
    frames = b["frames"] - a["frames"]
    cpu = b["cpu"] - a["cpu"]
    sim = b["sim_cpu"] - a["sim_cpu"]
    threads = {k: v - a["threads"].get(k, 0.0) for k, v in b["threads"].items()}
    main = max(threads.values()) if threads else cpu
    return {
        "window_s": round(wall, 2),
        "frames": frames,
        "rate": round(frames / wall, 1),
        "cpu_pct": round(100 * cpu / wall, 1),
        "main_thread_pct": round(100 * main / wall, 1),
        "us_per_msg": round(1e6 * cpu / frames, 2) if frames else None,
        "sim_cpu_pct": round(100 * sim / wall, 1),
        "other_load_cores": round(max(0.0, (b["busy"] - a["busy"]) - cpu - sim) / wall, 2),
    }


async def _raw(args: dict[str, Any]) -> dict[str, Any]:
    counter = C.RawCount()
    urls = [p.url(args["url"]) for p in C.plans_for(args["symbols"])]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(C.raw_receive, urls, counter, args["transport"])
        await trio.sleep(args["warmup"])
        a = _snapshot(counter.frames, args["sim_pid"])
        await trio.sleep(args["window"])
        b = _snapshot(counter.frames, args["sim_pid"])
        nursery.cancel_scope.cancel()
    out = _window(a, b)
    out.update(total_frames=counter.frames, drops=counter.closed, connections=len(urls),
               rss_mb=round(C.rss_mb(), 1))
    return out


async def _pipeline(args: dict[str, Any]) -> dict[str, Any]:
    cfg = Config(
        symbols=tuple(args["symbols"]),
        ws_url=args["url"],
        rest_url=args["rest_url"],
        data_dir=Path(args["data_dir"]),
        sim=False,
        transport=args["transport"],
        # measurement only: let the final flush write everything as Parquet (with the default
        # 10 s grace a large flush ends in the dead letter, whose CPU is not what we want here)
        shutdown_grace=600.0,
    )
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(args["warmup"])
        a = _snapshot(h.router.stats.frames, args["sim_pid"])
        rss_start = C.rss_mb()
        rss_samples: list[tuple[float, float]] = []
        for _ in range(10):
            await trio.sleep(args["window"] / 10)
            rss_samples.append((time.perf_counter(), C.rss_mb()))
        b = _snapshot(h.router.stats.frames, args["sim_pid"])
        rss = C.rss_mb()
        buffered = h.lanes.total_pending()
        pending = h.lanes.total_pending()
        t0, cpu0 = time.perf_counter(), time.process_time()
        h.request_stop("bench window over")
    flush_s, flush_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    out = _window(a, b)
    kinds = h.rotation.stats.kinds
    auth_in = sum(lane.stats.accepted + lane.stats.spilled for lane in h.lanes if lane.kind in AUTH)
    written = sum(kinds[k].rows_written for k in AUTH if k in kinds)
    dead = sum(kinds[k].rows_deadlettered for k in AUTH if k in kinds)
    lost = sum(kinds[k].rows_lost for k in AUTH if k in kinds)
    out.update(
        total_frames=h.router.stats.frames,
        drops=sum(c.stats.failures for c in h.connections),
        connections=len(h.connections),
        rss_mb=round(rss, 1),
        rss_mb_start=round(rss_start, 1),
        rss_mb_per_min=round(C.slope_per_min(rss_samples), 1),
        rows_buffered_at_end=buffered,
        rows_pending_at_stop=pending,
        rows_in=auth_in,
        rows_written=written,
        rows_deadlettered=dead,
        rows_lost=lost,
        preview_rows_written=sum(kinds[k].rows_written for k in PREVIEW_KINDS if k in kinds),
        files_written=sum(ks.files_written for ks in kinds.values()),
        malformed=h.router.stats.malformed,
        unexpected=h.router.stats.unexpected,
        final_flush_s=round(flush_s, 2),
        final_flush_cpu_s=round(flush_cpu, 2),
    )
    return out


def _child(mode: str, args: dict[str, Any], conn: Any) -> None:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    fn = _raw if mode == "raw" else _pipeline
    conn.send(trio.run(fn, args))
    conn.close()


def measure(mode: str, rate: float, syms: tuple[str, ...], warmup: float, window: float,
            seed: int = 1, transport: str = DEFAULT_TRANSPORT) -> dict[str, Any]:
    """One run of ``mode`` against a fresh simulator offering ``rate`` msg/s."""
    data_dir = tempfile.mkdtemp(prefix="bench-throughput-")
    sim = C.SimProcess(rate, syms, seed=seed).start()
    try:
        ctx = mp.get_context("spawn")
        recv, send = ctx.Pipe(duplex=False)
        args = {"url": sim.url, "rest_url": sim.rest_url, "symbols": syms, "warmup": warmup,
                "window": window, "sim_pid": sim.pid, "data_dir": data_dir,
                "transport": transport}
        proc = ctx.Process(target=_child, args=(mode, args, send))
        proc.start()
        res: dict[str, Any] = C.receive_from(proc, recv, timeout=warmup + window + 600)
    finally:
        stopped = sim.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    queued = stopped["frames_queued"]
    res["offered_nominal"] = rate
    res["transport"] = transport
    res["sim_frames_queued"] = queued
    res["sim_slow_consumer_closes"] = stopped["slow_consumer_closes"]
    res["delivered"] = round(res["total_frames"] / queued, 4) if queued else None
    res["sustained"] = bool(
        queued and res["total_frames"] >= KEEP_UP * queued and res["drops"] == 0
        and not stopped["slow_consumer_closes"]
    )
    if mode == "pipeline":
        res["all_rows_written"] = res["rows_written"] == res["rows_in"]
    return res


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Highest sustained end-to-end rate of the harvester vs the raw receive rate "
        "(same transport) of the same simulator stream, raw receive CPU per message of each "
        "transport (target ratio >= 0.7), and harvester CPU at "
        "200 symbols / 10k msg/s (target <= 35%% of a core). Prints tables, then one JSON line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="short windows and a short ladder (for nox): rates 10000,20000,30000, "
                   "window 6 s, realistic window 15 s")
    p.add_argument("--rates", default=None,
                   help="comma-separated offered rates (msg/s) to step through "
                   "(default 10000,15000,20000,25000,30000,40000,50000,60000)")
    p.add_argument("--symbols", type=int, default=2,
                   help="symbols in the ladder (2 = BTCUSDT,ETHUSDT; the stream mix is then mostly "
                   "bookTicker and aggTrade)")
    p.add_argument("--warmup", type=float, default=None, help="seconds before the window (3)")
    p.add_argument("--window", type=float, default=None, help="measured seconds per run (15; 6 quick)")
    p.add_argument("--keep-going", action="store_true",
                   help="run every rate even after both receivers fell behind")
    p.add_argument("--realistic-symbols", type=int, default=C.REALISTIC_SYMBOLS)
    p.add_argument("--realistic-rate", type=float, default=C.REALISTIC_RATE)
    p.add_argument("--realistic-window", type=float, default=None,
                   help="measured seconds at the realistic load (60; 15 quick)")
    p.add_argument("--transport-rate", type=float, default=8000.0,
                   help="offered msg/s of the raw receive of each transport (over --symbols)")
    p.add_argument("--skip-ladder", action="store_true")
    p.add_argument("--skip-transports", action="store_true")
    p.add_argument("--skip-realistic", action="store_true")
    args = p.parse_args(argv)
    if args.rates is None:
        args.rates = "10000,20000,30000" if args.quick else \
            "10000,15000,20000,25000,30000,40000,50000,60000"
    args.rate_list = [float(r) for r in args.rates.split(",") if r.strip()]
    if args.warmup is None:
        args.warmup = 3.0
    if args.window is None:
        args.window = 6.0 if args.quick else 15.0
    if args.realistic_window is None:
        args.realistic_window = 15.0 if args.quick else 60.0
    return args


def _row(mode: str, r: dict[str, Any]) -> tuple[Any, ...]:
    return (mode, r["offered_nominal"], r["sim_frames_queued"], r["rate"], r["delivered"],
            "yes" if r["sustained"] else "NO", r["drops"], r["cpu_pct"], r["main_thread_pct"],
            r["us_per_msg"], r["sim_cpu_pct"], r["other_load_cores"])


HEADERS = ("receiver", "offered", "sim queued", "recv msg/s", "delivered", "keeps up", "drops",
           "CPU %", "main thr %", "us/msg", "sim CPU %", "other load")


def run_ladder(args: argparse.Namespace) -> dict[str, Any]:
    syms = C.symbols(args.symbols)
    steps: list[dict[str, Any]] = []
    alive = {"raw": True, "pipeline": True}
    for rate in args.rate_list:
        step: dict[str, Any] = {"offered": rate}
        for mode in ("raw", "pipeline"):
            if not alive[mode] and not args.keep_going:
                continue
            res = measure(mode, rate, syms, args.warmup, args.window)
            step[mode] = res
            alive[mode] = res["sustained"]
            print(C.table(HEADERS, [_row(mode, res)]).splitlines()[-1], flush=True)
        steps.append(step)
        if not any(alive.values()) and not args.keep_going:
            break
    best: dict[str, dict[str, Any] | None] = {}
    for mode in ("raw", "pipeline"):
        ok = [s[mode] for s in steps if mode in s and s[mode]["sustained"]]
        best[mode] = max(ok, key=lambda r: r["rate"]) if ok else None
    raw_max = best["raw"]["rate"] if best["raw"] else 0.0
    pipe_max = best["pipeline"]["rate"] if best["pipeline"] else 0.0
    # CPU per message at the highest rate both sustained: the one-core ceiling of each
    both = [s for s in steps if "raw" in s and "pipeline" in s and s["raw"]["sustained"]
            and s["pipeline"]["sustained"]]
    at = both[-1] if both else None
    cpu_cmp: dict[str, Any] = {}
    if at is not None and at["raw"]["us_per_msg"] and at["pipeline"]["us_per_msg"]:
        ru, pu = at["raw"]["us_per_msg"], at["pipeline"]["us_per_msg"]
        cpu_cmp = {"at_offered": at["offered"], "raw_us_per_msg": ru, "pipeline_us_per_msg": pu,
                   "raw_one_core_ceiling": round(1e6 / ru), "pipeline_one_core_ceiling": round(1e6 / pu),
                   "ceiling_ratio": round(ru / pu, 3)}
    top = args.rate_list[len(steps) - 1] if steps else None
    return {
        "symbols": args.symbols,
        "transport": DEFAULT_TRANSPORT,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "steps": steps,
        "raw_max_rate": raw_max,
        "pipeline_max_rate": pipe_max,
        "ratio": round(pipe_max / raw_max, 3) if raw_max else None,
        "raw_at_top_of_ladder": bool(best["raw"] and best["raw"]["offered_nominal"] == top),
        "pipeline_at_top_of_ladder": bool(best["pipeline"]
                                          and best["pipeline"]["offered_nominal"] == top),
        "cpu_per_msg": cpu_cmp,
        "target_ratio": TARGET_RATIO,
        "target_met": bool(raw_max and pipe_max / raw_max >= TARGET_RATIO),
    }


def run_transports(args: argparse.Namespace) -> dict[str, Any]:
    """Raw receive of every transport on the same stream, one after the other in this run."""
    syms = C.symbols(args.symbols)
    out: dict[str, Any] = {}
    for name in TRANSPORTS:
        res = measure("raw", args.transport_rate, syms, args.warmup, args.window, transport=name)
        print(C.table(HEADERS, [_row(f"raw {name}", res)]).splitlines()[-1], flush=True)
        out[name] = {"us_per_msg": res["us_per_msg"], "rate": res["rate"],
                     "offered": args.transport_rate, "sustained": res["sustained"],
                     "cpu_pct": res["cpu_pct"], "main_thread_pct": res["main_thread_pct"],
                     "other_load_cores": res["other_load_cores"], "run": res}
    return out


def run_realistic(args: argparse.Namespace) -> dict[str, Any]:
    syms = C.symbols(args.realistic_symbols)
    raw = measure("raw", args.realistic_rate, syms, 5.0, min(args.realistic_window, 20.0))
    print(C.table(HEADERS, [_row("raw", raw)]).splitlines()[-1], flush=True)
    pipe = measure("pipeline", args.realistic_rate, syms, 5.0, args.realistic_window)
    print(C.table(HEADERS, [_row("pipeline", pipe)]).splitlines()[-1], flush=True)
    # with writes: with the default rotation nothing is due inside the run, so the final flush
    # writes every row the run produced (authoritative and preview); its CPU per frame received,
    # charged to the window's frames. Conservative: these files are smaller than steady-state
    # ones (fixed cost per file), and any write during the run is counted twice.
    per_frame = pipe["final_flush_cpu_s"] / max(1, pipe["total_frames"])
    with_writes = pipe["cpu_pct"] + 100 * per_frame * pipe["rate"]
    us_all = (pipe["us_per_msg"] or 0.0) + 1e6 * per_frame
    return {
        "us_per_msg_all": round(us_all, 2),
        "us_per_msg_loop_and_threads": pipe["us_per_msg"],
        "us_per_msg_writes": round(1e6 * per_frame, 2),
        "rss_mb": pipe["rss_mb"],
        "rss_mb_start": pipe["rss_mb_start"],
        "rss_mb_per_min": pipe["rss_mb_per_min"],
        "sustained": pipe["sustained"],
        "target_us_per_msg_all": TARGET_US_ALL,
        "target_rss_mb": TARGET_RSS_MB,
        "symbols": args.realistic_symbols,
        "offered": args.realistic_rate,
        "raw": raw,
        "pipeline": pipe,
        "cpu_pct": pipe["cpu_pct"],
        "cpu_pct_with_writes": round(with_writes, 1),
        "raw_cpu_pct": raw["cpu_pct"],
        "target_cpu_pct": TARGET_CPU_PCT,
        "target_met": bool(pipe["sustained"] and us_all <= TARGET_US_ALL
                           and pipe["rss_mb"] <= TARGET_RSS_MB),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    out: dict[str, Any] = {"bench": "throughput"}
    if not args.skip_ladder:
        print(f"ladder: {args.symbols} symbols, aggTrade + depth20@100ms + bookTicker, transport "
              f"{DEFAULT_TRANSPORT}; "
              f"warmup {args.warmup:g} s, window {args.window:g} s per run", flush=True)
        print(C.table(HEADERS, []).splitlines()[0], flush=True)
        lad = run_ladder(args)
        out["ladder"] = lad
        print()
        print(C.table(HEADERS, [_row(m, s[m]) for s in lad["steps"] for m in ("raw", "pipeline")
                                if m in s]))
        print()
        print(C.table(("", "raw", "pipeline", "pipeline / raw", "target"), [
            ("highest sustained msg/s", lad["raw_max_rate"], lad["pipeline_max_rate"],
             lad["ratio"], f">= {TARGET_RATIO}"),
            ("us CPU per msg", lad["cpu_per_msg"].get("raw_us_per_msg"),
             lad["cpu_per_msg"].get("pipeline_us_per_msg"), lad["cpu_per_msg"].get("ceiling_ratio"),
             f">= {TARGET_RATIO}"),
            ("one-core ceiling msg/s", lad["cpu_per_msg"].get("raw_one_core_ceiling"),
             lad["cpu_per_msg"].get("pipeline_one_core_ceiling"),
             lad["cpu_per_msg"].get("ceiling_ratio"), ""),
        ]))
        if lad["raw_at_top_of_ladder"]:
            print("note: raw kept up at the top of the ladder: its real maximum is higher")
        print()
    if not args.skip_transports:
        print(f"transports: raw receive of each, {args.symbols} symbols at "
              f"{args.transport_rate:g} msg/s, window {args.window:g} s", flush=True)
        print(C.table(HEADERS, []).splitlines()[0], flush=True)
        out["transports"] = run_transports(args)
        print(C.table(("transport", "us CPU per msg", "recv msg/s", "keeps up"), [
            (name, t["us_per_msg"], t["rate"], "yes" if t["sustained"] else "NO")
            for name, t in out["transports"].items()]))
        print()
    if not args.skip_realistic:
        print(f"realistic: {args.realistic_symbols} symbols at {args.realistic_rate:g} msg/s, "
              f"window {args.realistic_window:g} s", flush=True)
        print(C.table(HEADERS, []).splitlines()[0], flush=True)
        real = run_realistic(args)
        out["realistic"] = real
        print(f"harvester CPU: {real['cpu_pct']:.1f} % of one core (ingest, decode, signals, lanes); "
              f"{real['cpu_pct_with_writes']:.1f} % with the Parquet writes of those rows; "
              f"raw receive alone: {real['raw_cpu_pct']:.1f} %")
        print(f"CPU per message, all threads, writes included: {real['us_per_msg_all']:.1f} us "
              f"(target <= {TARGET_US_ALL:g}); RSS {real['rss_mb']:.0f} MB "
              f"(target <= {TARGET_RSS_MB:g}), {real['rss_mb_per_min']:+.1f} MB/min over the window; "
              f"sustained: {'yes' if real['sustained'] else 'NO'}")
    # the journal's loop cost and bytes at the realistic mix (bench/journal_append.py)
    from journal_append import measure as journal_measure

    out["journal"] = journal_measure(seconds=5.0)
    print(f"journal: {out['journal']['us_per_msg']} us/msg on the loop (target <= 3), "
          f"{out['journal']['bytes_per_s'] / 1e6:.1f} MB/s at the realistic rate")
    out["targets_met"] = {k: out[k]["target_met"] for k in ("ladder", "realistic") if k in out}
    out.update(C.conditions(load_before))
    C.emit_json(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
