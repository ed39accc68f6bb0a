"""What of a replay window is already durable: the keys of the authoritative rows on disk (the
dataset and the dead letter) written since a given time.

Owns the reading of those keys, so restart replay writes each row once: ``prices`` by
``(symbol, agg_id)``, ``orderbook`` by ``(symbol, source, update_id)``, ``gaps`` by
all but their partition time. Only files modified since ``since_s`` are read (a file
holding a row of the window was written after the window began), so the cost follows the
window, not the dataset. Blocking: run it in a thread. Never writes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import polars as pl

from ..kinds import GAPS, ORDERBOOK, PRICES

_line = msgspec.json.Decoder(dict[str, object])

COLUMNS = {PRICES: ("symbol", "agg_id"), ORDERBOOK: ("symbol", "source", "update_id"),
           GAPS: ("symbol", "stream", "start_ms", "end_ms", "reason", "detail")}


@dataclass(slots=True)
class DiskKeys:
    prices: set[tuple[object, ...]] = field(default_factory=set)
    orderbook: set[tuple[object, ...]] = field(default_factory=set)
    gaps: set[tuple[object, ...]] = field(default_factory=set)
    last_trade: dict[str, tuple[int, int]] = field(default_factory=dict)  # symbol -> (id, ts_ms)

    def note_trade(self, symbol: str, agg_id: int, ts_ms: int) -> None:
        last = self.last_trade.get(symbol)
        if last is None or agg_id > last[0]:
            self.last_trade[symbol] = (agg_id, ts_ms)

    def of(self, kind: str) -> set[tuple[object, ...]]:
        return {PRICES: self.prices, ORDERBOOK: self.orderbook, GAPS: self.gaps}[kind]


def read_keys(data_dir: Path, deadletter_dir: Path, symbols: tuple[str, ...],
              since_s: float) -> DiskKeys:
    keys = DiskKeys()
    for kind, cols in COLUMNS.items():
        target = keys.of(kind)
        for symbol in symbols:
            files = [str(p) for p in data_dir.glob(f"date=*/symbol={symbol}/kind={kind}/*.parquet")
                     if _newer(p, since_s)]
            for name in files:
                with contextlib.suppress(Exception):  # unreadable: `inspect` reports it
                    df = pl.read_parquet(name, columns=[c for c in cols if c != "symbol"])
                    target.update((symbol, *r) for r in df.rows())
                    if kind == PRICES and df.height:
                        top = pl.read_parquet(name, columns=["agg_id", "ts_ms"]).sort(
                            "agg_id").tail(1).row(0)
                        keys.note_trade(symbol, int(top[0]), int(top[1]))
        folder = deadletter_dir / kind
        if folder.is_dir():
            for dl in folder.glob("*.ndjson"):
                if not _newer(dl, since_s):
                    continue
                with contextlib.suppress(OSError):
                    for line in dl.read_bytes().splitlines():
                        with contextlib.suppress(msgspec.DecodeError):
                            rec = _line.decode(line)
                            target.add(tuple(rec.get(c) for c in cols))
                            agg, ts = rec.get("agg_id"), rec.get("ts_ms")
                            if kind == PRICES and isinstance(agg, int) and isinstance(ts, int):
                                keys.note_trade(str(rec.get("symbol")), agg, ts)
    return keys


def _newer(path: Path, since_s: float) -> bool:
    try:
        return path.stat().st_mtime >= since_s
    except OSError:
        return False
