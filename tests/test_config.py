from __future__ import annotations

from pathlib import Path

import pytest

from trio_harvest.config import ConfigError, load_config
from trio_harvest.kinds import DEFAULT_WATERMARKS


def test_defaults() -> None:
    c = load_config()
    assert c.symbols == ("BTCUSDT", "ETHUSDT")
    assert c.ws_url == "wss://fstream.binance.com"
    assert c.rotate_sec == 60 and c.save_concurrency == 2
    assert c.watermarks["prices"] == (20_000, 40_000)
    assert c.deadletter_path == Path("data") / "deadletter"


def test_layers_rise_in_priority(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text('symbols = ["solusdt"]\nrotate_sec = 5\nsave_concurrency = 3\n'
                    'write_timeout = 7\n')
    env = {"TRIO_HARVEST_ROTATE_SEC": "9", "SAVE_CONCURRENCY": "4"}
    c = load_config({"save_concurrency": 6, "symbols": None}, env, toml)
    assert c.symbols == ("SOLUSDT",)  # TOML (CLI gave None = not set)
    assert c.write_timeout == 7  # TOML
    assert c.rotate_sec == 9  # env beats TOML
    assert c.save_concurrency == 6  # CLI beats env


def test_buffer_high_sets_every_kind_with_double_emergency() -> None:
    c = load_config(env={"BUFFER_HIGH": "100"})
    assert all(c.watermarks[k] == (100, 200) for k in DEFAULT_WATERMARKS)


def test_toml_watermarks_table(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text("[watermarks]\nprices = 10\norderbook = { high = 5, emergency = 7 }\n")
    c = load_config(config_file=toml)
    assert c.watermarks["prices"] == (10, 20)
    assert c.watermarks["orderbook"] == (5, 7)
    assert c.watermarks["ofi"] == DEFAULT_WATERMARKS["ofi"]


def test_cli_symbols_are_comma_separated_and_upper_cased() -> None:
    assert load_config({"symbols": "btcusdt, ethusdt"}).symbols == ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"symbols": "BTC-USDT"}, "is not a symbol"),
        ({"symbols": ","}, "at least one symbol"),
        ({"rotate_sec": -1}, "rotate_sec: must be a positive number"),
        ({"rotate_sec": "soon"}, "not a valid number"),
        ({"depth_levels": 7}, "depth_levels"),
        ({"ws_url": "http://x"}, "ws:// or wss://"),
        ({"save_concurrency": 0}, "at least 1"),
        ({"metrics_port": 70000}, "not a port"),
    ],
)
def test_bad_values_are_one_line_config_errors(cli: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(cli)
    assert "\n" not in str(info.value)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text("rotate_secs = 5\n")
    with pytest.raises(ConfigError, match="unknown setting 'rotate_secs'"):
        load_config(config_file=toml)
    with pytest.raises(ConfigError, match="TRIO_HARVEST_NOPE"):
        load_config(env={"TRIO_HARVEST_NOPE": "1"})


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("rotate_sec = = 5")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(config_file=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "missing.toml")


def test_bad_watermarks() -> None:
    with pytest.raises(ConfigError, match="BUFFER_HIGH"):
        load_config(env={"BUFFER_HIGH": "lots"})


def test_config_is_frozen() -> None:
    c = load_config()
    with pytest.raises(AttributeError):
        c.rotate_sec = 1  # type: ignore[misc]
