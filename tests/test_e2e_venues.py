"""Each venue beside USD-M, end to end: ``run --sim --venue NAME`` harvests the simulator speaking
that venue's wire (its paths, fields, book rule, REST and listing), and conserves every trade
under disconnects, skipped and duplicated trade ids and dropped diff-depth events; ``--symbols
all`` resolves from that venue's own listing. Rows are read through ``dataset.scan``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from trio_harvest import venues
from trio_harvest.config import build_config
from trio_harvest.dataset import DatasetError, scan
from trio_harvest.errors import ConfigError
from trio_harvest.gaps import parse_agg_detail
from trio_harvest.ops.universe import resolve_universe

from .test_chaos import book_breaks, disconnects, run_chaos

OTHERS = ("binance-spot", "binance-coinm")
# every fault the issue names, at a pace a few seconds show several times over
FAULTS = "disconnect=1,skip=0.03,dup_id=0.03,drop_diff=0.2"


def read_scanned(data: Path, kind: str) -> pl.DataFrame:
    """Every row of ``kind`` through the public reader (whatever the partition layout)."""
    try:
        return scan(data, kind, venue=venue_of(data)).collect()
    except DatasetError:  # nothing of that kind written
        return pl.DataFrame()


def venue_of(data: Path) -> str:
    """The one venue the run wrote, as its ``venue=`` partition folders say."""
    held = {p.name.removeprefix("venue=") for p in data.glob("venue=*")}
    assert len(held) == 1, held
    return held.pop()


@pytest.mark.parametrize("venue", OTHERS)
async def test_a_venue_conserves_every_trade_under_faults(tmp_path: Path, venue: str) -> None:
    """Every trade of the simulator's tape is in ``prices`` exactly once, with the exchange's
    values, or inside an unfilled gap; the faults were injected and reported."""
    o = await run_chaos(tmp_path, FAULTS, read=read_scanned, venue=venue, book="diff")
    adapter = venues.get(venue)
    assert o.h.venue is adapter and o.h.simulator.venue.name == venue  # both speak its wire
    assert venue_of(tmp_path / "data") == venue  # its own venue=<name> partitions
    assert set(o.per_symbol) == set(adapter.default_symbols)
    assert o.status["venue"] == venue
    assert all("/stream?" in c["url"] for c in o.status["connections"])  # no USD-M routes
    disconnects(o)
    book_breaks(o)  # a dropped diff event broke the venue's chain: a gap, then a resync
    a = o.adversity
    assert a["trade_duplicates_dropped"] > 0
    assert a["gaps"].get("agg-id break", 0) > 0 and a["backfill"]["rows"] > 0


@pytest.mark.parametrize("venue", OTHERS)
def test_run_sim_venue_exits_0_and_writes_the_venues_symbols(tmp_path: Path, venue: str) -> None:
    """The command line, a real process: ``run --sim --venue NAME`` (faults on, the default
    partial book) exits 0, its symbols are the venue's, every id between a symbol's first and
    last trade is written exactly once or lies inside an unfilled gap, and every row is dated
    (Spot's partial depth has no time of its own: it is stamped on receipt)."""
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--venue", venue,
         "--duration", "8", "--sim-faults", f"{FAULTS},seed=5",
         "--data-dir", str(data), "--summary-json"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not any(summary["rows_deadlettered"].values())
    prices, gaps = read_scanned(data, "prices"), read_scanned(data, "gaps")
    assert set(prices["symbol"].unique()) == set(venues.get(venue).default_symbols)
    for (symbol,), part in prices.group_by(["symbol"]):
        ids = part["agg_id"].sort().to_list()
        assert len(set(ids)) == len(ids), f"{symbol}: a trade written twice"
        unfilled = [p for d in gaps.filter(pl.col("symbol") == symbol)["detail"]
                    if (p := parse_agg_detail(d)) is not None and not p[2]]
        holes = set(range(ids[0], ids[-1] + 1)) - set(ids)
        assert all(any(a <= i <= b for a, b, _ in unfilled) for i in holes), symbol
    assert gaps.filter(pl.col("reason") == "disconnect").height >= 2
    book = read_scanned(data, "orderbook")
    assert book.height and set(book["source"]) == {"depth20"}  # top-N snapshots only
    quotes = read_scanned(data, "quotes")  # the best bid/ask stream has its own kind
    assert quotes.height and (quotes["ask"] > quotes["bid"]).all()
    assert not list(data.rglob("date=1970-*")), "rows without a time in a 1970 partition"
    assert venue_of(data) == venue


# -- --symbols all: the venue's own listing ---------------------------------------------------

LISTINGS = {
    "binance-coinm": {"symbols": [
        {"symbol": "BTCUSD_PERP", "contractStatus": "TRADING", "pair": "BTCUSD"},
        {"symbol": "ETHUSD_PERP", "contractStatus": "TRADING", "pair": "ETHUSD"},
        {"symbol": "BTCUSD_210625", "contractStatus": "DELIVERING", "pair": "BTCUSD"},
        # USD-M's status field on a COIN-M contract means nothing there
        {"symbol": "ETHUSD_210625", "status": "TRADING", "contractStatus": "SETTLING"}]},
    "binance-spot": {"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING"}, {"symbol": "ETHUSDT", "status": "TRADING"},
        {"symbol": "LUNAUSDT", "status": "BREAK"}]},
}


@pytest.fixture
def listing_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """A REST base URL answering every GET with the venue's listing; and the paths asked."""
    body = json.dumps(LISTINGS[request.param]).encode()
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(("listing_server", "venue", "want"), [
    ("binance-coinm", "binance-coinm", ("BTCUSD_PERP", "ETHUSD_PERP")),
    ("binance-spot", "binance-spot", ("BTCUSDT", "ETHUSDT")),
], indirect=["listing_server"])
def test_symbols_all_resolves_from_the_venues_listing(
        tmp_path: Path, listing_server: tuple[str, list[str]], venue: str,
        want: tuple[str, ...]) -> None:
    url, asked = listing_server
    cfg = build_config({"venue": venue, "rest_url": url, "symbols": ("ALL",),
                        "data_dir": tmp_path})
    resolved = resolve_universe(cfg)
    assert resolved.symbols == want and resolved.universe == ("ALL",)
    assert asked == [venues.get(venue).listing_request().path]  # the venue's own request


def test_the_simulators_all_is_the_venues_catalogue(tmp_path: Path) -> None:
    cfg = build_config({"venue": "binance-coinm", "sim": True, "symbols": ("*USD_PERP",),
                        "data_dir": tmp_path})
    got = resolve_universe(cfg).symbols
    assert got and all(s.endswith("USD_PERP") for s in got)
    with pytest.raises(ConfigError):  # no USD-M name on the COIN-M catalogue
        resolve_universe(build_config({"venue": "binance-coinm", "sim": True,
                                       "symbols": ("*USDT",), "data_dir": tmp_path}))
