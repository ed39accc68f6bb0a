"""The derivatives side of the Binance futures venues: the documented examples of
``markPrice@1s``, ``forceOrder`` and REST ``openInterest`` decode into the venue-neutral
records and rows (a value a message does not carry is null), the streams go on USD-M's
``/market`` route, and ``--channels`` says what is harvested (one line for what is not offered).

(The captures in ``../shared/fixtures`` carry no markPrice or forceOrder frame: only the
documented examples are decoded here.)"""

from __future__ import annotations

import json

import pytest

from trio_harvest import venues
from trio_harvest.channels import resolve, stream_plan
from trio_harvest.errors import ConfigError
from trio_harvest.kinds import DERIVATIVES_SCHEMA, LIQUIDATIONS_SCHEMA
from trio_harvest.venues.base import DERIVATIVE, LIQUIDATION, FrameError, derivatives_of
from trio_harvest.venues.binance_usdm.decode import decode_frame
from trio_harvest.venues.rows import derivative_row, liquidation_row

USDM, COINM, SPOT = (venues.get(n) for n in ("binance-usdm", "binance-coinm", "binance-spot"))

# the examples of Binance's documentation (USD-M and COIN-M "Mark Price Stream",
# "Liquidation Order Streams", "Open Interest")
USDM_MARK = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
             "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167",
             "T": 1562306400000}
COINM_MARK_DELIVERY = {"e": "markPriceUpdate", "E": 1596095725000, "s": "BTCUSD_201225",
                       "p": "10934.62615417", "P": "10962.17178236", "i": "10933.62615417",
                       "r": "", "T": 0}
USDM_FORCE = {"e": "forceOrder", "E": 1568014460893, "o": {
    "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910",
    "ap": "9910", "X": "FILLED", "l": "0.014", "z": "0.014", "T": 1568014460893}}
COINM_FORCE = {"e": "forceOrder", "E": 1591154240950, "o": {
    "s": "BTCUSD_200925", "ps": "BTCUSD", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "1",
    "p": "9425.5", "ap": "9496.5", "X": "FILLED", "l": "1", "z": "1", "T": 1591154240949}}
USDM_OI = b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}'
COINM_OI = (b'{"symbol":"BTCUSD_200626","pair":"BTCUSD","openInterest":"15004",'
            b'"contractType":"CURRENT_QUARTER","time":1591261042378}')


def frame(stream: str, data: dict[str, object]) -> str:
    return json.dumps({"stream": stream, "data": data})


def named(schema_names: list[str], row: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(schema_names, row, strict=True))


def test_usdm_mark_price_decodes_every_value_it_carries() -> None:
    env = decode_frame(frame("btcusdt@markPrice@1s", USDM_MARK))
    d = env.data
    assert d.kind == DERIVATIVE and d.trade_ms == 0  # T is the next funding time, not a trade's
    row = named(DERIVATIVES_SCHEMA.names, derivative_row(d, 1562305380007))  # type: ignore[arg-type]
    assert row == {
        "ts_ms": 1562305380000, "event_ms": 1562305380000, "recv_ms": 1562305380007,
        "symbol": "BTCUSDT", "source": "markPrice", "mark_price": 11794.15,
        "index_price": 11784.62659091, "settle_price": 11784.25641265,
        "funding_rate": 0.00038167, "next_funding_ms": 1562306400000, "open_interest": None}


def test_coinm_delivery_mark_price_has_no_funding_null_not_zero() -> None:
    d = COINM.decode(frame("btcusd_201225@markPrice@1s", COINM_MARK_DELIVERY)).data
    row = named(DERIVATIVES_SCHEMA.names, derivative_row(d, 1596095725003))
    assert row["funding_rate"] is None and row["next_funding_ms"] is None
    assert row["mark_price"] == 10934.62615417 and row["settle_price"] == 10962.17178236
    assert row["open_interest"] is None


@pytest.mark.parametrize("venue, data, symbol, avg", [
    (USDM, USDM_FORCE, "BTCUSDT", 9910.0), (COINM, COINM_FORCE, "BTCUSD_200925", 9496.5)])
def test_force_order_decodes_into_a_liquidation_row(venue: venues.Venue, data: dict[str, object],
                                                    symbol: str, avg: float) -> None:
    env = venue.decode(frame(f"{symbol.lower()}@forceOrder", data))
    q = env.data
    assert q.kind == LIQUIDATION and q.symbol == symbol
    row = named(LIQUIDATIONS_SCHEMA.names, liquidation_row(q, q.event_ms + 5))
    assert row["ts_ms"] == data["o"]["T"]  # type: ignore[index]  # the order's own time
    assert row["side"] == "sell" and row["avg_price"] == avg and row["status"] == "FILLED"
    assert row["order_type"] == "LIMIT" and row["time_in_force"] == "IOC"
    assert row["qty"] == row["filled_qty"] and row["price"] > 0  # type: ignore[operator]


