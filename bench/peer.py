"""CPU per message against the peer most users run: cryptofeed, on the same simulator stream.

One invocation, one simulator process (separate, so its CPU is nobody's), and at each rate the
two receivers one after the other on the same streams (aggTrade, bookTicker and diff depth
``@depth@100ms`` with REST snapshots, per symbol):

- **cryptofeed** (latest 2.x from the registry, installed into its own venv by this script, with
  uvloop) with no-op callbacks for trades, tickers and its L2 book: it keeps its book and stores
  nothing. Its endpoints point at the simulator (the ``/market`` and ``/public`` routes).
- **trio_harvest** ``run --book diff``: journal, signals, features and Parquet writes inside the
  window, as users run it.

CPU is the whole receiving process (all threads, /proc), messages are the frames that process
received in the same window (cryptofeed: counted in its message handler; trio_harvest: its
``frames_received`` metric). ``ratio`` is trio_harvest µs/msg over cryptofeed µs/msg at the
first rate. When the peer cannot be installed the script says so in one line and reports
``"skipped"`` instead of a ratio.

    python bench/peer.py            # 8k and 3k msg/s, 6 s warm-up, 15 s window
    python bench/peer.py --quick    # 3 s warm-up, 6 s window
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import _common as C

PEER_SPEC = "cryptofeed>=2,<3"
PEER_VENV = Path(os.environ.get("CRYPTOFEED_BENCH_VENV",
                                Path.home() / ".cache" / "trio_harvest-bench" / "cryptofeed-venv"))

# Runs inside the peer's venv: a BinanceFutures feed pointed at the simulator, no-op callbacks.
PEER_SCRIPT = r'''
import asyncio, json, sys, time
from decimal import Decimal
from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TICKER, TRADES, PERPETUAL
from cryptofeed.symbols import Symbol
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint, WSAsyncConn
from cryptofeed.exchanges import BinanceFutures

ws, rest, syms = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
warmup, window = float(sys.argv[4]), float(sys.argv[5])
frames = 0

# cryptofeed accepts only wss:// addresses; the simulator speaks plain ws:// on loopback
_ws_init = WSAsyncConn.__init__
def _plain_ws_init(self, address, *args, **kwargs):
    _ws_init(self, address.replace("ws://", "wss://", 1), *args, **kwargs)
    self.address = address
WSAsyncConn.__init__ = _plain_ws_init

class SimFutures(BinanceFutures):
    websocket_endpoints = [WebsocketEndpoint(ws, options={"compression": None})]
    rest_endpoints = [RestEndpoint(rest, routes=Routes("/fapi/v1/exchangeInfo",
                      l2book="/fapi/v1/depth?symbol={}&limit={}"))]

    @classmethod
    def _parse_symbol_data(cls, data):
        ret, info = {}, {"tick_size": {}, "instrument_type": {}}
        for s in data["symbols"]:
            name = s["symbol"]
            sym = Symbol(name[:-4], name[-4:], type=PERPETUAL)
            ret[sym.normalized] = name
            info["tick_size"][sym.normalized] = s["filters"][0]["tickSize"]
            info["instrument_type"][sym.normalized] = PERPETUAL
        return ret, info

    def _address(self):
        # the simulator serves aggTrade on /market and books on /public, as Binance does now
        market = "/".join(f"{s.lower()}@aggTrade" for s in syms)
        public = "/".join(f"{s.lower()}@{c}" for s in syms for c in ("bookTicker", "depth@100ms"))
        return [f"{ws}/market/stream?streams={market}", f"{ws}/public/stream?streams={public}"]

    async def message_handler(self, msg, conn, timestamp):
        global frames
        frames += 1
        await super().message_handler(msg, conn, timestamp)

async def noop(*_args):
    return None

async def measure():
    await asyncio.sleep(warmup)
    f0, c0, t0 = frames, time.process_time(), time.perf_counter()
    await asyncio.sleep(window)
    f1, c1, t1 = frames, time.process_time(), time.perf_counter()
    print(json.dumps({"frames": f1 - f0, "cpu_s": c1 - c0, "wall_s": t1 - t0}), flush=True)
    asyncio.get_running_loop().stop()

names = [f"{s[:-4]}-{s[-4:]}-PERP" for s in syms]
fh = FeedHandler(config={"log": {"disabled": True}, "uvloop": True})
fh.add_feed(SimFutures(symbols=names, channels=[TRADES, TICKER, L2_BOOK],
                       callbacks={TRADES: noop, TICKER: noop, L2_BOOK: noop}))
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
fh.run(start_loop=False)
loop.create_task(measure())
loop.run_forever()
'''


def ensure_peer() -> tuple[str | None, str]:
    """The peer venv's python, installing it on first use; (None, reason) when that fails."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return str(python), "cached"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", PEER_SPEC, "uvloop"],
                       check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        last = [ln for ln in str(detail).splitlines() if ln.strip()][-1:] or [str(exc)]
        return None, f"cannot install {PEER_SPEC}: {last[0][:200]}"
    return str(python), "installed"


