"""The journal on its own: group commit, rolls, what a restart finds, bounds, archive."""

from __future__ import annotations

import os
from pathlib import Path

import trio
import zstandard

from trio_harvest.journal import format as fmt
from trio_harvest.journal.journal import Journal


async def started(directory: Path, **kw: object) -> Journal:
    j = Journal(directory, **kw)  # type: ignore[arg-type]
    await trio.to_thread.run_sync(j.open)
    return j


async def test_appends_are_committed_in_groups_and_segments_roll_by_size(tmp_path: Path) -> None:
    # uncompressed: these padded frames would compress to almost nothing and never roll
    j = await started(tmp_path, segment_bytes=4096, segment_s=3600.0, compress_level=None)
    j.checkpoint = lambda: 1  # nothing durable yet: every segment stays
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        for i in range(200):
            assert j.append(i % 3, f'{{"frame":{i},"pad":"{"x" * 40}"}}') == i + 1
            if i % 50 == 49:
                await j.tick()
        await j.tick()
        nursery.cancel_scope.cancel()
    assert j.cursor == [200] and j.stats.records == 200 and j.stats.commits >= 4
    assert len(j.segments) >= 3  # rolled by size
    records = list(fmt.iter_segments(tmp_path.glob("seg-*.jnl")))
    assert [r.seq for r in records] == list(range(1, 201))
    assert records[7].payload.startswith(b'{"frame":7,') and records[7].conn == 1


async def test_a_restart_continues_after_every_old_segment_even_an_empty_or_torn_one(
        tmp_path: Path) -> None:
    (tmp_path / fmt.segment_name(1)).write_bytes(
        fmt.MAGIC + fmt.encode([(1, 5, 0, fmt.FRAME, b"a"), (2, 6, 0, fmt.FRAME, b"b")])[:-1])
    (tmp_path / fmt.segment_name(3)).write_bytes(fmt.MAGIC)  # rolled, then killed: empty
    j = await started(tmp_path)
    assert [(s.first_seq, s.last_seq) for s in j.old] == [(1, 1), (3, 2)]
    j.checkpoint = lambda: 1  # not replayed yet
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)  # opening the next segment must not collide with seg 3
        assert not j.failing
        assert j.append(0, "c") == 4
        await j.tick()
        nursery.cancel_scope.cancel()
    assert [r.seq for r in fmt.iter_segments(tmp_path.glob("seg-*.jnl"))] == [1, 4]


async def test_when_the_disk_cannot_keep_up_memory_stays_bounded_and_it_says_so(
        tmp_path: Path) -> None:
    outages: list[tuple[int, int, str]] = []
    j = await started(tmp_path, buffer_bytes=1000, memory_bytes=5000)
    j.on_unprotected = lambda a, b, why: outages.append((a, b, why))
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        for _ in range(100):  # no checkpoint between: 100 x 100 bytes > memory_bytes
            j.append(0, "x" * 100)
        assert j.pending_bytes <= 5000 + 100 and "memory bound" in j.failing
        assert j.stats.unprotected > 0
        await j.tick()  # seals what was written, opens a fresh segment: journaling again
        assert not j.failing and len(outages) == 1
        nursery.cancel_scope.cancel()


async def test_close_removes_what_the_checkpoint_passed_or_archives_it(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    j = await started(tmp_path / "j", raw_dir=raw, segment_bytes=1024, segment_s=3600.0)
    held = [1]
    j.checkpoint = lambda: held[0]
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        for i in range(60):
            j.append(0, f"frame-{i:04d}-" + os.urandom(32).hex())  # compressed, still rolls
            if i % 10 == 9:
                await j.tick()
        assert j.stats.archived == 0  # held at seq 1: nothing may go
        held[0] = j.seq + 1
        await j.close()
        nursery.cancel_scope.cancel()
    assert not list((tmp_path / "j").glob("seg-*"))
    archived = sorted(raw.glob("date=*/seg-*.jnl.zst"))
    assert len(archived) == j.stats.archived >= 2
    seqs = [r.seq for r in fmt.iter_segments(archived)]
    assert seqs == list(range(1, 61))
    first = zstandard.ZstdDecompressor().decompress(archived[0].read_bytes(),
                                                    max_output_size=1 << 20)
    assert first.startswith(fmt.MAGIC_ZSTD)  # the journal writes compressed segments


async def test_an_unusable_journal_dir_never_stops_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    outages: list[str] = []
    j = await started(blocker / "journal")  # mkdir fails: logged, not raised
    j.on_unprotected = lambda a, b, why: outages.append(why)
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        assert j.failing and j.append(0, "frame") == 1 and j.stats.unprotected == 1
        blocker.unlink()  # the disk allows again
        await j.tick()
        assert not j.failing and len(outages) == 1
        nursery.cancel_scope.cancel()


async def test_two_harvesters_never_share_a_journal(tmp_path: Path) -> None:
    import pytest

    from trio_harvest.config import ConfigError

    first = await started(tmp_path)
    with pytest.raises(ConfigError, match="in use by another harvester"):
        await started(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        nursery.cancel_scope.cancel()
    await started(tmp_path)  # released when the first one ended


async def test_a_segment_found_at_start_up_stays_until_restart_replay_has_read_it(
        tmp_path: Path) -> None:
    # The commit task (and its housekeeping) starts before the replay: a venue whose listing
    # is read over REST first (OKX) leaves it running for a while, and the checkpoint function
    # (lanes empty, the replay not yet holding its position) says all is durable. The segments
    # an earlier run left are still the replay's to read.
    (tmp_path / fmt.segment_name(1)).write_bytes(
        fmt.MAGIC + fmt.encode([(1, 5, 0, fmt.FRAME, b"a"), (2, 6, 0, fmt.FRAME, b"b")]))
    j = await started(tmp_path)
    j.checkpoint = lambda: j.seq + 1  # nothing in any lane, no replay running yet
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        await j.tick()
        assert (tmp_path / fmt.segment_name(1)).exists() and j.old  # not replayed yet
        assert j.stats.deleted == 0
        j.replayed()
        await j.tick()
        assert not (tmp_path / fmt.segment_name(1)).exists() and not j.old
        assert j.stats.deleted == 1
        nursery.cancel_scope.cancel()


async def test_a_run_stopped_before_its_replay_keeps_the_segments_it_found(
        tmp_path: Path) -> None:
    (tmp_path / fmt.segment_name(1)).write_bytes(
        fmt.MAGIC + fmt.encode([(1, 5, 0, fmt.FRAME, b"a")]))
    j = await started(tmp_path)
    j.checkpoint = lambda: j.seq + 1
    async with trio.open_nursery() as nursery:
        await nursery.start(j.run)
        j.append(0, "c")
        await j.close()  # e.g. stopped while the listing was read: no replay ran
        nursery.cancel_scope.cancel()
    # the old segment stays for the next run's replay (and what followed it: the hold is a
    # position; that replay skips what is on disk)
    assert [r.seq for r in fmt.iter_segments(tmp_path.glob("seg-*.jnl"))] == [1, 2]
