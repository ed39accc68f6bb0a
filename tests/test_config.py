from __future__ import annotations

import re
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
    assert c.deadletter_path == Path("data") / "_deadletter"  # readers skip "_" folders


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
        ({"max_buffered_mb": -1}, "max_buffered_mb: must be a number of MB >= 0"),
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


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sim_faults": "skip=0.1"}, "--sim-faults needs --sim"),
        ({"sim": True, "ws_url": "ws://127.0.0.1:9443"}, "--sim and --ws-url are exclusive"),
        ({"sim": True, "rest_url": "http://127.0.0.1:9443"}, "--sim and --rest-url are exclusive"),
        ({"sim": True, "sim_rate": 1e9}, "sim_rate: .* at most 100,000"),
        ({"sim": True, "sim_rate": float("nan")}, "sim_rate: must be a positive number"),
    ],
)
def test_settings_that_would_be_ignored_or_hang_are_rejected(settings: dict[str, object],
                                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(settings)


def test_sim_checks_apply_to_toml_and_environment_too(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text('sim = true\nws_url = "ws://127.0.0.1:9443"\n')
    with pytest.raises(ConfigError, match=r"^--sim and --ws-url .*\(settings from config file .*h\.toml"):
        load_config(config_file=toml)
    with pytest.raises(ConfigError, match="--sim-faults needs --sim"):
        load_config(env={"TRIO_HARVEST_SIM_FAULTS": "skip=0.1"})
    ok = load_config({"sim": True, "sim_faults": "skip=0.1", "sim_rate": 100_000})
    assert ok.sim and ok.sim_rate == 100_000


def test_coercion_errors_name_the_source_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"data_dir": ""})
    assert str(info.value) == "--data-dir: '' is not a valid path"
    with pytest.raises(ConfigError) as info:
        load_config(env={"TRIO_HARVEST_ROTATE_SEC": "soon"})
    assert str(info.value) == "environment TRIO_HARVEST_ROTATE_SEC: 'soon' is not a valid number"
    toml = tmp_path / "h.toml"
    toml.write_text('rotate_sec = "soon"\n')
    with pytest.raises(ConfigError) as info:
        load_config(config_file=toml)
    assert str(info.value) == f"config file {toml}: rotate_sec: 'soon' is not a valid number"


def test_validation_errors_name_the_config_file_that_set_the_value(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text("rotate_sec = -1\n[watermarks]\nprices = { high = 10, emergency = 5 }\n")
    with pytest.raises(ConfigError) as info:
        load_config(config_file=toml)
    message = str(info.value)
    assert message.startswith(f"config file {toml}: ") and "\n" not in message
    assert "rotate_sec: must be a positive number" in message
    toml.write_text("[watermarks]\nprices = { high = 10, emergency = 5 }\n")
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(toml))}: watermarks\.prices: "):
        load_config(config_file=toml)
    toml.write_text("write_timeout = 5\n")  # a bad flag is not blamed on the file
    with pytest.raises(ConfigError) as info:
        load_config({"rotate_sec": -2}, {}, toml)
    assert str(info.value).startswith("rotate_sec: must be a positive number")
    toml.write_text("ws_lifetime = 10\n")  # a rule between settings names every source
    with pytest.raises(ConfigError, match=r"handover_lead must be shorter .*\(settings from config "
                                          r"file .*h\.toml, the environment and flags\)$"):
        load_config({}, {}, toml)


def test_the_venue_gives_the_default_urls_and_symbols(tmp_path: Path) -> None:
    """``venue`` from TOML, the environment or ``--venue``; its URLs and symbols are the
    defaults, and ``--ws-url``/``--rest-url``/``--symbols`` still win."""
    assert load_config().venue == "binance-usdm"
    coinm = load_config({"venue": "binance-coinm"})
    assert coinm.symbols == ("BTCUSD_PERP", "ETHUSD_PERP")
    assert (coinm.ws_url, coinm.rest_url) == ("wss://dstream.binance.com",
                                              "https://dapi.binance.com")
    toml = tmp_path / "h.toml"
    toml.write_text('venue = "binance-spot"\n')
    spot = load_config(config_file=toml)
    assert (spot.venue, spot.symbols) == ("binance-spot", ("BTCUSDT", "ETHUSDT"))
    assert spot.ws_url.startswith("wss://stream.binance.com") and "api.binance.com" in spot.rest_url
    env = load_config({"rest_url": "http://127.0.0.1:1"}, {"TRIO_HARVEST_VENUE": "binance-coinm"},
                      toml)  # the environment beats the file
    assert env.venue == "binance-coinm" and env.rest_url == "http://127.0.0.1:1"
    assert env.ws_url == "wss://dstream.binance.com"
    with pytest.raises(ConfigError, match=r"^config file .*: venue: unknown venue 'okx' \(known: "):
        toml.write_text('venue = "okx"\n')
        load_config(config_file=toml)
