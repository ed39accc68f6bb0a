"""``channels`` in every layer: a flag or environment string, a TOML list or string, a
``[venues.<name>]`` table's own; what a venue does not offer is a one-line ``ConfigError``."""

from __future__ import annotations

import pytest

from trio_harvest.config import build_config, layer_from_toml, venue_configs
from trio_harvest.errors import ConfigError


def test_default_channels_follow_the_venue_and_the_book() -> None:
    assert build_config({}).harvested == {"trades", "book", "quotes", "derivatives",
                                          "liquidations"}
    assert "book_updates" in build_config({"book": "diff"}).harvested
    assert build_config({"venue": "binance-spot"}).harvested == {"trades", "book", "quotes"}


def test_a_toml_list_and_a_venue_table_choose_channels() -> None:
    layer = layer_from_toml({"channels": ["trades", "derivatives"]})
    assert build_config(layer).harvested == {"trades", "derivatives"}
    tables = layer_from_toml({"venues": {
        "binance-usdm": {"symbols": ["BTCUSDT"], "channels": ["liquidations"]},
        "binance-spot": {"symbols": ["BTCUSDT"]}}})
    usdm, spot = venue_configs(build_config(tables))
    assert usdm.harvested == {"liquidations"}
    assert spot.harvested == {"trades", "book", "quotes"}  # the spot default drops them


@pytest.mark.parametrize("layer, message", [
    ({"venue": "binance-spot", "channels": "derivatives"}, "binance-spot offers no derivatives"),
    ({"channels": "trades,oi"}, "'oi' is not one of"),
    ({"open_interest_interval": 0}, "open_interest_interval: must be a positive"),
])
def test_bad_channels_are_one_line_errors(layer: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        build_config(layer)
    assert "\n" not in str(err.value)


def test_a_venue_table_asking_spot_for_liquidations_names_the_table() -> None:
    tables = layer_from_toml({"venues": {
        "binance-spot": {"symbols": ["BTCUSDT"], "channels": "liquidations"}}})
    with pytest.raises(ConfigError, match=r"\[venues.binance-spot\]: channels"):
        build_config(tables)
