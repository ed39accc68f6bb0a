"""Bybit v5 (``bybit-linear``, ``bybit-spot``): what the conformance suite does not cover, with
frames made from Bybit's documented examples: decode details, the ``u`` chain and its resets,
control replies, subscribe batching, recent-trade backfill and its ``unfillable`` decision,
listing pages, trade id deduplication and the paced per-topic resubscribe (no storm)."""

from __future__ import annotations

import functools
import itertools
import json
import math
import operator
from typing import Any

import pytest

from trio_harvest import venues
from trio_harvest.kinds import PRICES_SCHEMA
from trio_harvest.venues.base import (
    APPLIED,
    BATCH,
    BREAK,
    BUFFERED,
    DROPPED,
    QUOTE,
    SNAPSHOT,
    STALE_SNAPSHOT,
    FrameError,
)
from trio_harvest.venues.bybit import backfill, control, facts, listing, resubscribe, trades, wire
from trio_harvest.venues.bybit.adapter import LINEAR, SPOT, book_depth
from trio_harvest.venues.bybit.book import LocalBook

DOC_TRADE = ('{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{'
             '"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",'
             '"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,'
             '"RPI":false,"seq":1783284617}]}')


def _trade(i: str, t: int = 1, side: str = "Sell") -> dict[str, Any]:
    return {"T": t, "s": "BTCUSDT", "S": side, "v": "0.5", "p": "100.5", "i": i, "seq": 3}


def _book(kind: str, u: int, b: list[list[str]] | None = None,
          a: list[list[str]] | None = None, depth: int = 50, cts: int = 5) -> str:
    return json.dumps({"topic": f"orderbook.{depth}.BTCUSDT", "type": kind, "ts": 10 + u,
                       "data": {"s": "BTCUSDT", "b": b or [], "a": a or [], "u": u,
                                "seq": 99}, "cts": cts})


def test_both_categories_are_registered_apart() -> None:
    lin, spot = venues.get("bybit-linear"), venues.get("bybit-spot")
    assert lin is LINEAR and spot is SPOT
    plan_l = lin.plan_connections(lin.streams_for(("BTCUSDT",), depth_levels=20,
                                                  depth_speed="", book="diff",
                                                  book_ticker=True), 10)[0]
    plan_s = spot.plan_connections(spot.streams_for(("BTCUSDT",), depth_levels=20,
                                                    depth_speed="", book="diff",
                                                    book_ticker=True), 10)[0]
    url_l, url_s = plan_l.url(lin.default_ws_url), plan_s.url(spot.default_ws_url)
    assert lin.open_url(url_l) == "wss://stream.bybit.com/v5/public/linear"
    assert spot.open_url(url_s) == "wss://stream.bybit.com/v5/public/spot"
    assert lin.stream_symbols(url_l) == spot.stream_symbols(url_s) == ["BTCUSDT"]
    unsub = lin.subscription("UNSUBSCRIBE", ["orderbook.1.BTCUSDT"], 3)
    assert lin.stream_symbols(lin.url_after(url_l, [unsub])) == ["BTCUSDT"]
    assert "orderbook.1.BTCUSDT" not in lin.url_after(url_l, [unsub])
    assert [s.name for s in plan_l.streams] == [s.name for s in plan_s.streams] == [
        "publicTrade.BTCUSDT", "orderbook.50.BTCUSDT", "orderbook.1.BTCUSDT"]
    assert lin.trades_request("BTCUSDT", 0, 1).params["category"] == "linear"
    assert spot.trades_request("BTCUSDT", 0, 1).params["category"] == "spot"


def test_the_documented_trade_decodes_linear_ids_are_not_integers() -> None:
    f = LINEAR.decode(DOC_TRADE)
    t = f.data
    assert f.stream == "publicTrade.BTCUSDT" and t.kind == 1
    assert t.trade_id == "20f43950-d8dd-5b31-9112-a178eb6023af"
    assert t.agg_id == t.first_id == t.last_id == 0x20f43950d8dd5b31 >> 1  # a key, not a count
    assert (t.price, t.qty, t.trade_ms, t.event_ms) == (16578.5, 0.001, 1672304486865,
                                                        1672304486868)
    assert t.buyer_maker is False  # the taker bought
    assert LINEAR.trade_continuity == "none" and SPOT.trade_continuity == "none"
    # the UUID itself is kept: the ``prices`` column ``trade_id`` (the key alone loses it)
    assert t.text_id == t.trade_id
    row = LINEAR.trade_row(t, 9)
    assert dict(zip(PRICES_SCHEMA.names, row, strict=True))["trade_id"] == t.trade_id


