"""The universe: names, ``all`` and patterns resolved from a listing, the change a listing poll
makes (with shards: only the shard's share), and the start-up errors a user sees."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from trio_harvest.cli.commands import main
from trio_harvest.errors import ConfigError
from trio_harvest.ingest.restclient import FetchFn, Params, RestResponse
from trio_harvest.ops.listing import ListingError, fetch_statuses
from trio_harvest.scale.shards import Shard, owner, symbols_of
from trio_harvest.sim.listing import CATALOGUE, ListingChanges, initial_listing
from trio_harvest.symbols import (
    check_symbols,
    follow,
    is_pattern,
    is_universe,
    matches,
    not_trading,
    resolve,
)
from trio_harvest.venues.binance_usdm.listing import statuses, trading

LISTED = ("BTCUSDT", "ETHUSDT", "BTCUSDT_260327", "SOLUSDT", "BTCDOMUSDT", "ETHBTC")


def test_patterns_and_all_are_told_from_names() -> None:
    assert is_pattern("ALL") and is_pattern("*USDT") and is_pattern("BTC*") and is_pattern("?TCUSDT")
    assert not is_pattern("BTCUSDT") and not is_pattern("BTCUSDT_260327")
    assert is_universe(("BTCUSDT", "*USDT")) and not is_universe(("BTCUSDT", "ETHUSDT"))
    check_symbols(("ALL",))
    check_symbols(("BTCUSDT", "ETH*"))
    with pytest.raises(ConfigError, match="not a symbol"):
        check_symbols(("BTC-USDT",))


def test_resolve_selects_trading_symbols_by_pattern_and_names() -> None:
    assert resolve(("ALL",), LISTED) == tuple(sorted(LISTED))
    assert resolve(("*USDT",), LISTED) == ("BTCDOMUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert resolve(("BTC*",), LISTED) == ("BTCDOMUSDT", "BTCUSDT", "BTCUSDT_260327")
    assert resolve(("ETHBTC", "SOL*", "TYPOUSDT"), LISTED) == ("ETHBTC", "SOLUSDT")
    assert not_trading(("ETHBTC", "SOL*", "TYPOUSDT"), LISTED) == ["TYPOUSDT"]
    assert matches("BTCUSDT_260327", ("*_??????",)) and not matches("BTCUSDT", ("*_??????",))


def test_a_pattern_that_matches_nothing_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"pattern 'DOGE\*' matches no trading symbol"):
        resolve(("BTCUSDT", "DOGE*"), LISTED, "--symbols")
    with pytest.raises(ConfigError, match="lists no trading symbol"):
        resolve(("ALL",), (), "--symbols")


def test_follow_adds_new_listings_and_removes_delistings() -> None:
    have = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    added, removed = follow(have, ("*USDT",), ("BTCUSDT", "ETHUSDT", "XRPUSDT", "ETHBTC"))
    assert added == ("XRPUSDT",) and removed == ("SOLUSDT",)
    assert follow(have, ("*USDT",), ()) == ((), ())  # an empty answer changes nothing


def test_each_shard_follows_only_its_share() -> None:
    listing = [f"S{i}USDT" for i in range(60)]
    shards = [Shard(i, 3) for i in range(3)]
    adds = [follow((), ("ALL",), listing, lambda s, sh=sh: symbols_of(s, sh))[0] for sh in shards]
    assert sorted(sum(adds, ())) == sorted(listing)  # every symbol once, by its owner
    for sh, got in zip(shards, adds, strict=True):
        assert all(owner(s, 3) == sh.index for s in got)
    # a new listing is picked up by its owner only
    new = [*listing, "NEWUSDT"]
    picked = [follow(adds[i], ("ALL",), new, lambda s, sh=sh: symbols_of(s, sh))
              for i, sh in enumerate(shards)]
    assert [p[0] for p in picked].count(("NEWUSDT",)) == 1 and all(not p[1] for p in picked)


def test_the_listing_parse_reads_statuses() -> None:
    info = {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING"},
                        {"symbol": "BTCUSDT_250926", "status": "SETTLING"},
                        {"symbol": "OLDUSDT", "status": "CLOSE"}, {"no": "name"}]}
    assert statuses(info) == {"BTCUSDT": "TRADING", "BTCUSDT_250926": "SETTLING",
                              "OLDUSDT": "CLOSE"}
    assert trading(info) == {"BTCUSDT"}


def test_the_listing_parse_reads_the_venues_own_dates() -> None:
    """What shards key a hand-over on: the same for every reader of the listing."""
    from trio_harvest.venues.binance_usdm.listing import PERPETUAL_DELIVERY_MS, Listed, listing

    info = {"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "onboardDate": 1569398400000,
         "deliveryDate": PERPETUAL_DELIVERY_MS},
        {"symbol": "OLDUSDT", "status": "SETTLING", "onboardDate": 1600000000000,
         "deliveryDate": 1796609280000},
        {"symbol": "ODDUSDT", "status": "TRADING", "onboardDate": "soon", "deliveryDate": True}]}
    assert listing(info) == {
        "BTCUSDT": Listed("TRADING", 1569398400000, PERPETUAL_DELIVERY_MS),
        "OLDUSDT": Listed("SETTLING", 1600000000000, 1796609280000),
        "ODDUSDT": Listed("TRADING", 0, PERPETUAL_DELIVERY_MS)}  # malformed: none


def test_the_simulators_exchange_info_dates_its_listing_changes() -> None:
    from trio_harvest.sim.market import Market
    from trio_harvest.sim.rest import ONBOARD_MS, RestApi
    from trio_harvest.venues.binance_usdm.listing import PERPETUAL_DELIVERY_MS, listing

    market = Market(["BTCUSDT", "ETHUSDT"], rate=10.0, seed=1)
    market.list_symbol("SUIUSDT", 1_796_609_000_000)
    market.delist("ETHUSDT", 1_796_609_001_000)
    got = listing(json.loads(RestApi(market, lambda: 1_796_609_002_000).handle(
        "GET", "/fapi/v1/exchangeInfo").body))
    assert got["BTCUSDT"].onboard_ms == ONBOARD_MS
    assert got["BTCUSDT"].delivery_ms == PERPETUAL_DELIVERY_MS
    assert got["SUIUSDT"].onboard_ms == 1_796_609_000_000
    assert (got["ETHUSDT"].status, got["ETHUSDT"].delivery_ms) == ("SETTLING", 1_796_609_001_000)


def fake_fetch(status: int, body: Any) -> Any:
    @asynccontextmanager
    async def open_fetch(base: str) -> AsyncIterator[FetchFn]:
        async def fetch(path: str, params: Params) -> RestResponse:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            return RestResponse(status, {}, raw)

        yield fetch

    return open_fetch


async def test_fetch_statuses_says_why_it_has_no_listing() -> None:
    ok = await fetch_statuses("http://x", fake_fetch(200, {"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING"}]}))
    assert ok == {"BTCUSDT": "TRADING"}
    for status, body, why in ((503, {}, "HTTP 503"), (200, b"<html>", "did not answer with a"),
                              (200, {"symbols": []}, "listed no symbol")):
        with pytest.raises(ListingError, match=why):
            await fetch_statuses("http://x", fake_fetch(status, body))


def test_the_simulator_lists_a_catalogue_and_changes_it_seeded() -> None:
    assert initial_listing(("ALL",)) == CATALOGUE
    assert initial_listing(("*USDT", "ABCUSDT")) == (*CATALOGUE, "ABCUSDT")
    a, b = ListingChanges(1), ListingChanges(1)
    known = set(CATALOGUE)
    for _ in range(20):
        listed, delisted = a.next(CATALOGUE, known)
        assert (listed, delisted) == b.next(CATALOGUE, known)
        assert listed not in known and delisted in CATALOGUE
        known.add(listed)
    assert ListingChanges(1).next(("BTCUSDT",), known)[1] is None  # never the last one


def test_cli_a_pattern_matching_nothing_is_one_line_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    code = main(["run", "--sim", "--symbols", "nosuch*", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pattern 'NOSUCH*' matches no trading symbol" in err


def test_cli_an_unreachable_listing_is_one_line_exit_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    code = main(["run", "--symbols", "all", "--rest-url", f"http://127.0.0.1:{closed_port()}",
                 "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot read the listing" in err and "--rest-url" in err


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_listing_that_cannot_be_had_while_running_changes_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    from trio_harvest.config import Config
    from trio_harvest.ops.universe import Universe

    calls: list[str] = []

    async def failing(url: str) -> dict[str, str]:
        calls.append(url)
        raise ListingError(f"{url}/fapi/v1/exchangeInfo answered HTTP 503")

    router = SimpleNamespace(symbols=frozenset({"BTCUSDT"}), stats=SimpleNamespace(last_seen={}))
    host: Any = SimpleNamespace(config=Config(symbols=("BTCUSDT",), universe=("ALL",)),
                                router=router)
    follower = Universe(host, "http://venue", fetch=failing)
    await follower.poll()
    await follower.poll()
    assert calls == ["http://venue", "http://venue"] and follower.polls == 2
    assert not follower.added and not follower.removed and router.symbols == {"BTCUSDT"}
    assert [r.message for r in caplog.records].count(
        "cannot follow the listing: http://venue/fapi/v1/exchangeInfo answered HTTP 503; the "
        "symbols stay as they are until the next poll") == 1  # once, however often it fails
