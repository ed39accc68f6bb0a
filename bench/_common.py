"""Shared helpers for the benchmarks: the simulator as a separate process, CPU and RSS readings
of a process, raw receivers on each transport (trio-websocket, the websockets trio client), and
output formatting (a table, then one JSON line).

Everything here measures; nothing changes trio_harvest's behaviour. Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import trio_harvest  # noqa: F401
except ImportError:  # run from a source tree: python bench/xxx.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl
import trio
import trio_websocket

from trio_harvest.venues.binance_usdm.streams import ConnectionPlan, plan_connections, streams_for

CLK_TCK = os.sysconf("SC_CLK_TCK")
REALISTIC_SYMBOLS = 200
REALISTIC_RATE = 10_000.0


def symbols(n: int) -> tuple[str, ...]:
    """``n`` made-up symbols (the simulator derives a spec from any name)."""
    if n == 2:
        return ("BTCUSDT", "ETHUSDT")
    return tuple(f"S{i:03d}USDT" for i in range(n))


def plans_for(syms: Sequence[str], per_connection: int = 200, *,
              book: str = "partial") -> list[ConnectionPlan]:
    """The harvester's own connection plan (aggTrade on /market; depth20@100ms, or with
    ``book="diff"`` depth@100ms, and bookTicker on /public), so raw receivers open exactly the
    URLs the pipeline opens."""
    return plan_connections(
        streams_for(tuple(syms), depth_levels=20, depth_speed="100ms", book=book,
                    book_ticker=True),
        per_connection,
    )


# -- CPU and memory ----------------------------------------------------------------------------


def proc_cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds per thread of this process, keyed ``<tid>:<name>``."""
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        f = raw.rsplit(")", 1)[1].split()
        out[f"{tid}:{name}"] = (int(f[11]) + int(f[12])) / CLK_TCK
    return out


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size (VmRSS) in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, all processes), from /proc/stat."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / CLK_TCK