def test_a_frame_carries_many_trades_spot_ids_are_numeric() -> None:
    frame = json.dumps({"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 9, "data": [
        _trade("2290000001190010739"), _trade("2290000001190010740", side="Buy")]})
    f = SPOT.decode(frame)
    batch = f.data
    assert batch.kind == BATCH and batch.symbol == "BTCUSDT"
    assert [t.agg_id for t in batch.records] == [2290000001190010739, 2290000001190010740]
    assert [SPOT.trade_row(t, 9)[-1] for t in batch.records] == [None, None]  # agg_id is the id
    linear = LINEAR.decode(frame.replace("2290000001190010739", "20f43950-d8dd-5b31-9112-a178eb6"
                                         "023af").replace("2290000001190010740", "20f43950-d8dd"
                                                          "-5b31-9112-a178eb6023b0")).data
    assert [t.text_id for t in linear.records] == ["20f43950-d8dd-5b31-9112-a178eb6023af",
                                                   "20f43950-d8dd-5b31-9112-a178eb6023b0"]
    assert batch.records[0].buyer_maker and not batch.records[1].buyer_maker
    with pytest.raises(FrameError) as bad:  # spot ids must be integers
        SPOT.decode(frame.replace("2290000001190010740", "x-1"))
    assert bad.value.category == "unexpected"
    with pytest.raises(FrameError) as neg:
        LINEAR.decode(frame.replace('"100.5"', '"-1"'))
    assert neg.value.category == "rejected"


def test_books_decode_snapshot_delta_and_orderbook_1_as_quotes() -> None:
    snap = LINEAR.decode(_book("snapshot", 53935309, [["16578.50", "1"]], [["16579", "2"]])).data
    assert snap.snapshot and snap.prev_update_id == -1 and snap.resets
    delta = LINEAR.decode(_book("delta", 53935310, [["16578.50", "0"]])).data
    assert not delta.snapshot and delta.prev_update_id == 53935309 and delta.trade_ms == 5
    top = LINEAR.decode(_book("snapshot", 72212457, [["1", "2"]], [], depth=1)).data
    assert top.kind == QUOTE and (top.bid, top.bid_qty, top.ask, top.ask_qty) == (1, 2, 0, 0)
    with pytest.raises(FrameError):
        LINEAR.decode(_book("weird", 5))
    for reply in ('{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}',
                  '{"success":true,"ret_msg":"","conn_id":"x","req_id":"3","op":"subscribe"}'):
        with pytest.raises(LINEAR.bad_frame):
            LINEAR.decode_envelope(reply)


def test_control_replies_and_the_ping() -> None:
    assert control.reply_to('{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}') \
        == (-1, "")
    refused = ('{"success":false,"ret_msg":"error:handler not found,topic:orderbook.500.BTCUSDT",'
               '"conn_id":"x","req_id":"12","op":"subscribe"}')
    rid, error = control.reply_to(refused) or (0, "")
    assert rid == 12 and "handler not found" in error
    assert control.reply_to(_book("delta", 2)) is None
    assert control.reply_to("pong") is None
    k = LINEAR.keepalive
    assert not k.server_pings and json.loads(k.ping_text or "") == {"op": "ping"}
    assert k.interval == 20.0


def test_subscribe_requests_carry_at_most_10_topics_on_spot() -> None:
    topics = [f"publicTrade.S{i}USDT" for i in range(25)]
    spot = SPOT.subscriptions("SUBSCRIBE", topics, 1)
    assert [len(json.loads(m)["args"]) for m in spot] == [10, 10, 5]
    assert [json.loads(m)["req_id"] for m in spot] == ["1", "2", "3"]
    assert functools.reduce(operator.iadd, (json.loads(m)["args"] for m in spot), []) == topics
    assert len(LINEAR.subscriptions("SUBSCRIBE", topics, 1)) == 1
    with pytest.raises(ValueError):
        SPOT.subscription("SUBSCRIBE", topics, 1)
    plan = SPOT.plan_connections(SPOT.streams_for(tuple(f"S{i}USDT" for i in range(300)),
                                                  depth_levels=200, depth_speed="",
                                                  book="diff", book_ticker=True), 10_000)
    for p in plan:  # every connection's args stay under 21,000 characters
        assert control.fits(s.name for s in p.streams)
        opened = SPOT.open_messages(p.url(SPOT.default_ws_url))
        assert all(len(json.loads(m)["args"]) <= 10 for m in opened)
        assert sum(len(json.loads(m)["args"]) for m in opened) == len(p.streams)
    assert SPOT.subscribe_batch == 10 and LINEAR.subscribe_batch == 0