def peer_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('cryptofeed'))"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or "?"


def run_peer(python: str, sim: C.SimProcess, warmup: float, window: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(PEER_SCRIPT)
    try:
        out = subprocess.run([python, fh.name, sim.url, sim.rest_url, ",".join(sim.syms),
                              str(warmup), str(window)],
                             capture_output=True, text=True, timeout=warmup + window + 60)
    finally:
        os.unlink(fh.name)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the peer printed no result (exit {out.returncode}): {out.stderr[-500:]}")
    r: dict[str, Any] = json.loads(lines[-1])
    return r


def _frames_received(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
               if ln.startswith("trio_harvest_frames_received_total"))


def run_harvester(sim: C.SimProcess, warmup: float, window: float) -> dict[str, Any]:
    port = C.free_port()
    with tempfile.TemporaryDirectory() as data:
        cmd = [sys.executable, "-m", "trio_harvest", "run", "--ws-url", sim.url,
               "--rest-url", sim.rest_url, "--symbols", ",".join(sim.syms), "--book", "diff",
               "--data-dir", data, "--metrics-port", str(port)]
        log = Path(data) / "harvester.log"
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        try:
            deadline = time.monotonic() + 60
            while True:  # the warm-up counts from the first frame, not from the fork
                try:
                    if _frames_received(port) > 0:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text().splitlines()[-5:]
                    raise RuntimeError(f"trio_harvest did not start receiving: {tail}")
                time.sleep(0.2)
            time.sleep(warmup)
            f0, c0, t0 = _frames_received(port), C.proc_cpu_seconds(proc.pid), time.perf_counter()
            time.sleep(window)
            f1, c1, t1 = _frames_received(port), C.proc_cpu_seconds(proc.pid), time.perf_counter()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return {"frames": f1 - f0, "cpu_s": c1 - c0, "wall_s": t1 - t0}


def _us(r: dict[str, Any]) -> float:
    return round(1e6 * r["cpu_s"] / r["frames"], 2) if r["frames"] else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 s warm-up, 6 s window")
    p.add_argument("--rates", default="8000,3000", help="total simulator msg/s, comma-separated")
    p.add_argument("--symbols", type=int, default=2)
    args = p.parse_args(argv)
    warmup, window = (3.0, 6.0) if args.quick else (6.0, 15.0)
    rates = [float(r) for r in args.rates.split(",")]

    load_before = os.getloadavg()
    python, how = ensure_peer()
    if python is None:
        print(f"peer benchmark skipped: {how}")
        print(json.dumps({"skipped": how}))
        return 0
    version = peer_version(python)
    result: dict[str, Any] = {"peer": f"cryptofeed {version}", "mode": "quick" if args.quick else "full"}
    rows = []
    for rate in rates:
        sim = C.SimProcess(rate=rate, syms=C.symbols(args.symbols)).start()
        try:
            peer = run_peer(python, sim, warmup, window)
            ours = run_harvester(sim, warmup, window)
        finally:
            sim.stop()
        key = f"{int(rate)}"
        result[key] = {"peer_us_per_msg": _us(peer), "trio_harvest_us_per_msg": _us(ours),
                       "ratio": round(_us(ours) / _us(peer), 3),
                       "peer_msgs": int(peer["frames"]), "trio_harvest_msgs": int(ours["frames"])}
        rows.append((key, _us(peer), _us(ours), result[key]["ratio"], int(peer["frames"]),
                     int(ours["frames"])))
    result["ratio"] = result[f"{int(rates[0])}"]["ratio"]
    result.update(C.conditions(load_before))
    print(C.table(["msg/s", "cryptofeed µs/msg", "trio_harvest µs/msg", "ratio", "peer msgs", "our msgs"],
            rows))
    C.emit_json(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
