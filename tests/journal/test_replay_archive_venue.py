"""``replay`` of a raw archive takes its venue from the archive (each connection's record names
it), or from ``--venue`` for an archive written before they did; an archive of another venue
than ``--venue`` is a user error. The archive of a multi-venue run of diff books replays each
venue's ``book_updates`` and ``orderbook`` rows as live wrote them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import trio

from tests.conftest import make_config
from trio_harvest.app import Harvester
from trio_harvest.cli.commands import main
from trio_harvest.config import venue_configs
from trio_harvest.dataset import DatasetError, scan
from trio_harvest.multivenue import MultiHarvester
from trio_harvest.venuetables import parse_tables

KEYS = {"prices": ["symbol", "agg_id"], "orderbook": ["symbol", "source", "update_id"],
        "book_updates": ["symbol", "update_id", "is_snapshot", "side", "price"]}


def rows(data: Path, kind: str, venue: str) -> pl.DataFrame:
    try:
        return scan(data, kind, venue=venue).collect()
    except DatasetError:
        return pl.DataFrame()


def assert_same(live_dir: Path, again_dir: Path, venue: str, kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        live, again = rows(live_dir, kind, venue), rows(again_dir, kind, venue)
        assert live.height > 0 and live.height == again.height, (venue, kind, again.height)
        key, cols = KEYS[kind], live.columns
        order = [*key, *(c for c in cols if c not in key)]
        assert live.select(cols).sort(order, nulls_last=True).equals(
            again.select(cols).sort(order, nulls_last=True)), (venue, kind)


async def replay(*args: str) -> int:
    return await trio.to_thread.run_sync(main, ["replay", *args])


async def test_a_flat_archive_replays_as_the_venue_it_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=300.0,
                      venue="binance-spot", symbols=("BTCUSDT",), duration=3.0,
                      journal_segment_s=1.0)
    await Harvester(cfg).run()
    out = tmp_path / "rebuilt"
    assert await replay("--raw-dir", str(raw), "--data-dir", str(out)) == 0
    assert_same(cfg.data_dir, out, "binance-spot", ("prices", "orderbook"))
    assert not rows(out, "prices", "binance-usdm").height
    # an archive of binance-spot is not replayed as another venue
    other = tmp_path / "other"
    assert await replay("--raw-dir", str(raw), "--data-dir", str(other),
                        "--venue", "binance-coinm") == 2
    assert not other.exists() or not any(other.glob("venue=*"))


async def test_an_archive_that_names_no_venue_replays_as_venue_given(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=300.0,
                      venue="binance-coinm", symbols=("BTCUSD_PERP",), duration=3.0,
                      journal_segment_s=1.0)
    h = Harvester(cfg)
    assert h.journal is not None
    h.journal.venue = None  # as written before connection records named their venue
    await h.run()
    out = tmp_path / "rebuilt"
    assert await replay("--raw-dir", str(raw), "--data-dir", str(out),
                        "--venue", "binance-coinm") == 0
    assert_same(cfg.data_dir, out, "binance-coinm", ("prices", "orderbook"))
    assert await replay("--raw-dir", str(raw), "--data-dir", str(tmp_path / "x"),
                        "--venue", "nowhere") == 2


async def test_the_archive_of_a_multi_venue_diff_book_run_replays_its_book_rows(
        tmp_path: Path) -> None:
    tables = {"binance-usdm": {"symbols": ["BTCUSDT"]},
              "binance-coinm": {"symbols": ["ETHUSD_PERP"]}}
    raw = tmp_path / "raw"
    cfg = make_config(tmp_path, journal=True, raw_dir=raw, sim=True, sim_rate=300.0,
                      duration=3.0, journal_segment_s=1.0, book="diff",
                      venue_tables=parse_tables(tables))
    await MultiHarvester(venue_configs(cfg)).run()
    out = tmp_path / "rebuilt"
    assert await replay("--raw-dir", str(raw), "--data-dir", str(out)) == 0
    for venue in tables:
        assert_same(cfg.data_dir, out, venue, ("prices", "orderbook", "book_updates"))
