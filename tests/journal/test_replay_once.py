"""Replay is exactly once with itself (in process, segments written by hand): a trade from a
replayed frame and the same trade from a replayed REST row are one row, in either order; two gap
rows that share a start are two rows; a symbol outside today's configuration is written, not
dropped. And the journal checkpoint holds the frames whose rows a gate still holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import trio

from tests.conftest import make_config
from trio_harvest.app import Harvester
from trio_harvest.gaps import AGG_ID_BREAK, UNFILLED, agg_detail, gap_row
from trio_harvest.journal import format as fmt
from trio_harvest.kinds import GAPS, PRICES
from trio_harvest.venues.binance_usdm.decode import AggTrade, decode_frame, trade_row

T0 = 1_790_000_000_000


def trade(symbol: str, agg_id: int, t_ms: int) -> bytes:
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": {
        "e": "aggTrade", "E": t_ms, "s": symbol, "a": agg_id, "p": "100.0", "q": "1.0",
        "f": agg_id, "l": agg_id, "T": t_ms, "m": False}}).encode()


def rest_row(symbol: str, agg_id: int, t_ms: int, recv_ms: int) -> bytes:
    """A backfilled trade as the journal holds it (same trade, REST's receive time)."""
    row = trade_row(decode_frame(trade(symbol, agg_id, t_ms)).data, recv_ms)  # type: ignore[arg-type]
    return msgspec.json.encode({"kind": PRICES, "row": list(row)})


def gap(row: tuple[object, ...]) -> bytes:
    return msgspec.json.encode({"kind": GAPS, "row": list(row)})


async def replay(tmp_path: Path, records: list[tuple[int, bytes]],
                 symbols: tuple[str, ...] = ("BTCUSDT",)) -> Harvester:
    """Replay ``records`` ((type, payload), in order) as one segment left by a crash."""
    h = Harvester(make_config(tmp_path, journal=True, symbols=symbols))
    seg = tmp_path / "seg"
    seg.write_bytes(fmt.MAGIC + fmt.encode(
        [(i + 1, (T0 + 10 * i) * 1_000_000, 0, typ, payload)
         for i, (typ, payload) in enumerate(records)]))
    await h.replayer.run([(1, seg, len(records))], T0 * 1_000_000)
    return h


def rows(h: Harvester, kind: str, symbol: str) -> list[Any]:
    return list(h.lanes.get(kind, symbol).drain())


async def test_a_trade_from_a_replayed_frame_is_not_written_again_from_a_replayed_rest_row(
        tmp_path: Path) -> None:
    frames = [(fmt.FRAME, trade("BTCUSDT", a, T0 + a)) for a in range(100, 106)]
    backfilled = [(fmt.ROW, rest_row("BTCUSDT", a, T0 + a, T0 + 5000)) for a in (102, 103)]
    h = await replay(tmp_path, frames + backfilled)
    ids = [r[4] for r in rows(h, PRICES, "BTCUSDT")]
    assert sorted(ids) == list(range(100, 106)), ids


async def test_a_trade_from_a_replayed_rest_row_is_not_written_again_from_a_replayed_frame(
        tmp_path: Path) -> None:
    backfilled = [(fmt.ROW, rest_row("BTCUSDT", a, T0 + a, T0 + 5000)) for a in (102, 103)]
    frames = [(fmt.FRAME, trade("BTCUSDT", a, T0 + a)) for a in range(100, 106)]
    h = await replay(tmp_path, backfilled + frames)
    ids = [r[4] for r in rows(h, PRICES, "BTCUSDT")]
    assert sorted(ids) == list(range(100, 106)), ids


async def test_two_gap_rows_sharing_symbol_stream_start_and_reason_are_both_replayed(
        tmp_path: Path) -> None:
    # one break, partly filled: backfill writes one unfilled row per range still missing, all
    # with the break's start (repair/backfill.py)
    stream = "btcusdt@aggTrade"
    a = gap_row("BTCUSDT", stream, T0, T0 + 9, AGG_ID_BREAK, agg_detail(10, 12, UNFILLED, "x"))
    b = gap_row("BTCUSDT", stream, T0, T0 + 9, AGG_ID_BREAK, agg_detail(20, 25, UNFILLED, "x"))
    h = await replay(tmp_path, [(fmt.ROW, gap(a)), (fmt.ROW, gap(b)), (fmt.ROW, gap(a))])
    got = rows(h, GAPS, "BTCUSDT")
    assert sorted(r[6] for r in got) == sorted([a[6], b[6]])  # both, and each once


async def test_journaled_rows_of_a_symbol_no_longer_configured_are_written(
        tmp_path: Path) -> None:
    frames = [(fmt.FRAME, trade(s, a, T0 + a)) for a in range(100, 106)
              for s in ("BTCUSDT", "ETHUSDT")]
    h = await replay(tmp_path, frames, symbols=("BTCUSDT",))
    assert sorted(r[4] for r in rows(h, PRICES, "ETHUSDT")) == list(range(100, 106))
    assert sorted(r[4] for r in rows(h, PRICES, "BTCUSDT")) == list(range(100, 106))
    ends = [r for r in rows(h, GAPS, "ETHUSDT") if r[5] == "restart"]
    assert [r[2] for r in ends] == ["ethusdt@aggTrade"]  # its stream ends here, on the record


class Seen:
    """Signal hooks that note the trades they are given."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def on_trade_record(self, t: AggTrade) -> None:
        self.ids.append(t.agg_id)

    def on_trade(self, row: tuple[Any, ...]) -> None:
        self.ids.append(int(row[4]))

    def on_quote(self, b: object, recv_ms: int) -> None: ...
    def on_book_levels(self, d: object, source: str) -> None: ...
    def on_book(self, row: tuple[Any, ...]) -> None: ...


async def feed(h: Harvester, frame: bytes) -> int:
    """As a connection does: journal the frame, then route it. Returns its seq."""
    assert h.journal is not None
    seq = h.journal.append(0, frame)
    await h.router.handle(frame)
    return seq


async def test_the_checkpoint_holds_a_frame_whose_row_a_gate_still_holds(tmp_path: Path) -> None:
    """A stream's first trade waits for the next one to confirm it (time guard, then the
    outlier guard). Until then its row is in no lane; the checkpoint must not pass its frame,
    or the segment holding it could go and a crash lose the row."""
    h = Harvester(make_config(tmp_path, journal=True, symbols=("BTCUSDT",)))
    assert h.journal is not None
    seen = Seen()
    h.router.hooks["BTCUSDT"] = seen
    first = await feed(h, trade("BTCUSDT", 100, T0))  # held: nothing confirms it yet
    assert not h.lanes.total_pending()
    for _ in range(3):  # frames of other streams, whose rows are durable
        h.journal.append(0, b"{}")
    assert h.journal.checkpoint() <= first
    await feed(h, trade("BTCUSDT", 101, T0 + 1))
    last = await feed(h, trade("BTCUSDT", 102, T0 + 2))
    assert h.journal.checkpoint() <= first  # released into the lane, which holds its own frame
    assert sorted(r[4] for r in rows(h, PRICES, "BTCUSDT")) == [100, 101, 102]
    assert sorted(seen.ids) == [100, 101, 102]  # the signals saw the held ones too
    for lane in h.lanes:
        lane.drained()
    assert h.journal.checkpoint() == last + 1  # nothing held


async def test_the_archive_replay_writes_a_trade_once_from_a_frame_and_a_rest_row(
        tmp_path: Path) -> None:
    from trio_harvest.cli.commands import main

    day = tmp_path / "raw" / "date=2026-09-21"
    day.mkdir(parents=True)
    # a break (ids 102..103 missed on the stream, backfilled), then 104 both ways: a REST row
    # of an id a frame brought is not written again
    frames = [trade("BTCUSDT", a, T0 + a) for a in (100, 101, 104, 105)]
    records = [(fmt.FRAME, f) for f in frames] + [
        (fmt.ROW, rest_row("BTCUSDT", a, T0 + a, T0 + 5000)) for a in (102, 103, 104)]
    (day / fmt.segment_name(1)).write_bytes(fmt.MAGIC + fmt.encode(
        [(i + 1, (T0 + 10 * i) * 1_000_000, 0, typ, payload)
         for i, (typ, payload) in enumerate(records)]))
    out = tmp_path / "rebuilt"
    code = await trio.to_thread.run_sync(main, [
        "replay", "--raw-dir", str(tmp_path / "raw"), "--data-dir", str(out),
        "--symbols", "BTCUSDT"])
    assert code == 0
    ids = pl.read_parquet(str(out / "**" / "kind=prices" / "*.parquet"))["agg_id"].to_list()
    assert sorted(ids) == list(range(100, 106)), ids


async def test_a_row_held_for_a_stream_gone_silent_does_not_pin_the_journal_forever(
        tmp_path: Path) -> None:
    """The first trade of a quiet symbol may wait minutes for the next one: its frame keeps
    the journal only for ``GATE_HOLD_MAX_MS``, or a whole-market journal would fill up."""
    from trio_harvest.journal.wiring import GATE_HOLD_MAX_MS

    h = Harvester(make_config(tmp_path, journal=True, symbols=("BTCUSDT",)))
    assert h.journal is not None
    first = await feed(h, trade("BTCUSDT", 100, T0))
    later = h.journal.append(0, b"{}")
    assert h.journal.checkpoint() <= first
    now = h.journal.clock_ns()
    h.journal.clock_ns = lambda: now + (GATE_HOLD_MAX_MS + 1000) * 1_000_000
    assert h.journal.checkpoint() == later + 1
