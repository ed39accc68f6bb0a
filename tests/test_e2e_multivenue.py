"""Several venues in one run: ``[venues.<name>]`` tables harvested by one process, each venue
on its own connections against its own simulator (its own wire), into one dataset with each
venue's rows under its own ``venue=`` partition. Every trade of each venue's simulator tape is
in that venue's ``prices`` exactly once (``scan(data, "prices", venue=V)``); the command line
refuses a wrong table in one line."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import trio

from trio_harvest import venues
from trio_harvest.cli.commands import main
from trio_harvest.config import load_config, venue_configs
from trio_harvest.dataset import DatasetError, scan
from trio_harvest.multivenue import MultiHarvester
from trio_harvest.venuetables import parse_tables

from .conftest import make_config
from .test_chaos import Reader, check_conservation

THREE = {"binance-usdm": ["BTCUSDT", "ETHUSDT"], "binance-spot": ["BTCUSDT", "ETHUSDT"],
         "binance-coinm": ["BTCUSD_PERP", "ETHUSD_PERP"]}
THREE_TOML = "".join(f'[venues.{name}]\nsymbols = {json.dumps(symbols)}\n\n'
                     for name, symbols in THREE.items())


def reader(venue: str) -> Reader:
    """Every row of a kind of one venue, through the public reader."""
    def read(data: Path, kind: str) -> pl.DataFrame:
        try:
            return scan(data, kind, venue=venue).collect()
        except DatasetError:
            return pl.DataFrame()
    return read


async def test_each_venue_conserves_its_own_tape_in_one_dataset(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """One process, three venues: each trade of each venue's simulator tape is in that venue's
    ``prices`` exactly once (no faults: nothing missing), with the exchange's values; each
    venue's book rows are its own; every venue ran on its own simulator and connections, and
    its log lines name it."""
    caplog.set_level(logging.INFO, logger="trio_harvest")
    cfg = make_config(tmp_path, sim=True, sim_rate=300.0, sim_seed=3, shutdown_grace=6.0,
                      venue_tables=parse_tables({k: {"symbols": v} for k, v in THREE.items()}))
    multi = MultiHarvester(venue_configs(cfg))
    async with trio.open_nursery() as nursery:
        await nursery.start(multi.run)
        await trio.sleep(2.5)
        last_ids = {h.config.venue: {s: h.simulator.tape(s).last_id for s in h.config.symbols}
                    for h in multi.units}
        await trio.sleep(1.0)
        multi.request_stop("test over")
    data = tmp_path / "data"
    assert {p.name for p in data.glob("venue=*")} == {f"venue={v}" for v in THREE}
    urls = {h.simulator.rest_url for h in multi.units}
    assert len(urls) == 3, "one simulator (one port) per venue"
    for h in multi.units:
        venue = h.config.venue
        assert h.venue.name == venue and h.simulator.venue.name == venue
        assert h.config.symbols == tuple(THREE[venue])
        assert h.stop_state.reason == "test over" and h.lanes.total_pending() == 0
        assert all(c.stats.frames for c in h.connections), venue
        per_symbol = check_conservation(data, h.simulator, h.config.symbols, last_ids[venue],
                                        reader(venue))
        for symbol, counts in per_symbol.items():
            assert counts["missing"] == 0 and counts["rows"] >= 20, (venue, symbol, counts)
        book = reader(venue)(data, "orderbook")
        assert set(book["symbol"]) == set(THREE[venue]), venue
        assert any(r.getMessage().startswith(f"[{venue}] harvesting 2 symbols")
                   for r in caplog.records), venue


def test_run_sim_config_three_venues_exits_0(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The command line, a real process: ``run --sim --config three.toml --duration 15`` exits
    0 and writes prices and orderbook for all three venues into one dataset, each venue's rows
    under its own ``venue=``, each journal under ``_journal/<venue>``."""
    data = tmp_path / "data"
    three = tmp_path / "three.toml"
    three.write_text(THREE_TOML)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "trio_harvest", "run", "--sim", "--config", str(three),
         "--duration", "15", "--data-dir", str(data), "--summary-json"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary["venues"]) == set(THREE)
    for venue, symbols in THREE.items():
        s = summary["venues"][venue]
        assert s["frames"] > 0 and not any(s["rows_deadlettered"].values()), venue
        for kind in ("prices", "orderbook"):
            rows = scan(data, kind, venue=venue).collect()
            assert set(rows["symbol"]) == set(symbols), (venue, kind)
        ids = scan(data, "prices", venue=venue).collect()["agg_id"]
        assert ids.n_unique() == len(ids), f"{venue}: a trade written twice"
        assert (data / "_journal" / venue).is_dir()
    assert {p.name for p in data.glob("venue=*")} == {f"venue={v}" for v in THREE}
    capsys.readouterr()
    assert main(["inspect", "--data-dir", str(data)]) == 0  # names every venue it holds
    assert "venue binance-coinm, binance-spot, binance-usdm:" in capsys.readouterr().out
    assert main(["inspect", "--data-dir", str(data), "--venue", "binance-spot"]) == 0
    assert "venue binance-spot: 2 symbols" in capsys.readouterr().out


