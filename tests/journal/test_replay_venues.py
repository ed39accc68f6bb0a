"""The raw archive of a run of several venues (``<raw_dir>/<venue>/``) replays, with one
``replay`` command, into one dataset holding each venue's rows under its own ``venue=``: the
same rows as the live run wrote."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import trio

from tests.conftest import make_config
from trio_harvest.cli.commands import main
from trio_harvest.config import venue_configs
from trio_harvest.dataset import DatasetError, scan
from trio_harvest.multivenue import MultiHarvester
from trio_harvest.venuetables import parse_tables

TABLES = {"binance-usdm": {"symbols": ["BTCUSDT"]}, "binance-spot": {"symbols": ["BTCUSDT"]},
          "binance-coinm": {"symbols": ["ETHUSD_PERP"]}}


def rows(data: Path, kind: str, venue: str) -> pl.DataFrame:
    try:
        return scan(data, kind, venue=venue).collect()
    except DatasetError:
        return pl.DataFrame()


async def test_the_raw_archive_of_three_venues_replays_to_the_live_dataset(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=300.0,
                      duration=3.0, journal_segment_s=1.0, venue_tables=parse_tables(TABLES))
    await MultiHarvester(venue_configs(cfg)).run()
    assert {p.name for p in raw.iterdir()} == set(TABLES)  # one archive per venue
    out = tmp_path / "rebuilt"
    code = await trio.to_thread.run_sync(
        main, ["replay", "--raw-dir", str(raw), "--data-dir", str(out)])
    assert code == 0
    for venue in TABLES:
        for kind, key in (("prices", ["symbol", "agg_id"]),
                          ("orderbook", ["symbol", "source", "update_id"])):
            live, again = rows(cfg.data_dir, kind, venue), rows(out, kind, venue)
            assert live.height > 0 and live.height == again.height, (venue, kind)
            cols = live.columns
            order = [*key, *(c for c in cols if c not in key)]
            assert live.select(cols).sort(order, nulls_last=True).equals(
                again.select(cols).sort(order, nulls_last=True)), (venue, kind)
