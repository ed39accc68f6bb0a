"""OKX's wire (``venues/okx``): trades as spans of fill ids (the documented examples and the
real capture), several trades in one frame, SWAP sizes in contracts times ``ctVal``, the
subscribe requests (batched) and what the server answers besides data, backfill paging down by
trade id."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import msgspec
import pytest

from trio_harvest.venues import get
from trio_harvest.venues.base import BATCH, QUOTE, TRADE, FrameError
from trio_harvest.venues.okx import adapter
from trio_harvest.venues.okx.wire import OkxTrade

SWAP = get("okx-swap")
SPOT = get("okx-spot")


def _push(channel: str, inst: str, data: list[dict[str, object]], action: str = "") -> str:
    doc: dict[str, object] = {"arg": {"channel": channel, "instId": inst}, "data": data}
    if action:
        doc["action"] = action
    return json.dumps(doc)


def _trade(trade_id: int, count: int, sz: str = "2", inst: str = "BTC-USDT") -> dict[str, object]:
    return {"instId": inst, "tradeId": str(trade_id), "px": "42219.9", "sz": sz,
            "side": "buy", "ts": "1630048897897", "count": str(count), "source": "0",
            "seqId": 1234}


def test_a_trade_covers_its_count_of_fill_ids() -> None:
    """The docs: tradeId 123, count 3 = ids 121..123; 2026 frames: 2832749635 (count 1) then
    2832749645 (count 10) continue each other."""
    t = SPOT.decode(_push("trades", "BTC-USDT", [_trade(130639474, 3)])).data
    assert t.kind == TRADE and (t.first_id, t.last_id, t.agg_id) == (130639472, 130639474,
                                                                    130639474)
    assert t.trade_ms == t.event_ms == 1630048897897 and not t.buyer_maker
    a = SPOT.decode(_push("trades", "BTC-USDT", [_trade(2832749635, 1)])).data
    b = SPOT.decode(_push("trades", "BTC-USDT", [_trade(2832749645, 10)])).data
    assert b.first_id == a.last_id + 1
    row = SPOT.trade_row(b, 5)
    assert row[4] == 2832749645 and row[7:9] == (2832749636, 2832749645)


def test_several_trades_in_one_frame_are_a_batch_in_order() -> None:
    env = SPOT.decode(_push("trades", "BTC-USDT", [_trade(11, 2), _trade(12, 1)]))
    assert env.data.kind == BATCH and env.stream == "trades:BTC-USDT"
    assert [t.agg_id for t in env.data.records] == [11, 12]
    assert SPOT.decode_envelope(_push("trades", "BTC-USDT", [_trade(11, 2)])).data.kind == TRADE


def test_the_capture_trades_follow_each_other(fixtures_dir: Path) -> None:
    """The 2022 capture (one fill per message, no count): BTC-USDT's ids +1 throughout, each
    trade's span (count 1) right after the one before."""
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    for line in (fixtures_dir / "okx_ws_2022-05-13.txt").read_text().splitlines()[1:]:
        _, _, frame = line.partition(": ")
        try:
            env = SPOT.decode(frame)
        except FrameError:
            continue
        if env.data.kind == TRADE and env.data.symbol == "BTC-USDT":
            ids.append(env.data.agg_id)
            spans.append((env.data.first_id, env.data.last_id))
    assert len(ids) == 69 and ids == list(range(ids[0], ids[0] + 69))
    assert all(b[0] == a[1] + 1 for a, b in pairwise(spans))


def test_swap_sizes_are_contracts_times_ct_val() -> None:
    venue = adapter.OkxSwap()  # its own table of contract values
    listed = venue.listing({"code": "0", "data": [
        {"instId": "BTC-USDT-SWAP", "state": "live", "ctVal": "0.01", "listTime": "1"},
        {"instId": "ETH-USDT-SWAP", "state": "live", "ctVal": "0.1", "listTime": "1"}]})
    assert set(listed) == {"BTC-USDT-SWAP", "ETH-USDT-SWAP"}
    t = venue.decode(_push("trades", "BTC-USDT-SWAP", [_trade(7, 1, "25", "BTC-USDT-SWAP")]))
    assert t.data.qty == pytest.approx(0.25)
    b = venue.decode(_push("books", "ETH-USDT-SWAP", [
        {"asks": [["2000.1", "30", "0", "2"]], "bids": [["2000", "5", "0", "1"]], "ts": "2",
         "checksum": 0, "prevSeqId": -1, "seqId": 3}], "snapshot")).data
    assert b.bids == [(2000.0, pytest.approx(0.5))] and b.asks[0][1] == pytest.approx(3.0)
    q = venue.decode(_push("bbo-tbt", "BTC-USDT-SWAP", [
        {"asks": [["100.5", "7", "0", "1"]], "bids": [["100", "3", "0", "1"]], "ts": "9",
         "seqId": 44}])).data
    assert q.kind == QUOTE and q.update_id == 44 and q.bid_qty == pytest.approx(0.03)
    body = json.dumps({"code": "0", "msg": "", "data": [
        _trade(9, 1, "300", "BTC-USDT-SWAP"), _trade(8, 1, "100", "BTC-USDT-SWAP")]}).encode()
    rest = venue.decode_trades(body)
    assert [r.agg_id for r in rest] == [8, 9] and rest[1].qty == pytest.approx(3.0)
    # spot sizes are base currency: the listing gives spot no contract value
    assert SPOT.decode(_push("trades", "BTC-USDT", [_trade(7, 1, "25")])).data.qty == 25.0


