"""Segment format and the checkpoint computation (pure)."""

from __future__ import annotations

from pathlib import Path

from trio_harvest.journal import format as fmt
from trio_harvest.journal.checkpoint import NONE, deletable, oldest_not_durable


def test_records_round_trip_exactly_and_a_torn_tail_ends_the_segment(tmp_path: Path) -> None:
    recs = [(1, 10, 0, fmt.FRAME, '{"stream":"a"}'), (2, 11, 3, fmt.FRAME, b"\x00\xffbin"),
            (3, 12, 1, fmt.ROW, b'{"kind":"gaps"}')]
    data = fmt.MAGIC + fmt.encode(recs)
    out, clean = fmt.decode(data)
    assert clean
    assert [(r.seq, r.recv_ns, r.conn, r.type, r.payload) for r in out] == [
        (1, 10, 0, 1, b'{"stream":"a"}'), (2, 11, 3, 1, b"\x00\xffbin"), (3, 12, 1, 4,
                                                                       b'{"kind":"gaps"}')]
    for cut in range(len(fmt.MAGIC), len(data)):  # a crash mid-write: never raises
        partial, ok = fmt.decode(data[:cut])
        assert [r.seq for r in partial] == [r.seq for r in out][: len(partial)]
    corrupt = bytearray(data)
    corrupt[-2] ^= 0xFF  # a flipped bit in the last payload: that record is dropped
    got, ok = fmt.decode(bytes(corrupt))
    assert [r.seq for r in got] == [1, 2] and not ok
    path = tmp_path / fmt.segment_name(1)
    path.write_bytes(data)
    assert [r.seq for r in fmt.read_segment(path)] == [1, 2, 3]
    assert fmt.parse_segment_name(path.name) == 1
    assert fmt.parse_segment_name("seg-00000000000000000007.jnl.zst") == 7
    assert fmt.parse_segment_name("part-1.parquet") is None


def test_compressed_segments_round_trip_and_a_torn_block_ends_the_segment(tmp_path: Path) -> None:
    first = [(1, 10, 0, fmt.FRAME, '{"stream":"a","data":{"p":"1.5"}}' * 3),
             (2, 11, 3, fmt.FRAME, b"\x00\xffbin")]
    second = [(3, 12, 1, fmt.ROW, b'{"kind":"gaps"}')]
    block = fmt.compress_block(fmt.encode(first))
    data = fmt.MAGIC_ZSTD + block + fmt.compress_block(fmt.encode(second))
    out, clean = fmt.decode(data)
    assert clean and [(r.seq, r.payload) for r in out] == [
        (1, b'{"stream":"a","data":{"p":"1.5"}}' * 3), (2, b"\x00\xffbin"),
        (3, b'{"kind":"gaps"}')]
    for cut in range(len(fmt.MAGIC_ZSTD), len(data)):  # a crash mid-write: never raises
        partial, ok = fmt.decode(data[:cut])
        assert [r.seq for r in partial] in ([], [1, 2])
        assert ok == (cut in (len(fmt.MAGIC_ZSTD), len(fmt.MAGIC_ZSTD) + len(block)))
    corrupt = bytearray(data)
    corrupt[-2] ^= 0xFF  # a flipped bit in the last block: its records are dropped
    got, ok = fmt.decode(bytes(corrupt))
    assert [r.seq for r in got] == [1, 2] and not ok
    path = tmp_path / fmt.segment_name(1)
    path.write_bytes(data)
    assert [r.seq for r in fmt.read_segment(path)] == [1, 2, 3]


def test_the_checkpoint_is_the_oldest_seq_anything_still_holds() -> None:
    assert oldest_not_durable(101) == 101  # nothing held: everything below 101 is durable
    assert oldest_not_durable(101, [NONE, 40, 70], [55], [NONE], (90,)) == 40
    assert oldest_not_durable(101, [NONE], [], [100]) == 100
    segs = [(1, 39), (40, 80), (81, 80)]  # the last one is empty
    assert deletable(segs, 40) == [1]
    assert deletable(segs, 81) == [1, 40, 81]
