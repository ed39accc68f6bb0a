"""Output piped into a reader that stops early ends quietly, never with a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_inspect_into_a_reader_that_stops_early_ends_without_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "trio_harvest", "inspect", "--data-dir",
                             str(data), "--partitions", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode == 141, err.decode()
