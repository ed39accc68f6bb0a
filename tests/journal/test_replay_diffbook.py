"""Restart replay of diff books (``--book diff``): the REST snapshot is journaled where the book
took it, so the replay rebuilds each book through the same code and writes the ``book_updates``
and ``orderbook`` rows the crash lost, each once (also when the replay itself runs twice); a
journal without snapshot records (written before they existed) replays as before: no book rows,
the replayed window a restart gap. The raw archive of a diff-book run replays to the same
``book_updates`` and ``orderbook`` rows as the live run."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import trio

from tests.conftest import make_config
from tests.journal import killed
from tests.journal.bookchain import assert_once_and_unbroken, count, events, scan
from trio_harvest.app import Harvester
from trio_harvest.cli.commands import main
from trio_harvest.journal import format as fmt
from trio_harvest.kinds import BOOK_UPDATES, ORDERBOOK
from trio_harvest.repair import bookbases
from trio_harvest.sim.server import SimConfig, Simulator

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def journaled(journal: Path) -> dict[str, int]:
    """The last diff-depth update id per symbol among the frames a journal holds on disk."""
    last: dict[str, int] = {}
    for rec in fmt.iter_segments(journal.rglob("seg-*")):
        if rec.type == fmt.FRAME:
            doc = json.loads(rec.payload)
            if doc["stream"].endswith("@depth@100ms"):
                last[doc["data"]["s"]] = int(doc["data"]["u"])
    return last


async def crash(h: Harvester, until: Callable[[], bool] | None = None) -> None:
    """Run ``h`` until its books are live, some of their rows are written and more are only in
    memory (and ``until()``), then end it as SIGKILL would (``killed.crash``)."""
    books = h.diff_books
    assert books is not None

    def ready() -> bool:
        return (h.rotation.stats.kind("book_updates").rows_written > 0
                and h.lanes.total_pending() > 300
                and all(b.live for b in books.books.values())
                and (until is None or until()))

    await killed.crash(h, ready)


def consistent_cut(h: Harvester) -> Callable[[], bool]:
    """A moment a journal without book records can crash at: no book file is being written and
    each symbol's two book lanes hold rows from the same event on, so the events on disk are the
    same in both kinds. Such a journal cannot rebuild book rows; a SIGKILL while one kind's file
    of a flush is on disk and the other's is not (or after the two lanes were drained an event
    apart) leaves rows of one kind without the other (docs/exactly-once-local.md)."""

    def ready() -> bool:
        if any(lane.kind in (BOOK_UPDATES, ORDERBOOK) for lane in h.rotation.held):
            return False
        return all(h.lanes.get(ORDERBOOK, s).first_seq == h.lanes.get(BOOK_UPDATES, s).first_seq
                   for s in SYMBOLS)

    return ready


@asynccontextmanager
async def exchange(seed: int) -> AsyncIterator[dict[str, str]]:
    """A simulator (in this process) while the block runs: the URLs to harvest it."""
    sim = Simulator(SimConfig(symbols=SYMBOLS, rate=400.0, seed=seed))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sim.serve)
        yield {"ws_url": f"ws://127.0.0.1:{port}", "rest_url": f"http://127.0.0.1:{port}"}
        nursery.cancel_scope.cancel()


def config(tmp_path: Path, urls: dict[str, str], **more: Any) -> Any:
    return make_config(tmp_path, journal=True, symbols=SYMBOLS, book="diff", rotate_sec=0.5,
                       min_file_rows=1, max_file_age=3600.0, **urls, **more)


async def test_a_crash_replays_the_diff_books_rows_once_even_when_run_twice(
        tmp_path: Path) -> None:
    async with exchange(5) as urls:
        cfg = config(tmp_path, urls)
        await crash(Harvester(cfg))
        before = count(cfg.data_dir, list(SYMBOLS))
        at_crash = tmp_path / "journal-at-crash"
        shutil.copytree(cfg.data_dir / "_journal", at_crash)
        last = journaled(at_crash)
        assert set(last) == set(SYMBOLS)

        second = Harvester(config(tmp_path, urls, duration=2.0))
        await second.run()
        result = count(cfg.data_dir, list(SYMBOLS))
        assert_once_and_unbroken(result)
        updates = scan(cfg.data_dir, "book_updates")
        for symbol in SYMBOLS:  # the last diff the crashed run journaled is on disk
            ids = set(events(updates, symbol)["update_id"].to_list())
            assert last[symbol] in ids, (symbol, last[symbol], before, result)
        assert result["update_rows"] > before["update_rows"]
        assert second.replayer.stats.book_records >= len(SYMBOLS)  # the snapshots came back

        # a crash during (or right after) that replay leaves its segments: replaying them again
        # adds no row that is already there
        shutil.rmtree(cfg.data_dir / "_journal")
        shutil.copytree(at_crash, cfg.data_dir / "_journal")
        third = Harvester(config(tmp_path, urls, duration=0.5))
        await third.run()
        assert third.replayer.stats.skipped > 0
        assert_once_and_unbroken(count(cfg.data_dir, list(SYMBOLS)))


async def test_a_restart_without_a_symbol_still_writes_its_journaled_book_rows(
        tmp_path: Path) -> None:
    async with exchange(8) as urls:
        cfg = config(tmp_path, urls)
        await crash(Harvester(cfg))
        last = journaled(cfg.data_dir / "_journal")
        fewer = make_config(tmp_path, journal=True, symbols=("BTCUSDT",), book="diff",
                            rotate_sec=0.5, min_file_rows=1, duration=1.0, **urls)
        second = Harvester(fewer)
        await second.run()
        assert_once_and_unbroken(count(cfg.data_dir, list(SYMBOLS)))
        updates = scan(cfg.data_dir, "book_updates")
        assert last["ETHUSDT"] in set(events(updates, "ETHUSDT")["update_id"].to_list())
        assert second.diff_books is not None and set(second.diff_books.books) == {"BTCUSDT"}
        gaps = scan(cfg.data_dir, "gaps").filter(pl.col("stream") == "ethusdt@depth@100ms")
        assert "restart" in gaps["reason"].to_list()  # it is not followed any more


async def test_a_book_whose_snapshot_left_the_journal_is_rebuilt_from_its_journaled_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bookbases, "REBASE_MIN_S", 0.2)  # states often, so segments can go
    async with exchange(7) as urls:
        cfg = config(tmp_path, urls, journal_segment_s=0.3)
        first = Harvester(cfg)
        journal = first.journal
        assert journal is not None  # until the segments of the first snapshots went
        await crash(first, lambda: journal.stats.deleted >= 4)
        at_crash = tmp_path / "journal-at-crash"
        shutil.copytree(cfg.data_dir / "_journal", at_crash)
        kept = [r.type for r in fmt.iter_segments(at_crash.rglob("seg-*"))]
        assert fmt.BOOK_STATE in kept
        last = journaled(at_crash)
        second = Harvester(config(tmp_path, urls, duration=1.0))
        await second.run()
        assert second.replayer.stats.book_states >= 1  # a book came back from its state
        assert_once_and_unbroken(count(cfg.data_dir, list(SYMBOLS)))
        updates = scan(cfg.data_dir, "book_updates")
        for symbol in SYMBOLS:
            assert last[symbol] in set(events(updates, symbol)["update_id"].to_list()), symbol


async def test_a_journal_without_book_records_replays_as_before(tmp_path: Path) -> None:
    async with exchange(6) as urls:
        cfg = config(tmp_path, urls)
        first = Harvester(cfg)
        assert first.diff_books is not None
        first.diff_books.bases.journal = None  # as a version before books journaled their snapshots
        await crash(first, consistent_cut(first))
        second = Harvester(config(tmp_path, urls, duration=2.0))
        await second.run()
        st = second.replayer.stats
        assert st.frames > 0 and st.book_records == 0
        result = count(cfg.data_dir, list(SYMBOLS))
        assert_once_and_unbroken(result)
        gaps = scan(cfg.data_dir, "gaps").filter(pl.col("reason") == "restart")
        for symbol in SYMBOLS:  # the replayed window of its book: a restart gap from its start
            stream = f"{symbol.lower()}@depth@100ms"
            mine = gaps.filter(pl.col("stream") == stream)
            assert mine.height == 1 and mine["start_ms"][0] == st.first_ms, (symbol, gaps)


async def test_the_raw_archive_of_a_diff_book_run_replays_its_book_rows(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=400.0,
                      symbols=SYMBOLS, book="diff", duration=3.0, journal_segment_s=1.0)
    await Harvester(cfg).run()
    out = tmp_path / "rebuilt"
    code = await trio.to_thread.run_sync(  # no config: venue and book mode are the archive's
        main, ["replay", "--raw-dir", str(raw), "--data-dir", str(out)])
    assert code == 0
    for kind, key in (("book_updates", ["symbol", "update_id", "is_snapshot", "side", "price"]),
                      ("orderbook", ["symbol", "source", "update_id"])):
        live, again = scan(cfg.data_dir, kind), scan(out, kind)
        assert live.height > 0 and live.height == again.height, kind
        cols = live.columns
        order = [*key, *(c for c in cols if c not in key)]
        assert live.sort(order, nulls_last=True).equals(
            again.select(cols).sort(order, nulls_last=True)), kind
