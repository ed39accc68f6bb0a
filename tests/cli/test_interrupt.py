"""Ctrl-C at any moment ends with one line, never a traceback; a second Ctrl-C names the exact
`recover` command (with --data-dir); `replay`'s messages are formatted log lines."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trio_harvest.app import Harvester

from ..conftest import make_config

ROOT = Path(__file__).resolve().parents[2]
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR)\s")


def start(*args: str) -> subprocess.Popen[str]:
    """The harvester as a terminal would start it: SIGINT at its default (a shell's background
    job would have it ignored)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "trio_harvest", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_at_any_moment_ends_with_one_line_never_a_traceback(tmp_path: Path) -> None:
    # while the command line is imported, while the harvester starts, while it runs (a Ctrl-C
    # before the interpreter has even loaded the package, in its first tens of ms, is Python's)
    for i, delay in enumerate((0.6, 1.2, 2.5)):
        proc = start("run", "--sim", "--duration", "30", "--data-dir", str(tmp_path / str(i)))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err[-3000:])
        # -2: CPython ends by SIGINT when a Ctrl-C interrupted code it ran through its C API
        # during an import (a flag it never clears), even though ours caught it; a shell sees
        # 130 either way
        # 0 a clean stop, 3 a clean stop before the first frame arrived: both with a summary
        assert proc.returncode in (0, 3, 130, -signal.SIGINT), (delay, proc.returncode,
                                                                err[-2000:])
        if proc.returncode in (130, -signal.SIGINT):  # before the harvester ran: one line
            assert err.strip().splitlines()[-1] == "trio_harvest: interrupted", err[-2000:]
        else:
            assert "stopped after" in out, out


def test_a_second_stop_request_names_the_recover_command_with_the_data_dir(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """(A real second Ctrl-C only lands while a final flush is still running: on a small run
    the flush is over first, so the stop request is driven directly.)"""
    h = Harvester(make_config(tmp_path, data_dir=tmp_path / "my data"))
    with caplog.at_level(logging.WARNING, logger="trio_harvest"):
        for _ in range(4):
            h.request_stop("SIGINT")
    hint = [r.getMessage() for r in caplog.records if "second stop request" in r.getMessage()]
    assert len(hint) == 1
    assert f"python -m trio_harvest recover --data-dir '{tmp_path / 'my data'}'" in hint[0]


def test_replay_messages_are_log_lines(tmp_path: Path) -> None:
    raw, data = tmp_path / "raw", tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "trio_harvest", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    done = cli("run", "--sim", "--duration", "3", "--data-dir", str(data), "--raw-dir",
               str(raw), "--journal-segment-s", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    done = cli("replay", "--raw-dir", str(raw), "--data-dir", str(tmp_path / "out"),
               "--symbols", "ETHUSDT")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines, "frames of BTCUSDT are not replayed, and that is said"
    assert all(LOG_LINE.match(ln) for ln in lines), lines[:5]
    assert done.stdout.startswith("replayed ")
