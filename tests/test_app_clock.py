"""The feature table's clock is the exchange's: wall clock less the measured receipt lag."""

from __future__ import annotations

from pathlib import Path

from trio_harvest.app import Harvester

from .conftest import make_config


def test_exchange_clock_follows_the_measured_lag(tmp_path: Path) -> None:
    h = Harvester(make_config(tmp_path), wall_clock_ms=lambda: 1_000_000)
    assert h.exchange_ms() == 1_000_000  # nothing measured yet
    h.repair.stats.lag_ms = 2_000.4  # the exchange's times are 2 s behind ours
    assert h.exchange_ms() == 998_000
    h.repair.stats.lag_ms = -1_500.0  # ... or ahead
    assert h.exchange_ms() == 1_001_500
