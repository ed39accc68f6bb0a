"""The journal checkpoint: the oldest journal position whose rows are not yet durable.

Owns one computation. Every authoritative lane remembers the journal seq that was current when
its oldest pending row arrived (``Lane.first_seq``, -1 when it holds none); rotation keeps the
seq of each batch in flight (being written, or on its way to the dead letter); a connection in
the middle of routing a frame holds that frame's seq; restart replay holds its position. Every
record below the minimum of all of these has had all its authoritative rows made durable, so the
segments that end below it may go. Pure: no trio, no I/O; narrow inputs (plain ints).
"""

from __future__ import annotations

from collections.abc import Iterable

NONE = -1  # "holds nothing"


def oldest_not_durable(next_seq: int, *holds: Iterable[int]) -> int:
    """The smallest seq among ``holds`` (ignoring ``NONE``), or ``next_seq`` (the seq the next
    record will get) when nothing is held: every record with a smaller seq is durable."""
    low = next_seq
    for group in holds:
        for seq in group:
            if 0 <= seq < low:
                low = seq
    return low


def deletable(segments: Iterable[tuple[int, int]], checkpoint: int) -> list[int]:
    """First seqs of the segments ``(first_seq, last_seq)`` whose every record is below
    ``checkpoint`` (an empty segment, ``last_seq < first_seq``, counts as below)."""
    return [first for first, last in segments if last < checkpoint]
