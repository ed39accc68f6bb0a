from __future__ import annotations

from trio_harvest.venues.binance_usdm.streams import (
    MARKET,
    PUBLIC,
    combined_url,
    depth_stream_name,
    plan_connections,
    streams_for,
)


def test_streams_go_on_their_routes() -> None:
    streams = streams_for(("BTCUSDT",), depth_levels=20, depth_speed="100ms", book="partial",
                          book_ticker=True)
    routes = {s.name: s.route for s in streams}
    assert routes == {
        "btcusdt@aggTrade": MARKET,
        "btcusdt@depth20@100ms": PUBLIC,
        "btcusdt@bookTicker": PUBLIC,
    }


def test_depth_names() -> None:
    assert depth_stream_name("ETHUSDT", 5, "250ms", "partial") == "ethusdt@depth5"
    assert depth_stream_name("ETHUSDT", 5, "100ms", "diff") == "ethusdt@depth@100ms"


def test_connection_plans_respect_the_stream_limit() -> None:
    symbols = tuple(f"S{i:03d}USDT" for i in range(250))
    streams = streams_for(symbols, depth_levels=20, depth_speed="100ms", book="partial",
                          book_ticker=True)
    plans = plan_connections(streams, per_connection=200)
    assert all(len(p.streams) <= 200 for p in plans)
    assert sum(len(p.streams) for p in plans) == 750
    assert all({s.route for s in p.streams} == {p.route} for p in plans)
    assert [p.route for p in plans] == [MARKET, MARKET, PUBLIC, PUBLIC, PUBLIC]


def test_combined_url() -> None:
    url = combined_url("wss://fstream.binance.com/", PUBLIC, ["a@bookTicker", "b@bookTicker"])
    assert url == "wss://fstream.binance.com/public/stream?streams=a@bookTicker/b@bookTicker"


def test_live_subscription_messages_replies_and_the_url_they_lead_to() -> None:
    import json as _json

    from trio_harvest.venues.binance_usdm.streams import (
        MARKET,
        ConnectionPlan,
        StreamSpec,
        reply_to,
        subscription,
        url_after,
    )

    msg = subscription("SUBSCRIBE", ["ethusdt@aggTrade", "币安人生usdt@aggTrade"], 3)
    assert _json.loads(msg) == {"method": "SUBSCRIBE", "id": 3,
                                "params": ["ethusdt@aggTrade", "币安人生usdt@aggTrade"]}
    assert reply_to('{"result":null,"id":3}') == (3, "")
    assert reply_to(b'{"error":{"code":2,"msg":"Invalid request"},"id":4}')[0] == 4  # type: ignore[index]
    assert reply_to('{"stream":"x","data":{}}') is None and reply_to("not json") is None
    base = "ws://h:1/market/stream?streams=btcusdt@aggTrade/solusdt@aggTrade"
    after = url_after(base, [msg, subscription("UNSUBSCRIBE", ["solusdt@aggTrade"], 4)])
    plan = ConnectionPlan(MARKET, tuple(StreamSpec(n.split("@")[0].upper(), "aggTrade", n) for n in
                                        ("btcusdt@aggTrade", "ethusdt@aggTrade",
                                         "币安人生usdt@aggTrade")))
    assert after == plan.url("ws://h:1")  # the same URL a reconnect of the changed plan opens
    changed = plan.with_streams(remove=frozenset({"ethusdt@aggTrade"}))
    assert [s.name for s in changed.streams] == ["btcusdt@aggTrade", "币安人生usdt@aggTrade"]