def test_book_depths_served() -> None:
    assert [book_depth(n) for n in (5, 20, 50, 100, 200, 500, 5000)] == [
        50, 50, 50, 200, 200, 1000, 1000]
    assert facts.depth_interval_ms(1) == 10
    with pytest.raises(ValueError):
        facts.depth_interval_ms(500)  # removed in 2025


def _ev(kind: str, u: int, **kw: Any) -> Any:
    return LINEAR.decode(_book(kind, u, **kw)).data


def test_the_u_chain_applies_drops_duplicates_and_breaks() -> None:
    book = LocalBook("BTCUSDT")
    assert book.on_event(_ev("delta", 7)) == BUFFERED  # no snapshot yet
    assert book.on_event(_ev("snapshot", 10, b=[["100", "1"], ["99", "2"]],
                             a=[["101", "1"]])) == SNAPSHOT
    assert book.live
    assert book.on_event(_ev("delta", 11, b=[["100", "0"]], a=[["100.5", "3"]])) == APPLIED
    assert book.top(1) == ([(99.0, 2.0)], [(100.5, 3.0)])
    assert book.on_event(_ev("delta", 11, b=[["98", "5"]])) == DROPPED  # a duplicate
    assert book.on_event(_ev("delta", 13, cts=77)) == BREAK
    assert not book.live and book.stats.breaks == 1
    brk = book.last_break
    assert brk is not None and (brk.expected, brk.got, brk.end_ms) == (12, 13, 77)
    assert brk.rule == "bybit u" and "expected u=12, got u=13" in brk.detail
    assert LINEAR.follows(11, _ev("delta", 12)) and not LINEAR.follows(11, _ev("delta", 13))


def test_a_new_snapshot_or_u_1_resets_the_book() -> None:
    book = LocalBook("BTCUSDT")
    book.on_event(_ev("snapshot", 10, b=[["100", "1"]], a=[["101", "1"]]))
    book.on_event(_ev("delta", 11, b=[["99", "1"]]))
    # the venue's own problem: a new snapshot, its u unrelated to the chain
    assert book.on_event(_ev("snapshot", 500, b=[["90", "4"]], a=[["91", "4"]])) == SNAPSHOT
    assert book.top(5) == ([(90.0, 4.0)], [(91.0, 4.0)]) and book.resets == 1
    assert book.on_event(_ev("delta", 501, a=[["91", "0"]])) == APPLIED
    # a service restart: u == 1 overwrites the book, and the chain starts from it
    assert book.on_event(_ev("delta", 1, b=[["80", "1"]], a=[["81", "1"]])) == SNAPSHOT
    assert book.top(5) == ([(80.0, 1.0)], [(81.0, 1.0)]) and book.resets == 2
    assert book.on_event(_ev("delta", 2)) == APPLIED and book.stats.breaks == 0
    assert LINEAR.follows(501, _ev("delta", 1)) and LINEAR.follows(7, _ev("snapshot", 3))


def test_a_rest_snapshot_is_bridged_by_u_plus_1() -> None:
    body = {"retCode": 0, "result": {"s": "BTCUSDT", "b": [["100", "1"]], "a": [["101", "1"]],
                                     "ts": 1, "u": 20, "seq": 1, "cts": 1}}
    snap = LINEAR.parse_snapshot(body)
    book = LocalBook("BTCUSDT")
    for u in (19, 20, 21):
        book.on_event(_ev("delta", u))
    replay: list[Any] = book.apply_snapshot(snap) or []
    assert [book.on_event(ev, r) for ev, r in replay] == [DROPPED, DROPPED, APPLIED]
    assert book.live
    stale = LocalBook("BTCUSDT")
    stale.apply_snapshot(snap)
    assert stale.on_event(_ev("delta", 25)) == STALE_SNAPSHOT
    with pytest.raises(ValueError):
        LINEAR.parse_snapshot({"retCode": 10001, "retMsg": "params error", "result": {}})


def _rest(n: int, newest_ms: int, prefix: str = "id") -> list[wire.RestTrade]:
    rows = [{"execId": f"{prefix}{k}", "symbol": "BTCUSDT", "price": "100", "size": "1",
             "side": "Buy", "time": str(newest_ms - (n - 1 - k)), "isBlockTrade": False,
             "seq": k} for k in range(n)]
    body = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear",
                                                      "list": rows[::-1]}}
    return wire.decode_recent_trades(json.dumps(body).encode())


