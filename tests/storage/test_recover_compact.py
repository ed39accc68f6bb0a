"""Recovery and compaction know each other's crash records, against real failing writes
(``chattr +i`` on a date directory as root; else a file where it must be) and real ``recover``
and ``compact`` processes:

- a dead-letter batch whose second date cannot be written is redone with its own files only,
  never batched anew with a file that arrived meanwhile (a new batch name would write the first
  date's rows a second time);
- compaction leaves the part files of an unfinished recovery alone, and a redo never writes
  back a part file that a compaction (which did not see the recovery's record) merged already,
  however many merges deep.

Each row is counted with the reader API and with a plain glob of every Parquet file.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.dataset import scan
from trio_harvest.kinds import PRICES, Row, schema_for
from trio_harvest.storage.backlog import list_deadletter
from trio_harvest.storage.encoding import encode_ndjson
from trio_harvest.storage.fileschema import is_compacted
from trio_harvest.storage.partitions import DEADLETTER_DIR, deadletter_name

from ..cli.test_cli import run_cli
from ..conftest import make_config
from ..dsrows import write_new
from ..opsfakes import unwritable
from .test_recover import MIDNIGHT, price_row

DAY1, DAY2 = "2023-11-14", "2023-11-15"  # MIDNIGHT is the start of DAY2


def dead_letter(dl: Path, n: int, rows: list[Row]) -> None:
    (dl / PRICES).mkdir(parents=True, exist_ok=True)
    name = deadletter_name("BTCUSDT", 1_800_000_000_000 + n, len(rows), f"u{n}")
    (dl / PRICES / name).write_bytes(encode_ndjson(schema_for(PRICES), rows))


def on_disk(data: Path, name: str, *rows: Row) -> None:
    """A part file as rotation writes it (``name``'s unique part)."""
    first, last = rows[0][0], rows[-1][0]
    write_new(data, DAY1, "BTCUSDT", schema_for(PRICES), list(rows),
              f"part-{first}-{last}-{name}.parquet", {"trio_harvest.kind": PRICES})


def ids(data: Path) -> tuple[list[int], list[int]]:
    """agg_ids of BTCUSDT as the reader API and as a plain glob see them, sorted."""
    api = sorted(scan(data, PRICES, symbols="BTCUSDT").collect()["agg_id"].to_list())
    files = sorted(data.glob("venue=*/date=*/symbol=BTCUSDT/kind=prices/*.parquet"))
    glob = sorted(pl.scan_parquet(files).collect()["agg_id"].to_list()) if files else []
    return api, glob


def assert_ids(data: Path, want: list[int]) -> None:
    api, glob = ids(data)
    assert api == want, f"scan: {api}"
    assert glob == want, f"plain glob: {glob}"


def manifests(dl: Path) -> list[Path]:
    return sorted((dl / "_merging").glob("*.json"))


def test_recover_redoes_a_half_written_batch_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dl = data / DEADLETTER_DIR
    dead_letter(dl, 1, [price_row(1, MIDNIGHT - 1000, "BTCUSDT"),
                        price_row(2, MIDNIGHT + 1000, "BTCUSDT")])
    with unwritable(data / "venue=binance-usdm" / f"date={DAY2}"):
        out = run_cli("recover", "--data-dir", str(data))
        assert out.returncode == 1, out.stdout + out.stderr
        assert_ids(data, [1])  # the first date landed, the second did not
        assert len(manifests(dl)) == 1
        dead_letter(dl, 2, [price_row(3, MIDNIGHT - 500, "BTCUSDT")])  # a new file arrives
        out = run_cli("recover", "--data-dir", str(data))
        assert out.returncode == 1, out.stdout + out.stderr  # the redo fails again
        assert_ids(data, [1, 3])  # the new file alone: the first date is not written twice
    out = run_cli("recover", "--data-dir", str(data))
    assert out.returncode == 0, out.stdout + out.stderr
    assert_ids(data, [1, 2, 3])
    assert list_deadletter(dl) == [] and manifests(dl) == []


async def test_automatic_recovery_redoes_a_half_written_batch_alone(tmp_path: Path) -> None:
    """The disk fills between the two date writes of a batch: the next rounds redo that batch
    with its own file and recover the newcomer on its own."""
    cfg = make_config(tmp_path, auto_recover_after=1.0, symbols=("BTCUSDT",))
    data, dl = cfg.data_dir, cfg.deadletter_path
    dead_letter(dl, 1, [price_row(1, MIDNIGHT - 1000, "BTCUSDT"),
                        price_row(2, MIDNIGHT + 1000, "BTCUSDT")])
    auto = Harvester(cfg).ops.autorecovery
    with unwritable(data / "venue=binance-usdm" / f"date={DAY2}"):
        await auto.round(trio.current_time())
        assert auto.stats.failures == 1 and len(manifests(dl)) == 1
        assert_ids(data, [1])
        dead_letter(dl, 2, [price_row(3, MIDNIGHT - 500, "BTCUSDT")])
        await auto.round(trio.current_time())
        assert auto.stats.failures == 2 and auto.stats.files == 1
        assert_ids(data, [1, 3])
    await auto.round(trio.current_time())
    assert_ids(data, [1, 2, 3])
    assert list_deadletter(dl) == [] and manifests(dl) == []


@pytest.mark.parametrize("sees_records", [True, False], ids=["same-deadletter", "blind"])
def test_a_redone_recovery_never_brings_back_a_merged_file(
    tmp_path: Path, sees_records: bool
) -> None:
    """``blind``: the compaction runs without the recovery's dead letter (another host of the
    same bucket, or a different --deadletter-dir); it merges the recovered file, then merges
    the result again with a late file, and the redo must still not write it back."""
    data = tmp_path / "data"
    dl = data / DEADLETTER_DIR
    on_disk(data, "rot0", price_row(0, MIDNIGHT - 2000, "BTCUSDT"))
    dead_letter(dl, 1, [price_row(1, MIDNIGHT - 1000, "BTCUSDT"),
                        price_row(2, MIDNIGHT + 1000, "BTCUSDT")])
    elsewhere = tmp_path / "other-deadletter"
    elsewhere.mkdir()
    compact = ["compact", "--data-dir", str(data), "--older-than", "0", "--delete-after", "0"]
    if not sees_records:
        compact += ["--deadletter-dir", str(elsewhere)]
    with unwritable(data / "venue=binance-usdm" / f"date={DAY2}"):
        out = run_cli("recover", "--data-dir", str(data))
        assert out.returncode == 1, out.stdout + out.stderr
        assert_ids(data, [0, 1])
        out = run_cli(*compact)
        assert out.returncode == 0, out.stdout + out.stderr
        names = [p.name for p in data.glob(f"venue=binance-usdm/date={DAY1}/symbol=BTCUSDT/kind=prices/*")]
        if sees_records:  # the recovery's own file is left for its redo
            assert not [n for n in names if is_compacted(n)] and len(names) == 2
        else:
            assert len(names) == 1 and is_compacted(names[0])
            on_disk(data, "late", price_row(5, MIDNIGHT - 100, "BTCUSDT"))
            out = run_cli(*compact)  # the merged file is merged once more
            assert out.returncode == 0 and "2 files" in out.stdout, out.stdout + out.stderr
        assert_ids(data, [0, 1] if sees_records else [0, 1, 5])
    out = run_cli("recover", "--data-dir", str(data))
    assert out.returncode == 0, out.stdout + out.stderr
    want = [0, 1, 2] if sees_records else [0, 1, 2, 5]
    assert_ids(data, want)
    assert list_deadletter(dl) == [] and manifests(dl) == []
    out = run_cli(*compact)
    assert out.returncode == 0, out.stdout + out.stderr
    assert_ids(data, want)
