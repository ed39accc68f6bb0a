"""How the diff-book crash tests count: ``book_updates`` rows written twice, holes in a symbol's
update chain that no ``gaps`` row records, ``orderbook`` rows of the diff book written twice, and
events present in one of the two kinds but not in the other (live writes both for every applied
event, so a replay must too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tests.dsrows import in_memory

UPDATE_KEY = ["symbol", "update_id", "is_snapshot", "side", "price"]
BOOK_KEY = ["symbol", "source", "update_id"]


def scan(data: Path, kind: str) -> pl.DataFrame:
    files = sorted(str(p) for p in data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"))
    if not files:
        return pl.DataFrame()
    return in_memory(pl.scan_parquet(files, hive_partitioning=True).collect())


def events(updates: pl.DataFrame, symbol: str) -> pl.DataFrame:
    """One row per diff event of ``symbol`` in ``book_updates`` (snapshot rows left out),
    in update-id order."""
    if not updates.height:
        return pl.DataFrame(schema={"update_id": pl.Int64, "prev_update_id": pl.Int64,
                                    "ts_ms": pl.Int64, "recv_ms": pl.Int64})
    return (updates.filter((pl.col("symbol") == symbol) & ~pl.col("is_snapshot"))
            .group_by("update_id").agg(pl.col("prev_update_id").first(),
                                       pl.col("ts_ms").first(), pl.col("recv_ms").first())
            .sort("update_id"))


def count(data: Path, symbols: list[str]) -> dict[str, Any]:
    updates, books, gaps = scan(data, "book_updates"), scan(data, "orderbook"), scan(data, "gaps")
    depth = books.filter(pl.col("source") == "depth") if books.height else books
    out: dict[str, Any] = {
        "update_rows": updates.height,
        "book_rows": depth.height,
        "dup_updates": updates.height - updates.select(UPDATE_KEY).n_unique()
        if updates.height else 0,
        "dup_books": depth.height - depth.select(BOOK_KEY).n_unique() if depth.height else 0,
        "holes": 0, "unrecorded_holes": [], "only_in_orderbook": 0, "only_in_book_updates": 0,
        "events": {}}
    for symbol in symbols:
        ev = events(updates, symbol)
        out["events"][symbol] = ev.height
        ids, prevs = ev["update_id"].to_list(), ev["prev_update_id"].to_list()
        ts, recv = ev["ts_ms"].to_list(), ev["recv_ms"].to_list()
        mine = gaps.filter((pl.col("symbol") == symbol) & (pl.col("stream") != f"{symbol.lower()}"
                                                           "@aggTrade")) \
            if gaps.height else pl.DataFrame()
        for i in range(1, len(ids)):
            if prevs[i] == ids[i - 1]:
                continue
            out["holes"] += 1
            lo, hi = min(ts[i - 1], recv[i - 1]), max(ts[i], recv[i])
            cover = mine.filter((pl.col("start_ms") <= hi) & (pl.col("end_ms") >= lo)) \
                if mine.height else mine
            if not cover.height:
                out["unrecorded_holes"].append({"symbol": symbol, "after": ids[i - 1],
                                                "next_pu": prevs[i], "at_ms": recv[i]})
        on_book = set(depth.filter(pl.col("symbol") == symbol)["update_id"].to_list()) \
            if depth.height else set()
        out["only_in_orderbook"] += len(on_book - set(ids))
        out["only_in_book_updates"] += len(set(ids) - on_book)
    return out


def assert_once_and_unbroken(result: dict[str, Any]) -> None:
    assert result["dup_updates"] == 0, result
    assert result["dup_books"] == 0, result
    assert not result["unrecorded_holes"], result
    assert result["only_in_orderbook"] == 0 and result["only_in_book_updates"] == 0, result
