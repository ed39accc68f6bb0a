"""SignalParams: defaults from signals.md, the [signals] table, and reproducibility metadata."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from trio_harvest.config import ConfigError
from trio_harvest.kinds import PREVIEW_KINDS
from trio_harvest.signals.params import SignalParams, ofi_source_label, package_version


def test_defaults_follow_the_reference() -> None:
    p = SignalParams()
    assert (p.w_ofi, p.w_cvd, p.fusion_window_s, p.z_window_s) == (0.5, 0.5, 10, 600)
    assert (p.spike_z, p.spike_cooldown_s, p.z_clip) == (3.0, 30, 5.0)
    assert 60 <= p.divergence_window_s <= 300
    assert p.grace_ms == 500 and p.tail_s == 60
    assert p.large_trade_quantile == 0.999


def test_from_mapping_reads_a_toml_table() -> None:
    p = SignalParams.from_mapping(
        {"w-ofi": 0.7, "w_cvd": 0.3, "z_window_s": 300, "grace_ms": 250.0, "spike_z": "2.5"}
    )
    assert (p.w_ofi, p.w_cvd, p.z_window_s, p.grace_ms, p.spike_z) == (0.7, 0.3, 300, 250, 2.5)
    assert isinstance(p.grace_ms, int)
    assert SignalParams.from_mapping({}) == SignalParams()


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"nope": 1}, "unknown setting 'nope'"),
        ({"z_window_s": 1.5}, "signals.z_window_s"),
        ({"z_window_s": True}, "signals.z_window_s"),
        ({"w_ofi": "heavy"}, "signals.w_ofi"),
        ({"w_ofi": float("nan")}, "signals.w_ofi"),
        ({"z_clip": 0}, "signals.z_clip"),
        ({"ofi_levels": 11}, "signals.ofi_levels"),
        ({"large_trade_quantile": 1.0}, "signals.large_trade_quantile"),
        ({"large_trade_window_s": 120}, "signals.large_trade_window_s"),
        ({"z_min_periods": 700}, "signals.z_min_periods"),
        ({"grace_ms": -1}, "signals.grace_ms"),
    ],
)
def test_mistakes_are_one_readable_line(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        SignalParams.from_mapping(table)
    message = str(info.value)
    assert words in message
    assert "\n" not in message


def test_metadata_carries_every_parameter_source_and_version() -> None:
    p = SignalParams(w_ofi=0.25, spike_z=4.0)
    source = ofi_source_label(book_ticker=True, depth_levels=20, ofi_levels=p.ofi_levels)
    for kind in PREVIEW_KINDS:
        meta = p.metadata(kind, source)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
        assert meta["trio_harvest.kind"] == kind
        assert meta["trio_harvest.version"] == package_version()
        assert meta["trio_harvest.signals.ofi_source"] == source
        assert "bookTicker" in source and "levels=1..10" in source
        params = {k.removeprefix("trio_harvest.signals."): json.loads(v) for k, v in meta.items()
                  if k.startswith("trio_harvest.signals.") and not k.endswith(("source",
                                                                                 "formula"))}
        assert SignalParams(**params) == p  # the metadata is enough to rebuild the parameters
    with pytest.raises(ValueError):
        p.metadata("prices", source)


def test_ofi_source_label_says_snapshot_when_there_is_no_book_ticker() -> None:
    label = ofi_source_label(book_ticker=False, depth_levels=5, ofi_levels=10)
    assert label.startswith("l1=depth(snapshot-to-snapshot)") and "levels=1..5" in label


def test_metadata_survives_a_parquet_file(tmp_path: Path) -> None:
    meta = SignalParams().metadata("fusion", "l1=bookTicker(event-by-event)")
    path = tmp_path / "part.parquet"
    pl.DataFrame({"ts_ms": [1]}).write_parquet(path, metadata=meta)
    back = pl.read_parquet_metadata(path)
    assert {k: back[k] for k in meta} == meta
