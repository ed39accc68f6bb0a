"""Recent-trade sweeps (``repair/sweep.py``) for a venue whose trade ids prove nothing (Bybit):
what the socket lost is written from REST once, an answer that does not reach back to the
previous sweep writes an ``unfillable`` gap and sweeps sooner, a refusal pauses the budget."""

from __future__ import annotations

import json
from typing import Any

from trio_harvest.ingest.restclient import Params, RestResponse
from trio_harvest.kinds import Row
from trio_harvest.repair.sweep import Sweeper
from trio_harvest.venues.bybit.adapter import SPOT
from trio_harvest.venues.bybit.trades import RecentIds


def answer(first: int, n: int) -> bytes:
    """Spot's recent-trade answer of trades ``first .. first+n-1`` (id = time), newest first."""
    rows = [{"execId": str(i), "symbol": "BTCUSDT", "price": "100", "size": "1", "side": "Buy",
             "time": str(i), "isBlockTrade": False, "seq": i} for i in range(first, first + n)]
    return json.dumps({"retCode": 0, "retMsg": "OK",
                       "result": {"category": "spot", "list": rows[::-1]}}).encode()


class Budget:
    def __init__(self) -> None:
        self.paused = 0.0

    async def acquire(self, weight: int) -> None:
        return None

    def pause(self, seconds: float) -> None:
        self.paused = seconds


def sweeper(answers: list[RestResponse]) -> tuple[Sweeper, list[Row], list[Row], Budget]:
    trades: list[Row] = []
    gaps: list[Row] = []
    ids = RecentIds()
    budget = Budget()

    async def put_trade(row: Row) -> None:
        trades.append(row)

    async def put_gap(row: Row) -> None:
        gaps.append(row)

    async def fetch(path: str, params: Params) -> RestResponse:
        assert path == "/v5/market/recent-trade" and params["limit"] == 60
        return answers.pop(0)

    s = Sweeper(["BTCUSDT"], SPOT, admit=lambda sym, tid: ids.admit(tid), put_trade=put_trade,
                put_gap=put_gap, budget=budget, wall_ms=lambda: 99_999, interval=4.0)
    s.fetch = fetch
    for i in range(1000, 1030):  # what the socket delivered: 1000..1029 (1012 was lost)
        if i != 1012:
            ids.admit(str(i))
    return s, trades, gaps, budget


def ok(body: bytes) -> RestResponse:
    return RestResponse(200, {}, body)


async def test_lost_trades_are_written_once_and_a_sweep_that_does_not_reach_back_is_a_gap() -> None:
    s, trades, gaps, budget = sweeper([
        ok(answer(990, 60)),  # 990..1049: a full answer, newer than the run's start (T=0)
        ok(answer(1040, 60)),  # 1040..1099 overlaps the previous newest (1049)
        ok(answer(1300, 60)),  # 1300..1359: more than 60 trades since 1099: a span is lost
        RestResponse(403, {}, b"access too frequent")])
    state: Any = None
    await s.sweep("BTCUSDT", state)
    # the first sweep judges from the run's start (0): full, and its oldest is later: a gap
    assert [g[5] for g in gaps] == ["unfillable"] and gaps[0][3:5] == (0, 990)
    written = [r[4] for r in trades]
    assert 1012 in written and 1005 not in written  # the lost one; a delivered one is not
    assert written == sorted(written) and len(written) == len(set(written))
    n = len(trades)
    await s.sweep("BTCUSDT")
    assert len(gaps) == 1 and len(trades) == n + 50  # 1050..1099 (the socket had none)
    await s.sweep("BTCUSDT")
    assert len(gaps) == 2 and gaps[1][3:5] == (1099, 1300)
    assert "last 60 spot trades" in gaps[1][6] and "cannot be fetched" in gaps[1][6]
    assert s.stats.swept_ms["BTCUSDT"] == 1359
    await s.sweep("BTCUSDT")
    assert s.stats.rate_limited == 1 and budget.paused >= 1.0
    assert s.stats.unfillable == 2
