"""The journal's settings: defaults, every layer (TOML, environment, flag), clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from trio_harvest.cli.commands import main
from trio_harvest.config import ConfigError, build_config, load_config
from trio_harvest.journal.settings import journal_path


def test_defaults_put_the_journal_beside_the_partitions_under_an_underscore() -> None:
    c = build_config({"data_dir": Path("/d")})
    assert c.journal and c.journal_fsync_ms == 200 and c.raw_dir is None
    assert journal_path(c) == Path("/d/_journal")
    assert c.journal_max_bytes == 2 * 1024**3 and c.journal_segment_bytes == 64 * 1024**2


def test_every_layer_sets_them(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('journal_fsync_ms = 50\nraw_dir = "/archive"\n')
    c = load_config({"journal_segment_s": "5"}, {"TRIO_HARVEST_JOURNAL_MAX_BYTES": "1000000000",
                                                 "TRIO_HARVEST_JOURNAL_DIR": "/fast/j"}, toml)
    assert (c.journal_fsync_ms, c.raw_dir, c.journal_segment_s) == (50, Path("/archive"), 5.0)
    assert c.journal_max_bytes == 10**9 and journal_path(c) == Path("/fast/j")
    assert not load_config({"journal": False}).journal


@pytest.mark.parametrize(("layer", "message"), [
    ({"journal_fsync_ms": 0}, "journal_fsync_ms: must be 1..60000"),
    ({"journal_segment_bytes": 10}, "journal_segment_bytes: at least"),
    ({"journal_max_bytes": 100 * 1024 * 1024}, "journal_max_bytes: at least twice"),
    ({"raw_dir": Path("/d/raw")}, "raw_dir: /d/raw is inside data_dir"),
    ({"raw_dir": Path("/r"), "journal": False}, "raw_dir needs the journal"),
])
def test_bad_values_are_one_clear_line(layer: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config({"data_dir": Path("/d"), **layer})


def test_the_command_line_says_so_with_exit_code_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--journal-fsync-ms", "0", "--data-dir", str(tmp_path)]) == 2
    assert "journal_fsync_ms" in capsys.readouterr().err
    assert main(["replay", "--raw-dir", str(tmp_path / "nope"), "--data-dir",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trio_harvest: error: --raw-dir:") and "Traceback" not in err
    assert main(["replay", "--raw-dir", str(tmp_path), "--data-dir", str(tmp_path / "o"),
                 "--start", "yesterday"]) == 2
    assert "--start" in capsys.readouterr().err


def test_an_unusable_journal_or_raw_dir_stops_the_start_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["run", "--data-dir", str(tmp_path / "d"), "--journal-dir",
                 str(tmp_path / "file")]) == 2
    assert "journal dir" in capsys.readouterr().err
    assert main(["run", "--data-dir", str(tmp_path / "d"), "--raw-dir",
                 str(tmp_path / "file" / "raw")]) == 2
    assert "raw dir" in capsys.readouterr().err
