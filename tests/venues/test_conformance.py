"""The venue conformance suite: every registered venue, tested directly (no trio, no I/O) with
real frames of its capture in ``shared/fixtures``: decoding into records, the stream names and
routes of its connection plan, the book sequencing rule, the trade continuity rule, backfill
paging and limits, keepalive, the listing and the symbol syntax.

A new venue registers in ``trio_harvest.venues`` and adds its capture and a listing sample here
(``CAPTURES``, ``LISTINGS``); every test then runs for it too. A venue with no capture beside the
project uses frames made from its documented examples (``frames/``, written by a script beside
this file, e.g. ``bybit_frames.py``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from trio_harvest import venues
from trio_harvest.venues.base import (
    APPLIED,
    BATCH,
    BOOK,
    CONTIGUOUS,
    DEPTH,
    NEVER_MS,
    NO_CONTINUITY,
    QUOTE,
    QUOTES,
    SNAPSHOT,
    SPANS,
    TRADE,
    TRADES,
    BookLevels,
    FrameError,
    LocalBook,
    Quote,
    Trade,
    Venue,
)

# venue -> (websocket capture, REST depth snapshots or None) in shared/fixtures
CAPTURES: dict[str, tuple[str, str | None]] = {
    "binance-usdm": ("binance_usdm_ws_2021-07-22.txt", "binance_usdm_rest_2021-07-22.txt"),
    "binance-spot": ("binance_spot_ws_2021-10-12.txt", "binance_spot_rest_2021-10-12.txt"),
    "binance-coinm": ("binance_coinm_ws_2021-07-22.txt", "binance_coinm_rest_2021-07-22.txt"),
    "bybit-linear": ("bybit_linear_ws.txt", "bybit_linear_rest.txt"),
    "bybit-spot": ("bybit_spot_ws.txt", "bybit_spot_rest.txt"),
    # one OKX socket carries every instType: each venue reads its own instruments of it
    "okx-swap": ("okx_ws_2022-05-13.txt", None),
    "okx-spot": ("okx_ws_2022-05-13.txt", None),
}
# captures that hold other venues' instruments too (only the venue's own are read)
SHARED_CAPTURES = {"okx-swap", "okx-spot"}
# captures that predate their venue's book sequence fields (OKX 2022: no seqId/prevSeqId) and
# hold no REST snapshot: their book rule is tested in the venue's own tests
# (tests/venues/test_okx_book.py: documented examples, and the capture's checksums)
UNSEQUENCED = {"okx-swap", "okx-spot"}
# venues whose trade backfill pages down from a newer id (OKX ``after``), not up from one
PAGES_DOWN = {"okx-swap", "okx-spot"}
# venue -> an empty trades answer, where it is not ``[]``
EMPTY_TRADES = {"okx-swap": b'{"code":"0","msg":"","data":[]}',
                "okx-spot": b'{"code":"0","msg":"","data":[]}'}
# venues whose REST answers report no used weight
NO_WEIGHT_HEADER = {"okx-swap", "okx-spot", "bybit-linear", "bybit-spot"}
# venue -> its answer to a subscribe request of id 7, as the venue sends it (Binance's by default)
ACKS: dict[str, str] = {
    "bybit-linear": json.dumps({"success": True, "ret_msg": "", "conn_id": "c1",
                                "req_id": "7", "op": "subscribe"}),
    "bybit-spot": json.dumps({"success": True, "ret_msg": "subscribe", "conn_id": "c1",
                              "req_id": "7", "op": "subscribe"}),
    "okx-swap": '{"id":"7","event":"subscribe","arg":{"channel":"trades",'
                '"instId":"BTC-USDT-SWAP"},"connId":"a4d3ae55"}',
    "okx-spot": '{"id":"7","event":"subscribe","arg":{"channel":"trades",'
                '"instId":"BTC-USDT"},"connId":"a4d3ae55"}',
}
FRAMES = Path(__file__).parent / "frames"  # documented examples, where no capture exists
# venues whose quote stream counts its own update ids: its quotes are joined to the book by the
# matching-engine time both carry (Bybit's ``cts``), not by update id
JOIN_BY_ENGINE_TIME = {"bybit-linear", "bybit-spot"}
# venue -> a listing answer (two symbols: one trading, one not) as the venue sends it
LISTINGS: dict[str, dict[str, Any]] = {
    "binance-usdm": {"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "onboardDate": 1569398400000,
         "deliveryDate": 4133404800000, "contractType": "PERPETUAL"},
        {"symbol": "BTCUSDT_210625", "status": "SETTLING", "onboardDate": 1616112000000,
         "deliveryDate": 1624608000000, "contractType": "CURRENT_QUARTER"}]},
    # spot's exchangeInfo has no dates at all (``listing_dates`` False)
    "binance-spot": {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"},
                                 {"symbol": "LUNAUSDT", "status": "BREAK"}]},
    "binance-coinm": {"symbols": [
        {"symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL",
         "contractStatus": "TRADING", "onboardDate": 1597042800000,
         "deliveryDate": 4133404800000, "contractSize": 100},
        {"symbol": "BTCUSD_210625", "pair": "BTCUSD", "contractType": "CURRENT_QUARTER",
         "contractStatus": "DELIVERING", "onboardDate": 1616112000000,
         "deliveryDate": 1624608000000, "contractSize": 100}]},
    "bybit-linear": {"retCode": 0, "retMsg": "OK", "result": {
        "category": "linear", "nextPageCursor": "", "list": [
            {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
             "launchTime": "1585526400000", "deliveryTime": "0"},
            {"symbol": "BTCUSDT-21FEB25", "contractType": "LinearFutures", "status": "Delivering",
             "launchTime": "1737100800000", "deliveryTime": "1740124800000"}]}},
    # spot's instruments-info has no dates
    "bybit-spot": {"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
        {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading"},
        {"symbol": "LUNAUSDT", "baseCoin": "LUNA", "quoteCoin": "USDT", "status": "Closed"}]}},
    "okx-swap": {"code": "0", "msg": "", "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "state": "live", "ctVal": "0.01",
         "ctValCcy": "BTC", "listTime": "1573557408000", "expTime": ""},
        {"instId": "LUNA-USDT-SWAP", "instType": "SWAP", "state": "suspend", "ctVal": "1",
         "listTime": "1611000000000", "expTime": "1652400000000"}]},
    "okx-spot": {"code": "0", "msg": "", "data": [
        {"instId": "BTC-USDT", "instType": "SPOT", "state": "live", "listTime": "1548133413000",
         "expTime": ""},
        {"instId": "LUNA-USDT", "instType": "SPOT", "state": "suspend",
         "listTime": "1611000000000", "expTime": "1652400000000"}]},
}

NAMES = sorted(venues.VENUES)
SEQUENCED = [n for n in NAMES if n not in UNSEQUENCED]


@dataclass
class Capture:
    url: str
    records: list[tuple[str, Any]] = field(default_factory=list)  # (stream, record)
    refused: list[FrameError] = field(default_factory=list)
    snapshots: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # symbol -> body


def _capture(venue: Venue, fixtures_dir: Path) -> Capture:
    assert venue.name in CAPTURES, f"{venue.name}: register its capture in CAPTURES"
    ws, rest = CAPTURES[venue.name]
    if (FRAMES / ws).is_file():
        fixtures_dir = FRAMES
    lines = (fixtures_dir / ws).read_text().splitlines()
    cap = Capture(lines[0].split(" <-> ")[0])
    for line in lines[1:]:
        if not line.strip():
            continue
        frame = line.split(": ", 1)[1]
        try:
            env = venue.decode(frame)
        except FrameError as exc:
            cap.refused.append(exc)
            continue
        if venue.name in SHARED_CAPTURES and not venue.valid_symbol(env.data.symbol):
            continue  # another venue's instrument on the same socket
        if env.data.kind == BATCH:  # several records in one frame: each as if alone
            cap.records += [(env.stream, rec) for rec in env.data.records]
        else:
            cap.records.append((env.stream, env.data))
    if rest is None:
        return cap
    for line in (fixtures_dir / rest).read_text().splitlines():
        if line.strip():
            url, _, rest_line = line.partition(" -> ")
            body = json.loads(rest_line.split(": ", 1)[1])
            symbol = url.split("symbol=")[1].split("&")[0]
            cap.snapshots[symbol] = body
    return cap


@pytest.fixture(params=NAMES)
def venue(request: pytest.FixtureRequest) -> Venue:
    return venues.get(request.param)


@pytest.fixture(params=SEQUENCED)
def sequenced(request: pytest.FixtureRequest) -> Venue:
    return venues.get(request.param)


def test_every_registered_venue_has_a_capture_and_a_listing_sample() -> None:
    assert venues.DEFAULT in venues.VENUES
    for name in NAMES:
        assert name in CAPTURES and name in LISTINGS, name
        assert venues.get(name).name == name


def test_decode_gives_records_of_the_streams_they_came_on(venue: Venue,
                                                          fixtures_dir: Path) -> None:
    cap = _capture(venue, fixtures_dir)
    kinds = {TRADE: TRADES, QUOTE: QUOTES, BOOK: DEPTH}
    seen: dict[int, int] = defaultdict(int)
    for stream, rec in cap.records:
        assert rec.kind in kinds
        seen[rec.kind] += 1
        assert venue.stream_symbol(stream) == rec.symbol
        assert venue.stream_kind(stream) == kinds[rec.kind], stream
        assert venue.valid_symbol(rec.symbol)
        # the hot path decodes the same frames the same way
    assert seen[TRADE] and seen[QUOTE] and seen[BOOK], dict(seen)
    # what the capture holds besides (candles) is not a record: refused as unexpected
    assert all(exc.category == "unexpected" for exc in cap.refused)
    with pytest.raises(FrameError) as bad:
        venue.decode(b"{not json")
    assert bad.value.category == "malformed"
    with pytest.raises(venue.bad_frame):
        venue.decode_envelope(b"{not json")


def test_records_carry_the_fields_the_core_reads(venue: Venue, fixtures_dir: Path) -> None:
    cap = _capture(venue, fixtures_dir)
    protocols: dict[int, type] = {TRADE: Trade, QUOTE: Quote, BOOK: BookLevels}
    for _, rec in cap.records:
        for name in set(protocols[rec.kind].__annotations__) | _properties(protocols[rec.kind]):
            assert hasattr(rec, name), (type(rec).__name__, name)
    for _, rec in cap.records:
        if rec.kind == TRADE:
            row = venue.trade_row(rec, 1)
            assert row[3] == rec.symbol and row[4] == rec.agg_id and row[2] == 1
        elif rec.kind == QUOTE:
            row = venue.quote_row(rec, 1, 20)
            assert row[4] == venue.quote_source and row[8:12] == (rec.bid, rec.bid_qty,
                                                                  rec.ask, rec.ask_qty)
        else:
            row = venue.levels_row(rec, 1, 20, "depth")
            assert row[3] == rec.symbol and row[5] == rec.update_id


def _properties(proto: type) -> set[str]:
    return {n for n, v in vars(proto).items() if isinstance(v, property)}


def test_the_book_rule_holds_on_the_capture_and_catches_a_lost_update(
        sequenced: Venue, fixtures_dir: Path) -> None:
    venue = sequenced
    cap = _capture(venue, fixtures_dir)
    events: dict[str, list[Any]] = defaultdict(list)
    for _, rec in cap.records:
        if rec.kind == BOOK:
            events[rec.symbol].append(rec)
    assert events
    bridged = 0
    for symbol, evs in events.items():
        for prev, ev in pairwise(evs):
            assert venue.follows(prev.update_id, ev), (symbol, prev.update_id, ev)
            assert not venue.follows(prev.update_id - 1, ev)  # an update lost in between
        body = cap.snapshots.get(symbol)
        if body is None:
            continue
        snap = venue.parse_snapshot(body)
        assert snap.bids and snap.asks and snap.bids[0][0] < snap.asks[0][0]
        first = next((ev for ev in evs if venue.bridges(snap.last_update_id, ev)), None)
        if first is not None:  # events before it are older than the snapshot
            bridged += 1
            older = evs[:evs.index(first)]
            assert all(ev.update_id < snap.last_update_id for ev in older)
    assert bridged, "no snapshot of the capture is bridged by its events"
    with pytest.raises(ValueError):
        venue.parse_snapshot({"code": -1121, "msg": "Invalid symbol."})
    req = venue.depth_request("BTCUSDT", 1000)
    assert req.weight > 0 and req.path and req.weight <= venue.weight_limit


def test_a_book_kept_by_the_venues_rule_agrees_with_its_quote_stream(
        sequenced: Venue, fixtures_dir: Path) -> None:
    """The capture's diff events, applied by the venue's own book (``local_book``) on its REST
    snapshots, give exactly the best levels its quote stream shows at the same update id."""
    venue = sequenced
    cap = _capture(venue, fixtures_dir)
    key = "trade_ms" if venue.name in JOIN_BY_ENGINE_TIME else "update_id"
    books: dict[str, LocalBook] = {}
    best: dict[str, dict[int, tuple[Any, Any]]] = defaultdict(dict)
    for _, rec in cap.records:
        if rec.kind != BOOK or rec.symbol not in cap.snapshots:
            continue
        book = books.get(rec.symbol)
        if book is None:
            book = books[rec.symbol] = venue.local_book(rec.symbol, venue.max_book_levels, 1000)
        snap = venue.parse_snapshot(cap.snapshots[rec.symbol])
        if book.needs_snapshot and rec.update_id >= snap.last_update_id:
            for old, recv_ms in book.apply_snapshot(snap) or ():
                book.on_event(old, recv_ms)  # older than the snapshot: dropped
        if book.on_event(rec, 0) in (APPLIED, SNAPSHOT):
            bids, asks = book.top(1)
            best[rec.symbol][getattr(rec, key)] = (bids[0], asks[0])
    assert books and all(book.live for book in books.values())
    compared = 0
    for _, rec in cap.records:
        if rec.kind == QUOTE and getattr(rec, key) in best[rec.symbol]:
            compared += 1
            bid, ask = best[rec.symbol][getattr(rec, key)]
            assert bid == (rec.bid, rec.bid_qty) and ask == (rec.ask, rec.ask_qty), rec
    assert compared >= 10, compared


def test_the_trade_continuity_rule_holds_on_the_capture(venue: Venue,
                                                        fixtures_dir: Path) -> None:
    assert venue.trade_continuity in (CONTIGUOUS, NO_CONTINUITY, SPANS)
    cap = _capture(venue, fixtures_dir)
    ids: dict[str, list[int]] = defaultdict(list)
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for _, rec in cap.records:
        if rec.kind == TRADE:
            ids[rec.symbol].append(rec.agg_id)
            spans[rec.symbol].append((rec.first_id, rec.last_id))
    assert ids
    if venue.trade_continuity == CONTIGUOUS:
        for symbol, seq in ids.items():
            assert seq == list(range(seq[0], seq[0] + len(seq))), symbol
    if venue.trade_continuity == SPANS:  # each trade starts right after the one before
        for symbol, covered in spans.items():
            assert all(last == rec_id for (_, last), rec_id in zip(covered, ids[symbol],
                                                                   strict=True))
            for (_, prev_last), (first, _) in pairwise(covered):
                assert first == prev_last + 1, symbol


def test_backfill_pages_within_the_venue_limits(venue: Venue) -> None:
    page = venue.trades_page
    assert page >= 1 and 0 < venue.trades_weight <= venue.weight_limit
    req = venue.trades_request("BTCUSDT", 12345, 10 * page)
    assert req.weight == venue.trades_weight and req.path
    if venue.name in PAGES_DOWN:  # the trades older than ``after``: the page reaches 12345
        after = req.params["after"]
        assert isinstance(after, int) and 12345 < after <= 12345 + page
        assert req.params["limit"] == page
    elif venue.trade_continuity == NO_CONTINUITY:  # ids cannot be paged from: the venue's
        assert 12345 not in req.params.values()  # recent trades, as many as it serves
        assert max(v for v in req.params.values() if isinstance(v, int)) == page
    else:
        assert 12345 in req.params.values()  # pages from the first missing id
        assert max(v for v in req.params.values() if isinstance(v, int) and v != 12345) <= page
    if venue.name in NO_WEIGHT_HEADER:
        assert venue.weight_header == ""
    else:
        assert venue.weight_header and venue.weight_header == venue.weight_header.lower()
    assert list(venue.decode_trades(EMPTY_TRADES.get(venue.name, b"[]"))) == []
    with pytest.raises(venue.bad_frame):
        venue.decode_trades(b"[{")


def test_keepalive_is_the_servers_or_the_clients(venue: Venue) -> None:
    k = venue.keepalive
    if k.ping_text is None:
        assert k.server_pings  # the transport answers the server's pings
    else:
        assert k.interval > 0 and k.ping_text


def test_the_connection_plan_subscribes_within_the_limits(venue: Venue,
                                                          fixtures_dir: Path) -> None:
    cap = _capture(venue, fixtures_dir)
    symbols = tuple(dict.fromkeys(rec.symbol for _, rec in cap.records))
    if venue.subscribe_on_open:  # the capture's URL names no streams: they were subscribed
        assert not venue.stream_symbols(cap.url)
        assert venue.open_url(cap.url) == cap.url
    else:
        assert set(venue.stream_symbols(cap.url)) >= set(symbols)
    specs = venue.streams_for(symbols, depth_levels=20, depth_speed="100ms", book="diff",
                              book_ticker=True)
    assert {venue.stream_kind(s.name) for s in specs} == {TRADES, QUOTES, DEPTH}
    assert {venue.stream_symbol(s.name) for s in specs} == set(symbols)
    assert {venue.trade_stream(s) for s in symbols} <= {s.name for s in specs}
    assert {venue.quote_stream(s) for s in symbols} <= {s.name for s in specs}
    plans = venue.plan_connections(specs, 3)
    assert sum(len(p.streams) for p in plans) == len(specs)
    assert all(len(p.streams) <= 3 for p in plans) and venue.max_streams_per_connection >= 3
    assert venue.messages_per_second >= 1
    plan = plans[0]
    url = plan.url(venue.default_ws_url)
    assert url.startswith(venue.default_ws_url)
    extra = [s.name for s in specs if s not in plan.streams][:2]
    message = venue.subscription("SUBSCRIBE", extra, 7)
    assert all(name in message for name in extra)
    after = venue.url_after(url, [message])
    assert set(venue.stream_symbols(after)) >= {venue.stream_symbol(n) for n in extra}
    if venue.subscribe_on_open:  # a socket opens the bare path and subscribes what its URL names
        assert set(venue.stream_symbols(url)) == {s.symbol for s in plan.streams}
        sent = "".join(venue.open_messages(url))
        assert all(s.name.rpartition(":")[2] in sent for s in plan.streams)
        assert "#" not in venue.open_url(url) and venue.open_url(url) in url
    else:
        assert venue.open_messages(url) == [] and venue.open_url(url) == url
    ok = ACKS.get(venue.name) or json.dumps({"result": None, "id": 7})
    assert venue.reply_to(ok) == (7, "")


def test_the_listing_parse(venue: Venue) -> None:
    listed = venue.listing(LISTINGS[venue.name])
    trading = [s for s, e in listed.items() if e.status == venue.trading]
    assert len(listed) == 2 and len(trading) == 1
    other = next(e for s, e in listed.items() if s not in trading)
    if venue.listing_dates:  # the venue dates its listings: both times are read
        assert 0 < other.onboard_ms < other.delivery_ms
    else:  # no dates on the wire: none invented (0 listed, never delivered)
        assert other.onboard_ms == 0 and other.delivery_ms == NEVER_MS
    for name in venue.default_symbols:
        assert venue.valid_symbol(name), name
    assert venue.listing({}) == {}
    assert venue.listing_request().path
