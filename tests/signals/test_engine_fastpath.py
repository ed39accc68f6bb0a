"""The router's hot path feeds the signal engine decoded messages, not row tuples: the rows it
emits and the seconds it closes must be exactly what the row path gives, on real frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trio_harvest.signals.engine import SignalEngine
from trio_harvest.signals.params import SignalParams
from trio_harvest.venues.binance_usdm.decode import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    decode_frame,
    depth_row,
    ticker_row,
    trade_row,
)

LEVELS = 20


def _messages(fixtures_dir: Path, symbol: str) -> list[Any]:
    out = []
    for line in (fixtures_dir / "binance_usdm_ws_2021-07-22.txt").read_text().splitlines():
        _, sep, payload = line.partition(": ")
        if not sep or not payload.startswith("{"):
            continue
        try:
            msg = decode_frame(payload).data
        except ValueError:
            continue
        if msg.symbol == symbol:
            out.append(msg)
    return out


@pytest.mark.parametrize("book_ticker", [True, False])
def test_message_hooks_emit_what_the_row_hooks_emit(fixtures_dir: Path, book_ticker: bool) -> None:
    msgs = _messages(fixtures_dir, "SUSHIUSDT")
    assert {type(m) for m in msgs} == {AggTrade, BookTicker, DepthUpdate}
    fast_out: list[tuple[str, Any]] = []
    slow_out: list[tuple[str, Any]] = []
    params = SignalParams()
    fast = SignalEngine("SUSHIUSDT", params, LEVELS, lambda k, r: fast_out.append((k, r)),
                        book_ticker=book_ticker)
    slow = SignalEngine("SUSHIUSDT", params, LEVELS, lambda k, r: slow_out.append((k, r)),
                        book_ticker=book_ticker)
    for i, m in enumerate(msgs):
        recv = 1_626_992_741_000 + i
        if isinstance(m, AggTrade):
            fast.on_trade_record(m)
            slow.on_trade(trade_row(m, recv))
        elif isinstance(m, BookTicker):
            fast.on_quote(m, recv)
            slow.on_book(ticker_row(m, recv, LEVELS))
        else:
            fast.on_book_levels(m, "depth20")
            slow.on_book(depth_row(m, recv, LEVELS, "depth20"))
    assert fast_out == slow_out and len(fast_out) == len(msgs)
    upto = max(m.event_ms for m in msgs) // 1000 + 2
    assert fast.close_seconds(upto) == slow.close_seconds(upto)