def test_a_negative_liquidation_price_is_rejected() -> None:
    bad = {**USDM_FORCE, "o": {**USDM_FORCE["o"], "p": "-1"}}  # type: ignore[dict-item]
    with pytest.raises(FrameError) as err:
        decode_frame(frame("btcusdt@forceOrder", bad))
    assert err.value.category == "rejected"


@pytest.mark.parametrize("venue, body, symbol, oi", [
    (USDM, USDM_OI, "BTCUSDT", 10659.509), (COINM, COINM_OI, "BTCUSD_200626", 15004.0)])
def test_open_interest_answer_decodes(venue: venues.Venue, body: bytes, symbol: str,
                                      oi: float) -> None:
    side = derivatives_of(venue)
    assert side is not None
    req = side.open_interest_request(symbol)
    assert req.path.endswith("/openInterest") and req.params == {"symbol": symbol}
    assert req.weight == 1
    row = named(DERIVATIVES_SCHEMA.names, derivative_row(side.decode_open_interest(body, symbol), 7))
    assert row["open_interest"] == oi and row["source"] == "openInterest"
    assert row["ts_ms"] == json.loads(body)["time"]
    assert all(row[c] is None for c in ("mark_price", "index_price", "settle_price",
                                        "funding_rate", "next_funding_ms"))
    with pytest.raises(ValueError, match="asked for"):
        side.decode_open_interest(body, "ETHUSDT")
    with pytest.raises(ValueError):
        side.decode_open_interest(b'{"openInterest":"-3","symbol":"%s"}' % symbol.encode(), symbol)


def test_usdm_derivative_streams_go_on_the_market_route_coinm_unrouted() -> None:
    both = frozenset({"derivatives", "liquidations"})
    usdm = stream_plan(USDM, ("BTCUSDT",), resolve("", USDM, "partial"), depth_levels=20,
                       depth_speed="100ms", book="partial", book_ticker=True)
    routes = {s.name: s.route for s in usdm}
    assert routes["btcusdt@markPrice@1s"] == routes["btcusdt@forceOrder"] == "market"
    assert routes["btcusdt@aggTrade"] == "market" and routes["btcusdt@bookTicker"] == "public"
    assert USDM.stream_kind("btcusdt@markPrice@1s") == "derivatives"
    assert USDM.stream_kind("btcusdt@forceOrder") == "liquidations"
    side = derivatives_of(COINM)
    assert side is not None
    assert {s.route for s in side.streams(("BTCUSD_PERP",), both)} == {"stream"}
    assert derivatives_of(SPOT) is None


def test_channels_choose_the_streams() -> None:
    def names(text: str, venue: venues.Venue = USDM, book: str = "partial") -> set[str]:
        return {s.name for s in stream_plan(venue, ("BTCUSDT",), resolve(text, venue, book),
                                            depth_levels=20, depth_speed="100ms", book=book,
                                            book_ticker=True)}

    assert names("") == {"btcusdt@aggTrade", "btcusdt@depth20@100ms", "btcusdt@bookTicker",
                         "btcusdt@markPrice@1s", "btcusdt@forceOrder"}
    assert names("derivatives") == {"btcusdt@markPrice@1s"}
    assert names("trades,liquidations") == {"btcusdt@aggTrade", "btcusdt@forceOrder"}
    assert names("book_updates", book="diff") == {"btcusdt@depth@100ms"}
    assert names("", SPOT) == {"btcusdt@aggTrade", "btcusdt@depth20@100ms",
                               "btcusdt@bookTicker"}  # spot: no derivatives by default
    assert resolve("", USDM, "diff") >= {"book_updates", "derivatives"}


@pytest.mark.parametrize("text, venue, book, message", [
    ("derivatives", SPOT, "partial", "binance-spot offers no derivatives"),
    ("trades,liquidations", SPOT, "partial", "binance-spot offers no liquidations"),
    ("book_updates", USDM, "partial", "book_updates needs --book diff"),
    ("trades,funding", USDM, "partial", "'funding' is not one of"),
    (" , ", USDM, "partial", "name at least one"),
])
def test_channels_a_venue_does_not_offer_are_one_line_errors(text: str, venue: venues.Venue,
                                                             book: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        resolve(text, venue, book)
    assert "\n" not in str(err.value)
