"""One simulated run with disconnects, shared by the report's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "trio_harvest", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


# read only: one run serves every test of the report (they share one xdist group, so a worker)
GROUP = pytest.mark.xdist_group("report-dataset")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("report") / "data"
    done = cli("run", "--sim", "--duration", "9", "--sim-faults", "disconnect=3",
               "--data-dir", str(data), "--symbols", "BTCUSDT,ETHUSDT")
    assert done.returncode == 0, done.stderr[-2000:]
    return data
