"""Dead-letter files on local disk are group-committed, in a group of their own: a stop that
dumps many lanes pays a few syncs, and an abandoned dump is removed, never published."""

from __future__ import annotations

from pathlib import Path

import trio

from trio_harvest.kinds import schema_for
from trio_harvest.storage.encoding import decode_ndjson_line
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.store import LocalStore
from trio_harvest.storage.writer import Writer


def _writer(tmp_path: Path) -> Writer:
    return Writer(LocalStore(tmp_path / "data"), LocalStore(tmp_path / "dl"),
                  lambda kind: schema_for(kind, 5))


def _rows(symbol: str, n: int) -> list[tuple[object, ...]]:
    return [(1_700_000_000_000 + i, 1, 2, symbol, i, 100.0, 0.5, i, i, False) for i in range(n)]


async def test_many_dumps_share_few_commits_and_every_row_is_readable(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    symbols = [f"S{i:03d}USDT" for i in range(40)]
    async with trio.open_nursery() as nursery:
        for s in symbols:
            nursery.start_soon(w.dead_letter, "prices", s, _rows(s, 7), PublishGate())
    files = sorted((tmp_path / "dl" / "venue=binance-usdm" / "prices").glob("*.ndjson"))
    assert len(files) == len(symbols)
    assert w.deadletter_group.files == len(symbols)
    assert w.deadletter_group.batches < len(symbols)  # grouped, not one commit per file
    assert w.group.files == 0  # the data disk's group is not involved
    rows = [decode_ndjson_line("prices", line, i)[1]
            for f in files for i, line in enumerate(f.read_bytes().splitlines(), 1)]
    assert len(rows) == 7 * len(symbols)
    assert not list((tmp_path / "dl").rglob(".tmp-*"))


async def test_a_dump_abandoned_before_its_commit_is_never_published(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    gate = PublishGate()
    assert gate.abandon()  # the caller gave up (its timeout) before the commit ran
    try:
        await w.dead_letter("prices", "BTCUSDT", _rows("BTCUSDT", 3), gate)
    except Exception as exc:  # Abandoned: nothing was published
        assert "Abandoned" in type(exc).__name__
    else:
        raise AssertionError("an abandoned dump reported success")
    assert not list((tmp_path / "dl").rglob("*.ndjson"))
    assert not list((tmp_path / "dl").rglob(".tmp-*"))
