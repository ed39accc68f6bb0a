"""Several partitions staged by one job (``Writer.stage_many``, their Parquet encoded in one
Polars call) are the very files ``Writer.stage`` writes one by one, byte for byte; a partition
that cannot be written fails alone; and rotation, flushing lanes due together in groups, still
writes one file per lane with every row, or sends a group's failed writes to the dead letter."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import trio

from trio_harvest.kinds import (
    DERIVATIVES,
    PRICES,
    PRICES_SCHEMA,
    QUOTES_SCHEMA,
    orderbook_schema,
    schema_for,
)
from trio_harvest.pipeline.chunks import Batch
from trio_harvest.pipeline.lanes import Lanes
from trio_harvest.pipeline.rotation import Rotation
from trio_harvest.pipeline.shapes import DepthBuilder, QuoteBuilder, TradeBuilder
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Committing, Writer
from trio_harvest.venues.binance_usdm.decode import AggTrade, BookTicker

from ..pipeline.test_chunks import _fixture_messages, _sim_depth20
from .test_publish_outcome import on_disk, slow_rename

SYM = "SUSHIUSDT"
DAY = "2023-11-14"
T0 = 1_700_000_000_000


def _parts(fixtures_dir: Path) -> list[Partition]:
    """A lane batch of trades, of quotes and of depth20 books (real frames), and row tuples."""
    msgs = _fixture_messages(fixtures_dir)
    tb, kb, db = TradeBuilder(), QuoteBuilder(), DepthBuilder(20)
    for i, t in enumerate(m for m in msgs if isinstance(m, AggTrade) and m.symbol == SYM):
        tb.add(t, 1000 + i)
    for i, b in enumerate(m for m in msgs if isinstance(m, BookTicker) and m.symbol == SYM):
        kb.add(b, 5 + i)
    for i, d in enumerate(_sim_depth20()[:40]):
        db.add(d, 7 + i, "depth20")
    deriv = [(T0 + i, T0 + i, T0 + i + 3, SYM, "markPrice", 100.0 + i, 100.5, None, 0.0001,
              T0 + 8 * 3_600_000, None) for i in range(30)]
    return [Partition("prices", SYM, DAY, Batch([tb], PRICES_SCHEMA, SYM)),
            Partition("quotes", SYM, DAY, Batch([kb], QUOTES_SCHEMA, SYM)),
            Partition("orderbook", SYM, DAY, Batch([db], orderbook_schema(20), SYM)),
            Partition(DERIVATIVES, SYM, DAY, deriv)]


def _writer(root: Path) -> Writer:
    return Writer(LocalStore(root), LocalStore(root / "dl"), lambda kind: schema_for(kind, 20),
                  lambda kind: {"trio_harvest.kind": kind})


async def _published(outs: Sequence[Any]) -> list[Any]:
    return [await o.result() if isinstance(o, Committing) else o for o in outs]


async def test_staged_together_the_files_are_the_bytes_staged_one_by_one(
        fixtures_dir: Path, tmp_path: Path) -> None:
    parts = _parts(fixtures_dir)
    together, alone = _writer(tmp_path / "a"), _writer(tmp_path / "b")
    many = await _published(await together.stage_many(parts, [PublishGate() for _ in parts]))
    ones = [await alone.save(p, PublishGate()) for p in parts]
    assert len(many) == len(ones) == 4
    for m, o, part in zip(many, ones, parts, strict=True):
        assert (m.rows, m.bytes) == (o.rows, o.bytes) == (part.n, o.bytes)
        assert m.path.parent == o.path.parent == part.directory()
        a, b = (tmp_path / "a" / m.path).read_bytes(), (tmp_path / "b" / o.path).read_bytes()
        assert a == b and pl.read_parquet(tmp_path / "a" / m.path).height == part.n
    assert not [p for p in (tmp_path / "a").rglob("*") if p.name.startswith(".tmp-")]


async def test_a_partition_that_cannot_be_encoded_fails_alone(
        fixtures_dir: Path, tmp_path: Path) -> None:
    parts = _parts(fixtures_dir)
    # one fails in the encoding (inside the shared Polars call), one before (no event time)
    bad = Partition("prices", "BADUSDT", DAY, pl.DataFrame(
        {"ts_ms": [T0], "symbol": ["BADUSDT"], "x": pl.Series([object()], dtype=pl.Object)}))
    no_ts = Partition("prices", "NOTSUSDT", DAY, pl.DataFrame({"price": [1.0]}))
    mixed = [parts[0], bad, parts[1], no_ts, parts[2]]
    w = _writer(tmp_path)
    outs = await w.stage_many(mixed, [PublishGate() for _ in mixed])
    assert [type(o).__name__ for o in outs] == [
        "Committing", "ComputeError", "Committing", "ColumnNotFoundError", "Committing"]
    done = await _published(outs)
    for out, part in zip(done, mixed, strict=True):
        if part in (bad, no_ts):
            continue
        assert pl.read_parquet(tmp_path / out.path).height == part.n
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert len(names) == 3 and not [n for n in names if n.startswith(".tmp-")]


def _fill(lanes: Lanes, symbols: list[str], n: int) -> None:
    for s in symbols:
        lane = lanes.get(PRICES, s)
        for i in range(n):
            assert lane.put_nowait((T0 + i, 1, 2, s, i, 100.0, 0.5, i, i, False))


SaveManyOf = Callable[[Writer], Any]


async def _rotate(tmp_path: Path, symbols: list[str], n: int, *,
                  save_many_of: SaveManyOf = lambda w: w.stage_many,
                  write_timeout: float = 5.0) -> tuple[Rotation, Writer]:
    w = Writer(LocalStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
               lambda kind: schema_for(kind, 20))
    lanes = Lanes({PRICES: (10_000, 20_000)}, wake=lambda lane: None)
    _fill(lanes, symbols, n)
    rotation = Rotation(lanes, w.stage, w.dead_letter, rotate_sec=0.1,
                        write_timeout=write_timeout, deadletter_timeout=5.0, save_concurrency=1,
                        save_many=save_many_of(w), batch_files=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(rotation.run)
        await trio.sleep(2.0)
        nursery.cancel_scope.cancel()
    return rotation, w


SYMBOLS = [f"S{i:02d}USDT" for i in range(10)]  # groups of 4, 4 and 2


async def test_lanes_due_together_are_written_in_groups_one_file_each(tmp_path: Path) -> None:
    rotation, w = await _rotate(tmp_path, SYMBOLS, 30)
    ks = rotation.stats.kind(PRICES)
    assert ks.files_written == len(SYMBOLS) and ks.rows_written == 30 * len(SYMBOLS)
    assert on_disk(tmp_path) == (30 * len(SYMBOLS), 0)
    files = list((tmp_path / "data").rglob("*.parquet"))
    assert sorted(f.parent.parent.name for f in files) == [f"symbol={s}" for s in SYMBOLS]
    assert all(pl.read_parquet(f).height == 30 for f in files)
    assert w.group.files == len(SYMBOLS) and w.group.batches < len(SYMBOLS)


async def test_a_failed_write_in_a_group_goes_to_the_dead_letter_alone(tmp_path: Path) -> None:
    def save_many_of(w: Writer) -> Any:
        async def save_many(parts: Sequence[Partition],
                            gates: Sequence[PublishGate]) -> list[Any]:
            good = [(p, g) for p, g in zip(parts, gates, strict=True) if p.symbol != "S03USDT"]
            outs = iter(await w.stage_many([p for p, _ in good], [g for _, g in good]))
            return [OSError("disk says no") if p.symbol == "S03USDT" else next(outs)
                    for p in parts]
        return save_many

    rotation, _w = await _rotate(tmp_path, SYMBOLS, 30, save_many_of=save_many_of)
    ks = rotation.stats.kind(PRICES)
    assert ks.write_failures == 1 and ks.rows_deadlettered == 30 and ks.rows_lost == 0
    assert ks.files_written == len(SYMBOLS) - 1
    assert on_disk(tmp_path) == (30 * (len(SYMBOLS) - 1), 30)


async def test_a_group_whose_renames_fail_after_the_timeout_is_dead_lettered_not_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "replace", slow_rename(fail=True))
    rotation, _w = await _rotate(tmp_path, SYMBOLS[:4], 20, write_timeout=0.2)
    ks = rotation.stats.kind(PRICES)
    assert on_disk(tmp_path) == (0, 80)  # every row in the dead letter, none lost
    assert ks.rows_written == 0 and ks.rows_deadlettered == 80 and ks.rows_lost == 0


async def test_a_group_whose_encoding_outlasts_the_timeout_is_dead_lettered_and_left_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trio_harvest.storage.encoding import write_parquet_many as real

    def slow(files: Any) -> None:
        time.sleep(0.6)
        real(files)

    monkeypatch.setattr("trio_harvest.storage.writer.write_parquet_many", slow)
    rotation, w = await _rotate(tmp_path, SYMBOLS[:4], 20, write_timeout=0.2)
    ks = rotation.stats.kind(PRICES)
    assert ks.write_timeouts == 4 and ks.rows_deadlettered == 80 and ks.rows_lost == 0
    assert on_disk(tmp_path) == (0, 80)
    assert w.threads_stuck == 0  # the abandoned job ended, and removed its temp files
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
