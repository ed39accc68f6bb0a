"""The dead letter's old place (DATA_DIR/deadletter) is still recovered: moved, file by file,
to DATA_DIR/_deadletter by `recover` and at start-up; `inspect` counts both before that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trio_harvest.cli import main
from trio_harvest.storage.dlmove import adopt_legacy

from ..opsfakes import logging_restored

NAME = "BTCUSDT_1700006400000_2.ndjson"
LINE = {"ts_ms": 1_700_006_400_000, "event_ms": 1_700_006_400_000,
        "recv_ms": 1_700_006_400_000, "symbol": "BTCUSDT", "agg_id": 1, "price": 1.0,
        "qty": 1.0, "first_id": 1, "last_id": 1, "is_buyer_maker": False}


def _legacy(data: Path) -> Path:
    f = data / "deadletter" / "prices" / NAME
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps(LINE) + "\n" + json.dumps({**LINE, "agg_id": 2}) + "\n")
    return f


def test_adopt_moves_every_file_once_and_removes_the_old_folder(tmp_path: Path) -> None:
    old = _legacy(tmp_path)
    (old.parent / ".tmp-x").write_text("half")
    new = tmp_path / "_deadletter"
    assert adopt_legacy(tmp_path, tmp_path / "elsewhere") == 0  # not the default: untouched
    assert adopt_legacy(tmp_path, new) == 1
    assert (new / "prices" / NAME).read_text().count("\n") == 2 and not old.exists()
    assert (tmp_path / "deadletter").exists()  # the temp file stays, and so its folder
    (old.parent / ".tmp-x").unlink()
    assert adopt_legacy(tmp_path, new) == 0 and not (tmp_path / "deadletter").exists()


def test_inspect_counts_the_old_place_and_recover_replays_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _legacy(data)
    with logging_restored():
        assert main(["inspect", "--data-dir", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deadletter"]["rows"] == 2
    with logging_restored():
        assert main(["inspect", "--data-dir", str(data)]) == 0
    assert "dead letter: 1 file, 2 rows" in capsys.readouterr().out
    with logging_restored():
        assert main(["recover", "--data-dir", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_recovered"] == 2
    assert not (data / "deadletter").exists()
    assert list((data / "venue=binance-usdm" / "date=2023-11-15" / "symbol=BTCUSDT" / "kind=prices"
                 ).glob("*.parquet"))