def test_frames_that_are_not_data_are_replies_or_refused() -> None:
    for frame in ("pong", b"pong"):
        with pytest.raises(FrameError) as exc:
            SWAP.decode(frame)
        assert exc.value.category == "unexpected" and SWAP.reply_to(frame) == (0, "")
        with pytest.raises(SWAP.bad_frame):
            SWAP.decode_envelope(frame)
    ack = '{"id":"3","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"}}'
    err = '{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}'
    assert SWAP.reply_to(ack) == (3, "") and SWAP.reply_to(err) == (0, "60012: Invalid request")
    with pytest.raises(FrameError) as exc:
        SWAP.decode(ack)
    assert exc.value.category == "unexpected"
    with pytest.raises(FrameError) as exc:
        SWAP.decode(_push("trades", "BTC-USDT-SWAP", [{**_trade(1, 1), "px": "-1"}]))
    assert exc.value.category == "rejected"
    with pytest.raises(FrameError) as exc:
        SWAP.decode(_push("books", "BTC-USDT-SWAP", [{"asks": [["nan", "1", "0", "1"]],
                                                      "bids": [], "ts": "1"}]))
    assert exc.value.category == "rejected"
    assert SWAP.reply_to('{"arg":{"channel":"trades"},"data":[]}') is None


def test_a_connection_subscribes_its_streams_in_batches_on_open() -> None:
    symbols = tuple(f"C{i}-USDT-SWAP" for i in range(40))
    specs = SWAP.streams_for(symbols, depth_levels=20, depth_speed="100ms", book="diff",
                             book_ticker=True)
    assert {s.name.partition(":")[0] for s in specs} == {"trades", "books", "bbo-tbt"}
    [plan, *more] = SWAP.plan_connections(specs, 1000)
    assert len(plan.streams) == SWAP.max_streams_per_connection and more
    url = plan.url(SWAP.default_ws_url)
    assert SWAP.open_url(url) == "wss://ws.okx.com:8443/ws/v5/public"
    messages = SWAP.open_messages(url)
    args = [json.loads(m)["args"] for m in messages]
    assert all(len(a) <= SWAP.subscribe_batch for a in args) and len(messages) == 2
    assert [f"{a['channel']}:{a['instId']}" for batch in args for a in batch] == \
        [s.name for s in plan.streams]
    assert all(json.loads(m)["op"] == "subscribe" for m in messages)
    gone = plan.streams[0].name
    unsub = SWAP.subscription("UNSUBSCRIBE", [gone], 9)
    assert json.loads(unsub) == {"id": "9", "op": "unsubscribe", "args": [
        {"channel": "trades", "instId": "C0-USDT-SWAP"}]}
    after = SWAP.url_after(url, [unsub, SWAP.subscription("SUBSCRIBE", ["trades:X-USDT-SWAP"],
                                                          10)])
    assert "trades:X-USDT-SWAP" in after and gone not in after.partition("#")[2].split("/")
    assert SWAP.keepalive.ping_text == "ping" and SWAP.keepalive.interval < 30


def test_backfill_pages_down_from_the_end_of_the_hole() -> None:
    req = SWAP.trades_request("BTC-USDT-SWAP", 1001, 40)  # ids 1001..1040 missing
    assert req.path == "/api/v5/market/history-trades"
    assert req.params == {"instId": "BTC-USDT-SWAP", "type": 1, "after": 1041, "limit": 100}
    wide = SWAP.trades_request("BTC-USDT-SWAP", 1001, 5000)
    assert wide.params["after"] == 1101  # one page: 100 ids at most
    with pytest.raises(msgspec.DecodeError):
        SWAP.decode_trades(b'{"code":"50011","msg":"Too Many Requests","data":[]}')
    assert SWAP.depth_request("BTC-USDT-SWAP", 1000).params == {"instId": "BTC-USDT-SWAP",
                                                                "sz": 400}


def test_symbols_and_listing() -> None:
    assert SWAP.valid_symbol("BTC-USDT-SWAP") and not SWAP.valid_symbol("BTC-USDT")
    assert SPOT.valid_symbol("BTC-USDT") and not SPOT.valid_symbol("BTC-USDT-SWAP")
    assert SWAP.listing_request().params == {"instType": "SWAP"}
    assert SPOT.listing_request().path == "/api/v5/public/instruments"
    counts = SWAP.trade_counts(json.dumps({"code": "0", "data": [
        {"instId": "BTC-USDT-SWAP", "vol24h": "123.7"}]}))
    assert counts == {"BTC-USDT-SWAP": 123}
    with pytest.raises(ValueError):
        SWAP.trade_counts("[1,")


def test_trades_of_rest_read_like_the_stream() -> None:
    assert adapter.rest.RestTrade is OkxTrade
