"""The simulator's OKX v5 (``sim/okx_*.py``): what a socket answers (acks per arg, error events,
pong, the 480 requests an hour), trades and books on the wire (spans of fill ids, the seqId
chain through a reset), REST (instruments with ctVal, history-trades paging down, books at the
stream's seqId, the per-2-s limit)."""

from __future__ import annotations

import json

import msgspec

from trio_harvest.sim.events import AggTrade, BookDepth
from trio_harvest.sim.market import Market
from trio_harvest.sim.okx_control import REQUESTS_PER_HOUR, handle_okx, request_budget
from trio_harvest.sim.okx_rest import OkxRestApi
from trio_harvest.sim.okx_wire import OkxSymbolWire, stream_kind
from trio_harvest.sim.venue import profile
from trio_harvest.venues import get
from trio_harvest.venues.okx.adapter import OkxSwap

SWAP = profile("okx-swap")


def test_a_socket_acks_each_arg_and_refuses_what_does_not_exist() -> None:
    budget = request_budget()
    msg = json.dumps({"id": "4", "op": "subscribe", "args": [
        {"channel": "trades", "instId": "BTC-USDT-SWAP"},
        {"channel": "books", "instId": "NOPE-USDT-SWAP"},
        {"channel": "books-l2-tbt", "instId": "BTC-USDT-SWAP"}]})
    answer = handle_okx(msg, "c1", budget, 0.0, lambda inst: inst == "BTC-USDT-SWAP")
    assert answer.subscribe == ("trades:BTC-USDT-SWAP",) and answer.refused
    replies = [json.loads(r) for r in answer.replies]
    assert replies[0] == {"id": "4", "event": "subscribe", "connId": "c1",
                          "arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}}
    assert [r.get("code") for r in replies[1:]] == ["60018", "60018"]
    venue = get("okx-swap")  # the harvester reads them as replies, one of them refused
    assert venue.reply_to(answer.replies[0]) == (4, "")
    assert venue.reply_to(answer.replies[1])[1].startswith("60018")  # type: ignore[index]
    assert handle_okx("ping", "c1", budget, 0.0, lambda i: True).replies == ("pong",)
    bad = handle_okx('{"op":"login"}', "c1", budget, 0.0, lambda i: True)
    assert bad.refused and json.loads(bad.replies[0])["code"] == "60012"


def test_over_480_requests_an_hour_a_connection_is_refused() -> None:
    budget = request_budget()
    msg = json.dumps({"op": "unsubscribe", "args": [{"channel": "trades", "instId": "X-Y"}]})
    answers = [handle_okx(msg, "c", budget, float(i), lambda i: True)
               for i in range(REQUESTS_PER_HOUR + 1)]
    assert not any(a.refused for a in answers[:-1])
    assert answers[-1].refused and json.loads(answers[-1].replies[0])["code"] == "60014"
    later = handle_okx(msg, "c", budget, 3600.0 + REQUESTS_PER_HOUR, lambda i: True)
    assert not later.refused  # the hour went by


def test_trades_and_books_on_the_wire_read_back_by_the_adapter() -> None:
    wire = OkxSymbolWire(SWAP.spec("BTC-USDT-SWAP"), contracts=True, reset=1.0, seed=3)
    venue = OkxSwap()  # no contract values read: sizes as sent
    t = venue.decode(wire.trade(AggTrade("BTC-USDT-SWAP", 9, 1_000_000, 7, 101, 104,
                                         1_700_000_000_000, 1_700_000_000_001, True))).data
    assert (t.first_id, t.agg_id, t.buyer_maker, t.qty) == (101, 104, True, 7.0)
    u = 10**11
    d1 = BookDepth("BTC-USDT-SWAP", 100, True, u + 11, u + 20, u + 10, ((1_000_000, 3),), (),
                   1, 2)
    d2 = BookDepth("BTC-USDT-SWAP", 100, True, u + 21, u + 30, u + 20, (), ((1_000_001, 4),),
                   3, 4)
    b1 = venue.decode(wire.books(d1)).data  # reset=1.0: every update restarts seqId
    b2 = venue.decode(wire.books(d2)).data
    assert b1.prev_update_id == u + 10 and b1.update_id < b1.prev_update_id  # the reset
    assert b2.prev_update_id == b1.update_id  # the chain goes on from the lower seqId
    assert wire.resets == 2 and stream_kind("books:BTC-USDT-SWAP") and \
        stream_kind("books:btc") is None


def _api(per_minute: int | None = None) -> tuple[OkxRestApi, Market, dict[str, OkxSymbolWire]]:
    market = Market(("BTC-USDT-SWAP",), rate=2000.0, seed=2, spec=SWAP.spec)
    now = [1_700_000_000_000]
    market.step(now[0])
    for _ in range(40):
        now[0] += 50
        market.step(now[0])
    wires = {"BTC-USDT-SWAP": OkxSymbolWire(SWAP.spec("BTC-USDT-SWAP"), contracts=True)}
    return OkxRestApi(market, lambda: now[0], wires, "SWAP", per_minute), market, wires


def test_rest_instruments_history_and_books() -> None:
    api, market, wires = _api()
    doc = msgspec.json.decode(api.handle("GET", "/api/v5/public/instruments?instType=SWAP").body)
    [inst] = doc["data"]
    assert inst["instId"] == "BTC-USDT-SWAP" and inst["state"] == "live"
    assert float(inst["ctVal"]) == float(SWAP.spec("BTC-USDT-SWAP").qty_str(1))
    tape = market["BTC-USDT-SWAP"].tape
    trades = tape.since(tape.first_id or 0, 10**6)
    assert len(trades) > 20
    after = trades[-5].last_id  # the page below it: newest first
    page = msgspec.json.decode(api.handle(
        "GET", f"/api/v5/market/history-trades?instId=BTC-USDT-SWAP&type=1&after={after}"
               "&limit=3").body)["data"]
    assert [int(r["tradeId"]) for r in page] == [t.last_id for t in trades[-6:-9:-1]]
    venue = get("okx-swap")
    rows = venue.decode_trades(api.handle(
        "GET", f"/api/v5/market/history-trades?instId=BTC-USDT-SWAP&type=1&after={after}"
               "&limit=3").body)
    assert [r.agg_id for r in rows] == [t.last_id for t in trades[-8:-5]]  # ascending
    assert all(r.first_id == t.first_id for r, t in zip(rows, trades[-8:-5], strict=True))
    books = msgspec.json.decode(api.handle(
        "GET", "/api/v5/market/books?instId=BTC-USDT-SWAP&sz=5").body)
    snap = venue.parse_snapshot(books, "BTC-USDT-SWAP")
    assert snap.last_update_id == wires["BTC-USDT-SWAP"].seq(
        market["BTC-USDT-SWAP"].snapshot(1).last_update_id)
    assert len(snap.bids) == 5 and snap.bids[0][0] < snap.asks[0][0]
    missing = api.handle("GET", "/api/v5/market/books?instId=NOPE-USDT-SWAP")
    assert missing.status == 400 and b"51001" in missing.body


def test_rest_over_its_limit_answers_429_50011() -> None:
    api, _, _ = _api()
    codes = [api.handle("GET", "/api/v5/market/history-trades?instId=BTC-USDT-SWAP").status
             for _ in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429
    limited = api.handle("GET", "/api/v5/market/history-trades?instId=BTC-USDT-SWAP")
    assert b"50011" in limited.body and api.stats.rejected_429 == 2
    assert api.handle("GET", "/api/v5/market/books?instId=BTC-USDT-SWAP").status == 200


def test_a_snapshot_in_place_of_a_diff_is_the_book_as_of_that_diff() -> None:
    # one step of the market can make several 100 ms diffs (a loaded machine steps less
    # often); the hub observes them all before it publishes the first, and a new subscriber's
    # snapshot in place of that first one must not hold the changes of the next
    from trio_harvest.sim.events import BookSnapshot

    wire = OkxSymbolWire(SWAP.spec("BTC-USDT-SWAP"), contracts=True)
    wire.seed(BookSnapshot("BTC-USDT-SWAP", 100, ((999, 1),), ((1001, 1),), 0))
    first = BookDepth("BTC-USDT-SWAP", 100, True, 101, 102, 100, (), ((1001, 5),), 0, 1)
    second = BookDepth("BTC-USDT-SWAP", 100, True, 103, 104, 102, ((999, 0),), ((1001, 7),),
                       0, 2)
    for ev in (first, second):
        wire.observe(ev)
    snap = json.loads(wire.snapshot(first))["data"][0]
    assert snap["seqId"] == 102
    assert [a[1] for a in snap["asks"]] == ["5"] and len(snap["bids"]) == 1
    snap = json.loads(wire.snapshot(second))["data"][0]
    assert snap["seqId"] == 104 and [a[1] for a in snap["asks"]] == ["7"] and not snap["bids"]
