"""The command line: exit codes and one-line errors for user mistakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trio_harvest.cli import main


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
    ],
)
def test_user_mistakes_exit_2_with_one_line(args: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


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
