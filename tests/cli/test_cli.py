"""The command line: exit codes and one-line errors for user mistakes."""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trio_harvest.cli import commands as cli
from trio_harvest.cli.commands import build_parser, main
from trio_harvest.config import FIELD_NAMES, Config


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trio_harvest", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--symbols", "BTC/USDT"], "is not a symbol"),
        (["run", "--rotate-sec", "-5"], "rotate_sec: must be a positive number"),
        (["run", "--depth-levels", "7"], "depth_levels"),
        (["--bogus-flag"], "unrecognized arguments"),
        (["run", "--rotate-sec", "abc"], "invalid float value"),
        (["sim", "--rate", "abc"], "invalid float value"),
        (["bogus"], "invalid choice"),
        (["recover"], "required: --data-dir"),
        (["run", "--data-dir", ""], "--data-dir: '' is not a valid path"),
        (["run", "--sim-faults", "skip=0.1"], "--sim-faults needs --sim"),
        (["run", "--sim", "--ws-url", "ws://127.0.0.1:9443"],
         "--sim and --ws-url are exclusive: --sim runs its own simulator; to harvest from a "
         "separate `python -m trio_harvest sim`, give --ws-url and --rest-url without --sim"),
        (["run", "--sim", "--rest-url", "http://127.0.0.1:9443"], "--sim and --rest-url are exclusive"),
        (["run", "--sim", "--sim-rate", "1e9"], "sim_rate: must be a positive number of messages"),
        (["sim", "--rate", "1e9"], "--rate: must be positive and at most 100,000"),
        (["run", "--backoff-initial", "5", "--backoff-max", "1"], "backoff_max must be at least"),
        (["run", "--streams-per-connection", "0"], "streams_per_connection: must be at least 1"),
        (["run", "--venue", "binance-options"], "venue: unknown venue 'binance-options' "
         "(known: binance-usdm, binance-spot, binance-coinm, okx-swap, okx-spot, bybit-linear, "
         "bybit-spot)"),
        (["run", "--venue", "binance-coinm", "--symbols", "BTCUSDT"],
         "symbols: 'BTCUSDT' is not a binance-coinm symbol (e.g. BTCUSD_PERP, ETHUSD_PERP)"),
        (["run", "--sim", "--venue", "binance-spot", "--ws-url", "ws://127.0.0.1:9443"],
         "--sim and --ws-url are exclusive"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    assert info.value.code == 2
    assert_one_line_mistake(capsys.readouterr().err, message)


def assert_one_line_mistake(err: str, message: str) -> None:
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("trio_harvest: error: "), err


def test_unwritable_data_dir_is_a_user_mistake(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["run", "--sim", "--data-dir", str(blocker / "data"), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "data dir" in err and "cannot create" in err


def test_config_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text("no_such_setting = 1\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "unknown setting 'no_such_setting'" in capsys.readouterr().err


def test_help_explains_itself() -> None:
    out = run_cli("run", "--help")
    assert out.returncode == 0
    for flag in ("--sim", "--duration", "--data-dir", "--symbols", "--ws-url", "--rotate-sec",
                 "--config"):
        assert flag in out.stdout
    top = run_cli("--help")
    assert top.returncode == 0 and "run" in top.stdout and "sim" in top.stdout


def test_argparse_errors_name_the_subcommand_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--rotate-sec", "abc"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().endswith("(see python -m trio_harvest run --help)")


def test_data_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regular = tmp_path / "regular"
    regular.write_text("x")
    assert main(["run", "--sim", "--data-dir", str(regular), "--duration", "1"]) == 2
    assert_one_line_mistake(capsys.readouterr().err, f"data dir {regular}: exists and is not a directory")


def _dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    empty, regular = tmp_path / "empty", tmp_path / "regular"
    empty.mkdir()
    regular.write_text("not a directory")
    return empty, regular, tmp_path / "nonexistent"


@pytest.mark.parametrize("command", ["recover", "inspect"])
def test_bad_deadletter_dirs_are_user_mistakes(tmp_path: Path, command: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    empty, regular, missing = _dirs(tmp_path)
    assert main([command, "--data-dir", str(empty), "--deadletter-dir", str(regular)]) == 2
    assert_one_line_mistake(capsys.readouterr().err, f"--deadletter-dir {regular}: is not a directory")
    assert main([command, "--data-dir", str(empty), "--deadletter-dir", str(missing)]) == 2
    assert_one_line_mistake(capsys.readouterr().err, f"--deadletter-dir {missing}: no such directory")
    assert main([command, "--data-dir", str(regular)]) == 2
    assert_one_line_mistake(capsys.readouterr().err, f"--data-dir {regular}: is not a directory")
    (empty / "_deadletter").write_text("a file where the default dead letter would be")
    assert main([command, "--data-dir", str(empty)]) == 2
    assert_one_line_mistake(capsys.readouterr().err, "_deadletter (the default DATA_DIR/_deadletter): "
                            "is not a directory")


def test_recover_without_a_default_deadletter_has_nothing_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty, _regular, _missing = _dirs(tmp_path)
    assert main(["recover", "--data-dir", str(empty)]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == f"nothing to recover: {empty / '_deadletter'} does not exist"
    assert out.err == ""
    assert main(["recover", "--data-dir", str(empty), "--json"]) == 0
    assert '"files_recovered": 0' in capsys.readouterr().out


def test_sim_port_in_use_is_a_user_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["sim", "--port", str(port), "--duration", "0.1"]) == 2
    assert_one_line_mistake(capsys.readouterr().err, f"cannot listen on 127.0.0.1:{port}")


def test_an_interrupt_inside_a_nursery_is_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(_args: argparse.Namespace) -> int:
        raise BaseExceptionGroup("nursery", [KeyboardInterrupt()])

    monkeypatch.setattr(cli, "_run", interrupted)
    assert main(["run"]) == 130
    assert capsys.readouterr().err.strip() == "trio_harvest: interrupted"


def _run_parser() -> argparse.ArgumentParser:
    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    return sub.choices["run"]  # type: ignore[no-any-return]


def test_help_shows_no_argparse_defaults() -> None:
    for command in ("run", "sim", "recover", "inspect"):
        out = run_cli(command, "--help")
        assert out.returncode == 0
        assert "(default: None)" not in out.stdout and "(default: )" not in out.stdout, command
        assert "(default: " not in out.stdout.replace("(default: run until", "").replace(
            "(default: serve until", ""), command


def test_every_run_flag_states_the_real_default() -> None:
    defaults = {name: getattr(Config(), name) for name in FIELD_NAMES}
    for action in _run_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        text = action.help or ""
        assert "default" in text, action.option_strings
        value = defaults.get(action.dest)
        if isinstance(value, bool) or value in (None, ""):
            continue
        if isinstance(value, tuple):
            shown = ",".join(value)
        elif isinstance(value, float):
            shown = f"{value:g}"
        else:
            shown = str(value)
        assert re.search(rf"(?<![\w.]){re.escape(shown)}(?!\w)", text), (action.dest, shown, text)


def test_every_scalar_setting_has_a_run_flag() -> None:
    dests = {action.dest for action in _run_parser()._actions}
    assert set(FIELD_NAMES) - dests == {"watermarks", "signals"}
