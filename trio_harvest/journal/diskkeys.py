"""What of a replay window is already durable: the keys of the authoritative rows in the dataset
(through the store: local disk or a bucket alike) and in the local dead letter, written since a
given time.

Owns the reading of those keys, so restart replay writes each row once: ``prices`` by
``(symbol, agg_id)``, ``orderbook`` by ``(symbol, source, update_id)``, ``quotes`` by
``(symbol, update_id)`` (also the best bid/ask rows older versions kept in ``orderbook``),
``book_updates`` by ``(symbol, update_id, is_snapshot, side, price)``, ``gaps`` by all but their
partition time, ``derivatives`` by ``(symbol, source, ts_ms)``, ``liquidations`` by
``(symbol, ts_ms, side, price, qty)``. Only the partitions the window touches are listed (its UTC dates,
the replayed symbols, the authoritative kinds) and only files modified since ``since_s`` are
read (a file holding a row of the window was written after the window began), so the cost
follows the window, not the dataset. Blocking: run it in a thread. Never writes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, BinaryIO

import msgspec
import polars as pl

from ..dataset_compat import TICKER_SOURCE
from ..kinds import (
    BOOK_UPDATES,
    DEFAULT_VENUE,
    DERIVATIVES,
    GAPS,
    LIQUIDATIONS,
    ORDERBOOK,
    PRICES,
    QUOTES,
)
from ..storage.fileschema import as_ms
from ..storage.partitions import deadletter_dir as deadletter_dir_of
from ..storage.partitions import parse_partition_dir, partition_dirs_of
from ..storage.store import LocalStore

if TYPE_CHECKING:
    from ..storage.backends import Store

log = logging.getLogger("trio_harvest.journal.diskkeys")

_line = msgspec.json.Decoder(dict[str, object])

COLUMNS = {PRICES: ("symbol", "agg_id"), ORDERBOOK: ("symbol", "source", "update_id"),
           QUOTES: ("symbol", "update_id"),
           BOOK_UPDATES: ("symbol", "update_id", "is_snapshot", "side", "price"),
           GAPS: ("symbol", "stream", "start_ms", "end_ms", "reason", "detail"),
           DERIVATIVES: ("symbol", "source", "ts_ms"),
           LIQUIDATIONS: ("symbol", "ts_ms", "side", "price", "qty")}


@dataclass(slots=True)
class DiskKeys:
    prices: set[tuple[object, ...]] = field(default_factory=set)
    orderbook: set[tuple[object, ...]] = field(default_factory=set)
    quotes: set[tuple[object, ...]] = field(default_factory=set)
    gaps: set[tuple[object, ...]] = field(default_factory=set)
    derivatives: set[tuple[object, ...]] = field(default_factory=set)
    liquidations: set[tuple[object, ...]] = field(default_factory=set)
    book_updates: set[tuple[object, ...]] = field(default_factory=set)
    last_trade: dict[str, tuple[int, int]] = field(default_factory=dict)  # symbol -> (id, ts_ms)
    loaded: set[tuple[str, str, str]] = field(default_factory=set)  # (date, symbol, kind) read
    reader: Callable[[str, str, str], list[pl.DataFrame]] | None = None  # one more partition

    def cover(self, date: str, symbol: str, kind: str) -> bool:
        """Make sure the keys of partition (date, symbol, kind) are here: a replayed row may
        lie outside the window's dates (a backfilled trade from before midnight, say).
        Blocking when it reads; True if it did."""
        part = (date, symbol, kind)
        if part in self.loaded or self.reader is None or kind not in COLUMNS:
            return False
        self.loaded.add(part)
        self.add_frames(symbol, kind, self.reader(*part))
        return True

    def add_frames(self, symbol: str, kind: str, frames: Iterable[pl.DataFrame]) -> None:
        target = self.of(kind)
        for df in frames:
            target.update((symbol, *r) for r in df.select(
                [c for c in COLUMNS[kind] if c != "symbol"]).rows())
            if kind == ORDERBOOK and df.height:  # a folder written before quotes had a kind
                self.quotes.update((symbol, u) for u in df.filter(
                    pl.col("source") == TICKER_SOURCE).get_column("update_id"))
            if kind == PRICES and df.height:
                top = df.sort("agg_id").tail(1).row(0, named=True)
                self.note_trade(symbol, int(top["agg_id"]), int(top["ts_ms"]))

    def note_trade(self, symbol: str, agg_id: int, ts_ms: int) -> None:
        last = self.last_trade.get(symbol)
        if last is None or agg_id > last[0]:
            self.last_trade[symbol] = (agg_id, ts_ms)

    def of(self, kind: str) -> set[tuple[object, ...]]:
        return {PRICES: self.prices, ORDERBOOK: self.orderbook, QUOTES: self.quotes,
                GAPS: self.gaps, BOOK_UPDATES: self.book_updates, DERIVATIVES: self.derivatives,
                LIQUIDATIONS: self.liquidations}[kind]


LISTERS = 16  # partitions listed and read at once (an object store answers each in ~10-50 ms)
CLOCK_MARGIN_S = 120.0  # event times and the store's clock may sit this far past ours


def window_dates(since_s: float, until_s: float) -> list[str]:
    """The UTC dates (``YYYY-MM-DD``) from ``since_s`` to ``until_s``, both included."""
    day = datetime.fromtimestamp(max(since_s, 0.0), UTC).date()
    last = datetime.fromtimestamp(until_s, UTC).date()
    out: list[str] = []
    while day <= last:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def read_keys(store: Store, deadletter_dir: Path, symbols: tuple[str, ...],
              since_s: float, until_s: float | None = None,
              venue: str = DEFAULT_VENUE) -> DiskKeys:
    """The keys of rows written since ``since_s`` (Unix seconds; event dates up to
    ``until_s``, default now), in the dataset's partitions of ``venue`` and ``symbols`` and in
    the dead letter (for ``DEFAULT_VENUE`` also those of the layout before venues). With
    ``since_s`` 0 (a window of unknown start) every date is read."""
    until = (time.time() if until_s is None else until_s) + CLOCK_MARGIN_S
    dates = window_dates(since_s, until) if since_s > 0 else _all_dates(store)
    def reader(date: str, symbol: str, kind: str) -> list[pl.DataFrame]:
        return [df for d in partition_dirs_of(date, symbol, kind, venue)
                for df in _partition_frames(store, d, kind, since_s)]

    keys = DiskKeys(reader=reader)
    jobs = [(d, sym, kind) for d in dates for sym in symbols for kind in COLUMNS]
    keys.loaded.update(jobs)
    with ThreadPoolExecutor(LISTERS if not isinstance(store, LocalStore) else 1) as pool:
        for (_d, symbol, kind), frames in zip(jobs, pool.map(lambda j: reader(*j), jobs),
                                              strict=True):
            keys.add_frames(symbol, kind, frames)
    for kind, cols in COLUMNS.items():
        _read_deadletter(keys, deadletter_dir / deadletter_dir_of(kind, venue), kind, cols,
                         since_s)
        if venue == DEFAULT_VENUE:  # written before venues
            _read_deadletter(keys, deadletter_dir / kind, kind, cols, since_s)
    return keys


def _partition_frames(store: Store, directory: PurePath, kind: str,
                      since_s: float) -> list[pl.DataFrame]:
    cols = [c for c in COLUMNS[kind] if c != "symbol"] + (["ts_ms"] if kind == PRICES else [])
    out: list[pl.DataFrame] = []
    try:  # a partition that does not exist lists nothing
        for rel, mtime in store.list_modified(directory, ".parquet"):
            if mtime < since_s:
                continue
            try:
                raw = _source(store, rel)
            except OSError as exc:  # the store did not answer: say so, replay goes on
                log.warning("journal: cannot read %s to skip what it holds (%s); its rows may "
                            "be written again", rel, exc)
                continue
            with contextlib.suppress(Exception):  # a broken file: `inspect` reports it
                out.append(as_ms(pl.read_parquet(raw, columns=cols)))
    except OSError as exc:
        log.warning("journal: cannot list %s to skip what it holds (%s); its rows may be "
                    "written again", directory, exc)
    return out


def _source(store: Store, rel: PurePath) -> str | BinaryIO:
    """A local file by its path (Polars reads only the columns asked for); an object whole."""
    if isinstance(store, LocalStore):
        return str(store.path(rel))
    return io.BytesIO(store.read_bytes(rel))


def _all_dates(store: Store) -> list[str]:
    dates: set[str] = set()
    with contextlib.suppress(OSError):
        for rel in store.list(None, ".parquet"):
            key = parse_partition_dir(rel.parent.parts)
            if key is not None:
                dates.add(key.date)
    return sorted(dates)


def _read_deadletter(keys: DiskKeys, folder: Path, kind: str, cols: Iterable[str],
                     since_s: float) -> None:
    if not folder.is_dir():
        return
    target = keys.of(kind)
    cols = tuple(cols)
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


def _newer(path: Path, since_s: float) -> bool:
    try:
        return path.stat().st_mtime >= since_s
    except OSError:
        return False
