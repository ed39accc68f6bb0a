"""Fakes for the operations tests: a scripted exchange (``connect``) that serves Binance combined
frames with contiguous agg ids, and an async disk (``save`` / ``dead_letter``) that can fail."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from trio_harvest.ingest.connection import MessageSource
from trio_harvest.kinds import Row
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition

T0 = 1_700_000_000_000


def trade_frame(symbol: str, agg_id: int, ts: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": {
        "e": "aggTrade", "E": ts, "s": symbol, "a": agg_id, "p": "100.5", "q": "0.25",
        "f": agg_id, "l": agg_id, "T": ts, "m": agg_id % 2 == 0}})


def depth_frame(symbol: str, update_id: int, ts: int, levels: int = 5) -> str:
    bids = [[f"{100 - i * 0.1:.1f}", "1.0"] for i in range(levels)]
    asks = [[f"{100.1 + i * 0.1:.1f}", "1.0"] for i in range(levels)]
    return json.dumps({"stream": f"{symbol.lower()}@depth{levels}@100ms", "data": {
        "e": "depthUpdate", "E": ts, "T": ts, "s": symbol, "U": update_id, "u": update_id,
        "pu": update_id - 1, "b": bids, "a": asks}})


def ticker_frame(symbol: str, update_id: int, ts: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": update_id, "s": symbol, "b": "100.0", "B": "1.0", "a": "100.1",
        "A": "1.0", "E": ts, "T": ts}})


def mark_frame(symbol: str, ts: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@markPrice@1s", "data": {
        "e": "markPriceUpdate", "E": ts, "s": symbol, "p": "100.05", "i": "100.0",
        "P": "100.0", "r": "0.0001", "T": (ts // 28_800_000 + 1) * 28_800_000}})


@dataclass
class FakeExchange:
    """Serves every stream in the URL at ``interval`` per round (but ``forceOrder``: liquidations
    are rare, so it stays silent, as it may for hours). ``refuse(route, attempt)`` makes
    an attempt fail; a session ends (connection reset) after ``session_frames`` rounds when set.
    ``mute(stream, now)`` silences one stream (e.g. a depth stream that stops mid-session)."""

    symbols: tuple[str, ...] = ("BTCUSDT",)
    interval: float = 0.05
    session_frames: int | None = None
    refuse: Callable[[str, int], bool] = lambda route, attempt: False
    mute: Callable[[str, float], bool] = lambda stream, now: False
    attempts: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    agg_ids: dict[str, int] = field(default_factory=dict)  # next agg id per symbol
    update_id: int = 1
    ts: int = T0

    def sent_agg_ids(self, symbol: str) -> int:
        return self.agg_ids.get(symbol, 0)

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[MessageSource]:
        route = "market" if "/market/" in url else "public"
        attempt = self.attempts[route] = self.attempts.get(route, 0) + 1
        if self.refuse(route, attempt):
            self.refused += 1
            raise OSError(111, "Connection refused")
        streams = url.split("streams=", 1)[1].split("/")
        outbox: list[str] = []
        sent_rounds = 0
        exchange = self

        class Source:
            async def get_message(self) -> str:
                nonlocal sent_rounds
                while not outbox:
                    if exchange.session_frames is not None and \
                            sent_rounds >= exchange.session_frames:
                        raise OSError(104, "Connection reset by peer")
                    await trio.sleep(exchange.interval)
                    sent_rounds += 1
                    exchange.ts += int(exchange.interval * 1000)
                    for name in streams:
                        if exchange.mute(name, trio.current_time()) or \
                                name.endswith("@forceOrder"):
                            continue
                        outbox.append(exchange.frame(name))
                return outbox.pop(0)

        yield Source()

    def frame(self, name: str) -> str:
        symbol = name.split("@", 1)[0].upper()
        if name.endswith("@aggTrade"):
            agg = self.agg_ids.get(symbol, 0)
            self.agg_ids[symbol] = agg + 1
            return trade_frame(symbol, agg, self.ts)
        if "@markPrice" in name:
            return mark_frame(symbol, self.ts)
        self.update_id += 1
        if name.endswith("@bookTicker"):
            return ticker_frame(symbol, self.update_id, self.ts)
        return depth_frame(symbol, self.update_id, self.ts)


@dataclass
class FakeDisk:
    """Async ``save`` and ``dead_letter`` without threads (MockClock friendly)."""

    fail: Callable[[Partition], bool] = lambda part: False
    saved: list[tuple[float, Partition]] = field(default_factory=list)
    deadlettered: list[tuple[str, str, list[Row]]] = field(default_factory=list)

    async def save(self, part: Partition, gate: PublishGate) -> None:
        await trio.sleep(0.01)
        if self.fail(part):
            raise OSError(30, "Read-only file system")
        self.saved.append((trio.current_time(), part))

    async def dead_letter(self, kind: str, symbol: str, rows: list[Row], gate: PublishGate, *,
                          venue: str = "binance-usdm") -> None:
        await trio.sleep(0.01)
        self.deadlettered.append((kind, symbol, rows))

    def agg_ids(self, symbol: str) -> list[int]:
        return [row[4] for _, p in self.saved if p.kind == "prices" and p.symbol == symbol
                for row in p.rows]


@contextmanager
def logging_restored() -> Iterator[None]:
    """The CLI configures the ``trio_harvest`` logger (handlers, propagate); undo it after."""
    logger = logging.getLogger("trio_harvest")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in saved[0]:
            logger.addHandler(handler)
        logger.propagate, logger.level = saved[1], saved[2]


def chattr_works(probe: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        return False
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["chattr", "-i", str(probe)], check=True)
    return ok


@contextmanager
def unwritable(data: Path) -> Iterator[str]:
    """Make writes into ``data`` fail for real, then undo it."""
    data.parent.mkdir(parents=True, exist_ok=True)
    if chattr_works(data.parent / "probe"):
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chattr", "+i", str(data)], check=True)
        try:
            yield "chattr +i"
        finally:
            subprocess.run(["chattr", "-i", str(data)], check=True)
    else:
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text("a file where the data directory must be")
        try:
            yield "file in the way"
        finally:
            data.unlink()




async def wait_for(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``cond`` (real clock) until it holds; fail after ``seconds``."""
    with trio.fail_after(seconds):
        while not cond():
            await trio.sleep(0.02)
