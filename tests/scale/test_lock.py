"""Two processes given the same shard and data dir: the second refuses with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trio_harvest.config import ConfigError
from trio_harvest.scale.lock import lock_path, shard_lock
from trio_harvest.scale.shards import Shard


def test_the_same_shard_twice_is_refused_and_released_after(tmp_path: Path) -> None:
    with shard_lock(tmp_path, Shard(1, 4), "data"):
        with pytest.raises(ConfigError, match=r"shard 1/4 of data is already being harvested by "
                                              r"pid \d+ on "):
            with shard_lock(tmp_path, Shard(1, 4), "data"):
                pass
        with shard_lock(tmp_path, Shard(2, 4), "data"):  # another shard is fine
            pass
    with shard_lock(tmp_path, Shard(1, 4), "data"):  # released
        pass
    assert lock_path(tmp_path, Shard(1, 4)) == tmp_path / "_locks" / "shard-1-of-4.lock"


def test_a_second_process_on_the_same_shard_exits_2_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with shard_lock(data, Shard(0, 2), str(data)):
        proc = subprocess.run(
            [sys.executable, "-m", "trio_harvest", "run", "--sim", "--duration", "1",
             "--symbols", "BTCUSDT,ETHUSDT", "--shard", "0/2", "--data-dir", str(data)],
            capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trio_harvest: error: shard 0/2 of ")
    assert "already being harvested" in lines[0]