class CpuMeter:
    """CPU% of this process over a window (process_time covers every thread)."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def read(self) -> tuple[float, float]:
        """(wall seconds, cpu seconds) since construction."""
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def slope_per_min(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (t seconds, value) in value per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (v - mv) for t, v in samples) / den


# -- the simulator in its own process ----------------------------------------------------------

_LISTEN = re.compile(r"simulator listening on (ws://\S+)")
_SLOW = re.compile(r"(\d+) slow-consumer closes")
_SENT = re.compile(r"(\d+) frames sent")


@dataclass
class SimProcess:
    """``python -m trio_harvest sim`` as a child process (so its CPU is not the harvester's)."""

    rate: float
    syms: tuple[str, ...]
    seed: int = 1
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    final_line: str = ""
    cpu_at_start: float = 0.0
    started_at: float = 0.0
    log: list[str] = field(default_factory=list)
    _stopped: dict[str, Any] | None = None

    def start(self, timeout: float = 30.0) -> SimProcess:
        cmd = [sys.executable, "-m", "trio_harvest", "sim", "--port", "0", "--rate",
               str(self.rate), "--seed", str(self.seed), "--symbols", ",".join(self.syms)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line.rstrip())
            m = _LISTEN.search(line)
            if m:
                self.url = m.group(1)
                self.cpu_at_start = self.cpu()
                self.started_at = time.perf_counter()
                return self
        self.stop()
        raise RuntimeError(f"simulator did not start: {self.log[-5:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def rest_url(self) -> str:
        """The simulator serves its REST API on the websocket port."""
        return "http" + self.url[2:]

    def cpu(self) -> float:
        try:
            return proc_cpu_seconds(self.pid)
        except OSError:
            return 0.0

    def stop(self) -> dict[str, Any]:
        """SIGTERM, wait, and parse the simulator's closing line."""
        out: dict[str, Any] = {"slow_consumer_closes": None, "frames_queued": None}
        if self.proc is None:
            return out
        if self._stopped is not None:
            return self._stopped
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        lines = [*self.log, *(rest or "").splitlines()]
        closing = [ln for ln in lines if "simulator stopped" in ln]
        self.final_line = closing[-1] if closing else ""
        m = _SLOW.search(self.final_line)
        if m:
            out["slow_consumer_closes"] = int(m.group(1))
        m = _SENT.search(self.final_line)
        if m:
            out["frames_queued"] = int(m.group(1))
        self._stopped = out
        return out

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a bare trio-websocket receiver ------------------------------------------------------------


@dataclass
class RawCount:
    frames: int = 0
    closed: int = 0  # connections that ended (e.g. dropped as a slow consumer)


async def raw_receive(urls: Iterable[str], counter: RawCount,
                      transport: str = "trio-websocket") -> None:
    """One bare loop per URL that counts messages: trio-websocket's own ``get_message`` (the
    library itself, with the options of the harvester's connector), or the websockets
    transport's ``get_message`` and ``poll`` (``ingest/ws_websockets.py``: the library's
    sans-I/O protocol with the harvester's in-place frame reading, which is what that transport
    is). A closed connection is counted and reopened."""
    one = _raw_websockets if transport == "websockets" else _raw_trio_websocket
    async with trio.open_nursery() as nursery:
        for url in urls:
            nursery.start_soon(one, url, counter)


async def _raw_trio_websocket(url: str, counter: RawCount) -> None:
    while True:
        try:
            async with trio_websocket.open_websocket_url(
                url, max_message_size=4 * 1024 * 1024, message_queue_size=64,
                receive_buffer_size=65536, connect_timeout=10.0, disconnect_timeout=2.0,
            ) as ws:
                get = ws.get_message
                while True:
                    await get()
                    counter.frames += 1
        except (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError):
            counter.closed += 1
            await trio.sleep(0.2)


async def _raw_websockets(url: str, counter: RawCount) -> None:
    from trio_harvest.ingest.ws_websockets import RECOVERABLE, open_websocket

    while True:
        try:
            async with open_websocket(url, max_message_bytes=4 * 1024 * 1024) as ws:
                get, poll = ws.get_message, ws.poll
                while True:
                    await get()
                    counter.frames += 1
                    while poll() is not None:  # what was read whole already, as ingest does
                        counter.frames += 1
        except (*RECOVERABLE, OSError):
            counter.closed += 1
            await trio.sleep(0.2)


# -- output ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    def fmt(values: Sequence[str]) -> str:
        pairs = enumerate(zip(values, widths, strict=True))
        return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in pairs)

    line = fmt(headers)
    return "\n".join([line, "-" * len(line), *(fmt(r) for r in cells)])


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def conditions(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """How busy the machine was (benchmarks on a shared box): 1-minute load average before and
    after the run, cores, and the code measured (git commit, and whether the tree was dirty)."""
    commit = dirty = None
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                     "trio_harvest"], capture_output=True, text=True,
                                    timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {"loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(), "git_commit": commit, "trio_harvest_modified": dirty}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emit_json(doc: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object with all figures."""
    sys.stdout.flush()
    print(json.dumps(doc, sort_keys=False, default=str), flush=True)


# -- frames without a socket -------------------------------------------------------------------


def generate_frames(
    syms: Sequence[str], rate: float, seconds: float, *, seed: int = 1, start_ms: int | None = None
) -> Iterable[str]:
    """The combined-stream frames the simulator would send to the harvester's subscriptions
    (aggTrade, depth20@100ms, bookTicker) over ``seconds`` of market time at ``rate`` msg/s in
    total: the simulator's own market model and wire encoders, stepped every 10 ms, no socket."""
    for _, frame in generate_timed_frames(syms, rate, seconds, seed=seed, start_ms=start_ms):
        yield frame


def generate_timed_frames(
    syms: Sequence[str], rate: float, seconds: float, *, seed: int = 1, start_ms: int | None = None,
    book: str = "partial",
) -> Iterable[tuple[int, str]]:
    """``generate_frames`` with the market time (ms) of each frame: ``(ms, frame)``; with
    ``book="diff"`` the diff depth stream instead of depth20."""
    from trio_harvest.sim.market import Market
    from trio_harvest.sim.wire import SymbolWire, combined

    market = Market(tuple(syms), rate=rate, seed=seed)
    wires = {s: SymbolWire(m.spec) for s, m in market.symbols.items()}
    wanted = {spec.name for plan in plans_for(syms, book=book) for spec in plan.streams}
    now = start_ms if start_ms is not None else time.time_ns() // 1_000_000 - int(seconds * 1000)
    market.step(now)
    end = now + int(seconds * 1000)
    while now < end:
        now += 10
        for ev in market.step(now):
            wire = wires[ev.symbol]
            for name, levels, _kind in wire.targets(ev):
                if name in wanted:
                    yield now, combined(name, wire.encode(ev, levels))


def receive_from(proc: Any, conn: Any, timeout: float | None = None) -> Any:
    """The one result a multiprocessing child sends; raises if it dies without sending."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not conn.poll(0.5):
        if not proc.is_alive():
            proc.join()
            if conn.poll(0):
                break
            raise RuntimeError(f"child process exited with code {proc.exitcode} without a result")
        if deadline is not None and time.monotonic() > deadline:
            proc.terminate()
            proc.join()
            raise RuntimeError("child process timed out")
    result = conn.recv()
    proc.join()
    return result


def parquet_rows(files: list[Path]) -> int:
    """Rows in these Parquet files, one scan per kind (a kind's files may differ in columns:
    first-version union files, orderbook depths)."""
    by_kind: dict[str, list[str]] = {}
    for f in files:
        by_kind.setdefault(f.parent.name, []).append(str(f))
    return sum(int(pl.scan_parquet(group, hive_partitioning=False, missing_columns="insert",
                                   extra_columns="ignore").select(pl.len()).collect().item())
               for group in by_kind.values())


class _Silent:
    async def get_message(self) -> str:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


@asynccontextmanager
async def silent_connect(url: str) -> AsyncIterator[_Silent]:
    """A ``connect`` whose sockets never send anything (a harvester fed by hand)."""
    yield _Silent()
