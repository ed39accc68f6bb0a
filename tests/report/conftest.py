"""One simulated run with disconnects, shared by the report's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..alone import locked, run_root

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "trio_harvest", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read only, so one run serves every test of the report, in whichever worker it runs: the
    first to need it makes it, under a lock, in the run's shared temp folder."""
    root = run_root(tmp_path_factory)
    folder = root / "report-dataset"
    with locked(root / "report-dataset.lock"):
        if not (folder / "made").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker's failed attempt
            done = cli("run", "--sim", "--duration", "9", "--sim-faults", "disconnect=3",
                       "--data-dir", str(folder / "data"), "--symbols", "BTCUSDT,ETHUSDT")
            assert done.returncode == 0, done.stderr[-2000:]
            (folder / "made").touch()
    return folder / "data"