@pytest.mark.parametrize(("toml", "flags", "says"), [
    ('[venues.kraken]\nsymbols = ["XBTUSD"]\n', [], "unknown venue 'kraken'"),
    ('[venues.binance-coinm]\nsymbols = ["BTCUSDT"]\n', [],
     "[venues.binance-coinm]: symbols: 'BTCUSDT' is not a binance-coinm symbol"),
    ('[venues.binance-spot]\nsymbols = ["BTCUSDT"]\n', ["--venue", "binance-spot"],
     "[venues.<name>] tables and --venue (venue) are exclusive"),
    ('[venues.binance-spot]\nsymbols = ["BTCUSDT"]\n', ["--symbols", "ETHUSDT"],
     "[venues.<name>] tables and --symbols (symbols) are exclusive"),
    ('[venues.binance-spot]\nsymbol = ["BTCUSDT"]\n', [], "unknown key 'symbol'"),
    ('[venues.binance-spot]\nsymbols = ["BTCUSDT"]\n', ["--shard", "1/2", "--shard-weights", "off"],
     "shard 1/2: none of the 1 (venue, symbol) pairs falls to this shard"),
])
def test_a_wrong_venue_table_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                toml: str, flags: list[str], says: str) -> None:
    path = tmp_path / "v.toml"
    path.write_text(toml)
    code = main(["run", "--config", str(path), "--data-dir", str(tmp_path / "data"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err


def test_venue_configs_give_each_venue_its_own_journal_and_the_first_the_shared_duties(
        tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text(THREE_TOML)
    cfg = load_config({"data_dir": str(tmp_path / "d"), "metrics_port": 9999}, {}, path)
    units = venue_configs(cfg)
    assert [u.venue for u in units] == list(THREE)
    assert [u.journal_dir for u in units] == [tmp_path / "d" / "_journal" / v for v in THREE]
    assert [u.metrics_port for u in units] == [9999, 0, 0]
    assert [u.auto_recover for u in units] == [True, False, False]
    spot = units[1]
    assert spot.ws_url.startswith("wss://stream.binance.com") and spot.symbols == ("BTCUSDT", "ETHUSDT")
    assert venue_configs(load_config({}, {}, None)) == [load_config({}, {}, None)]  # one venue


def test_a_venue_table_may_choose_its_own_book(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text('book = "partial"\n[venues.binance-spot]\nbook = "diff"\n'
                    '[venues.binance-coinm]\nsymbols = "BTCUSD_PERP"\n')
    spot, coinm = venue_configs(load_config({}, {}, path))
    assert (spot.book, spot.symbols) == ("diff", venues.get("binance-spot").default_symbols)
    assert (coinm.book, coinm.symbols) == ("partial", ("BTCUSD_PERP",))


def test_the_metrics_port_in_use_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The endpoint (the first venue's duty) cannot bind: the user's mistake, not a crash."""
    path = tmp_path / "three.toml"
    path.write_text(THREE_TOML)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["run", "--sim", "--config", str(path), "--duration", "2",
                     "--data-dir", str(tmp_path / "data"), "--metrics-port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and "already in use" in err and len(err.strip().splitlines()) == 1, err


async def test_faults_apply_to_each_venue_and_each_repairs_on_its_own(tmp_path: Path) -> None:
    """``--sim-faults`` in a run of three venues: each venue's simulator disconnects, skips and
    duplicates trade ids in its own wire; each venue's repair drops its duplicates and backfills
    its own breaks from its own simulator's REST, under its own weight budget; every trade of each
    tape is in its venue's ``prices`` exactly once or inside that venue's unfilled gap."""
    cfg = make_config(tmp_path, sim=True, sim_rate=400.0, sim_seed=3, shutdown_grace=6.0,
                      sim_faults="disconnect=1,skip=0.03,dup_id=0.03,seed=5",
                      backfill_delay=0.3, backoff_initial=0.05, backoff_max=0.25,
                      venue_tables=parse_tables({k: {"symbols": v} for k, v in THREE.items()}))
    multi = MultiHarvester(venue_configs(cfg))
    async with trio.open_nursery() as nursery:
        await nursery.start(multi.run)
        await trio.sleep(3.0)
        last_ids = {h.config.venue: {s: h.simulator.tape(s).last_id for s in h.config.symbols}
                    for h in multi.units}
        await trio.sleep(1.0)
        multi.request_stop("test over")
    budgets = {id(h.repair.budget) for h in multi.units}
    assert len(budgets) == 3, "one REST weight budget per venue"
    for h in multi.units:
        venue = h.config.venue
        a = h.repair.as_dict()
        assert a["trade_duplicates_dropped"] > 0, venue
        assert a["gaps"].get("agg-id break", 0) > 0 and a["backfill"]["rows"] > 0, (venue, a)
        assert sum(c.stats.reconnects for c in h.connections) > 0, venue
        check_conservation(tmp_path / "data", h.simulator, h.config.symbols, last_ids[venue],
                           reader(venue))


async def test_one_venue_stopping_stops_the_others_cleanly(tmp_path: Path) -> None:
    """A venue's unit ends (here: its own stop): the others stop too, each once (a second
    request would cut its final flush short), and nothing is dead-lettered."""
    cfg = make_config(tmp_path, sim=True, sim_rate=200.0, shutdown_grace=6.0,
                      venue_tables=parse_tables({k: {"symbols": v} for k, v in THREE.items()}))
    multi = MultiHarvester(venue_configs(cfg))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(multi.run)
            await trio.sleep(1.0)
            multi.units[1].request_stop("spot is done")
    for h in multi.units:
        assert h.stop_state.reason == "spot is done" and h.stop_state.signals == 1, h.config.venue
        kinds = h.rotation.stats.kinds.values()
        assert sum(k.files_written for k in kinds) > 0, h.config.venue
        assert not any(k.rows_deadlettered or k.rows_lost for k in kinds), h.config.venue