def test_recent_trade_backfill_fills_what_it_reaches_and_says_unfillable_otherwise() -> None:
    req = LINEAR.trades_request("BTCUSDT", 0, 5000)
    assert req.path == "/v5/market/recent-trade" and req.params["limit"] == 1000
    assert SPOT.trades_request("BTCUSDT", 0, 5000).params["limit"] == 60
    answer = _rest(1000, newest_ms=10_000)  # times 9001..10000
    # the last trade seen before the hole is in the answer: everything after it fills it
    got = LINEAR.fill(answer, last_id="id900", start_ms=9901, end_ms=10_000)
    assert got.complete and [t.trade_id for t in got.rows][:2] == ["id901", "id902"]
    assert len(got.rows) == 99
    # the hole started long before the oldest trade the venue still serves
    old = LINEAR.fill(answer, last_id="gone", start_ms=5000, end_ms=10_000)
    assert not old.complete and old.unfillable == (5000, 9001) and len(old.rows) == 1000
    assert "last 1000 linear trades" in old.detail and "cannot be fetched" in old.detail
    assert backfill.UNFILLABLE == "unfillable"
    # a short answer is everything the venue has: nothing older exists to miss
    short = SPOT.fill(_rest(12, newest_ms=50), last_id=None, start_ms=45, end_ms=60)
    assert short.complete and [t.trade_ms for t in short.rows] == [45, 46, 47, 48, 49, 50]
    full_spot = SPOT.fill(_rest(60, newest_ms=1000), last_id="x", start_ms=100, end_ms=1000)
    assert full_spot.unfillable == (100, 941) and "last 60 spot trades" in full_spot.detail
    assert LINEAR.decode_trades(b"[]") == []
    with pytest.raises(ValueError):
        LINEAR.decode_trades(b'{"retCode":10006,"retMsg":"Too many visits!","result":{}}')
    row = SPOT.rest_trade_row("BTCUSDT", _rest(1, 5, prefix="")[0], 9)
    assert row[3:5] == ("BTCUSDT", 0) and row[2] == 9 and row[-1] is None
    uuid = "20f43950-d8dd-5b31-9112-a178eb6023af"
    doc = json.loads(json.dumps({"retCode": 0, "result": {"list": [{
        "execId": uuid, "symbol": "BTCUSDT", "price": "1", "size": "1", "side": "Buy",
        "time": "5"}]}}))
    lin = LINEAR.decode_trades(json.dumps(doc).encode())[0]
    lin_row = LINEAR.rest_trade_row("BTCUSDT", lin, 9)
    assert lin_row[4] == LINEAR.decode(DOC_TRADE).data.agg_id and lin_row[-1] == uuid
    assert len(lin_row) == len(row) == len(PRICES_SCHEMA.columns)


def test_trade_ids_are_deduplicated_never_chained() -> None:
    ids = trades.RecentIds(capacity=3)
    assert [ids.admit(x) for x in ("a", "b", "a", "c", "d")] == [True, True, False, True, True]
    assert "a" not in ids and len(ids) == 3 and ids.duplicates == 1
    assert LINEAR.recent_ids().capacity > facts.LINEAR.recent_trades
    steps = trades.IdSteps()
    for i in (5, 6, 7, 9):
        steps.observe(i)
    assert (steps.plus_one, steps.other, steps.contiguous_so_far) == (2, 1, False)


def _page(symbols: list[str], cursor: str) -> dict[str, Any]:
    return {"retCode": 0, "result": {"category": "linear", "nextPageCursor": cursor, "list": [
        {"symbol": s, "status": "Trading", "launchTime": "1585526400000",
         "deliveryTime": "0"} for s in symbols]}}


def test_the_linear_listing_pages_with_its_cursor() -> None:
    names = [f"C{i}USDT" for i in range(1200)]
    pages = {"": _page(names[:500], "p2"), "p2": _page(names[500:1000], "p3"),
             "p3": _page(names[1000:], "")}
    req = LINEAR.listing_request()
    assert req.path == "/v5/market/instruments-info" and req.params["category"] == "linear"
    assert req.params["limit"] == 1000 and "cursor" not in req.params
    seen: dict[str, Any] = {}
    requests = 0
    next_req: Any = req
    while next_req is not None:
        requests += 1
        doc = pages[str(next_req.params.get("cursor", ""))]
        seen.update(LINEAR.listing(doc))
        next_req = LINEAR.next_listing_request(doc)
    assert requests == 3 and list(seen) == names
    assert seen["C0USDT"].status == LINEAR.trading and seen["C0USDT"].onboard_ms > 0
    assert listing.page({"retCode": 10001, "result": None}) == ({}, "")
    for good in ("BTCUSDT", "BTCUSDT-21FEB25", "BTCPERP", "BTC-24MAR23", "1000PEPEUSDT"):
        assert LINEAR.valid_symbol(good)
    for bad in ("btcusdt", "", "BTC USDT", "BTC.USDT"):
        assert not LINEAR.valid_symbol(bad)


@pytest.mark.parametrize("venue", [LINEAR, SPOT], ids=lambda v: v.name)
def test_200_books_breaking_at_once_cause_no_resubscribe_storm(venue: Any) -> None:
    """200 topics break together and keep breaking (their old deltas still come) until each
    one's subscribe is sent: each is resubscribed once, in requests of at most the category's
    args, at most one client message per pace interval."""
    cat = venue.category
    res = venue.resubscriber()
    topics = [f"orderbook.50.S{i}USDT" for i in range(200)]
    broken = set(topics)
    now = 0.0
    sent: list[tuple[float, str]] = []
    reset: list[str] = []
    while now < 120.0:
        for topic in broken:
            res.broke(topic, now)
        due = res.due(now)
        reset += due.topics
        for message in due.messages:
            sent.append((now, message))
            op, args = control.topics_of(message)
            if op == control.SUBSCRIBE:
                for topic in args:  # its snapshot arrives at once
                    res.recovered(topic, now)
                    broken.discard(topic)
        now = round(now + 0.05, 2)
    per = cat.args_per_request
    batches = math.ceil(200 / min(per, 200))
    assert not broken and len(sent) == 2 * batches == res.stats.requests
    assert sorted(reset) == sorted(topics)  # each topic resubscribed exactly once
    subscribed = [a for _, m in sent for a in control.topics_of(m)[1]
                  if control.topics_of(m)[0] == control.SUBSCRIBE]
    assert sorted(subscribed) == sorted(topics)
    assert all(len(control.topics_of(m)[1]) <= per for _, m in sent)
    assert all(control.fits(control.topics_of(m)[1]) for _, m in sent)
    _within_pace([t for t, _ in sent], cat.messages_per_second)
    assert res.stats.coalesced > 200


def _within_pace(times: list[float], per_second: int) -> None:
    assert all(b - a >= 1.0 / per_second - 1e-9 for a, b in itertools.pairwise(times))
    # over any one second, no more client messages than the category's pace allows
    assert max((sum(1 for t in times if s <= t < s + 1.0 - 1e-6) for s in times), default=0) \
        <= per_second


def test_books_that_break_again_after_every_recovery_cost_ever_fewer_requests() -> None:
    """The worst case: all 200 books break again the moment their snapshot lands, for an
    hour. The per-topic cooldown doubles (5 s up to 300 s), so requests thin out instead of
    repeating at the pace limit."""
    res = SPOT.resubscriber()
    topics = [f"orderbook.50.S{i}USDT" for i in range(200)]
    sent: list[float] = []
    for topic in topics:
        res.broke(topic, 0.0)
    now = 0.0
    while now < 3600.0:
        due = res.due(now)
        for message in due.messages:
            sent.append(now)
            op, args = control.topics_of(message)
            if op == control.SUBSCRIBE:
                for topic in args:
                    res.recovered(topic, now)
                    res.broke(topic, now)  # and breaks again at once
        nxt = res.next_at()
        assert nxt is not None and nxt > now  # nothing more is due now
        now = nxt
    _within_pace(sent, SPOT.messages_per_second)
    # per topic: 5+10+…+160 s, then every 300 s: about 17 resubscribes an hour, not 3600 / 5
    per_topic = res.stats.topics / 200
    assert 10 <= per_topic <= 20, per_topic
    late = [t for t in sent if t >= 1800.0]
    assert len(late) <= 2 * 20 * (1800 / 300 + 1)  # 20 requests of 10 per round, 300 s apart


def test_a_resubscribe_without_its_snapshot_is_retried_after_the_timeout() -> None:
    res = resubscribe.Resubscriber(facts.SPOT, timeout=30.0, cooldown=5.0)
    res.broke("orderbook.50.BTCUSDT", 0.0)
    assert res.due(0.0).topics == ["orderbook.50.BTCUSDT"]
    assert len(res.due(1.0).messages) == 1  # the subscribe
    res.broke("orderbook.50.BTCUSDT", 10.0)  # in flight: coalesced
    assert res.waiting == 0
    res.broke("orderbook.50.BTCUSDT", 40.0)  # no snapshot within 30 s: retried
    assert res.stats.timeouts == 1 and res.waiting == 1
    assert res.next_at() == 5.0  # its cooldown (5 s after t=0) has passed: due now
    assert res.due(40.0).topics == ["orderbook.50.BTCUSDT"]
    res.forget("orderbook.50.BTCUSDT")
    assert res.next_at() is None
