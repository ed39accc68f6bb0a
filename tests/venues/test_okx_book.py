"""OKX's book rule (``venues/okx/book.py``): the real 2022 capture rebuilt with every checksum
verified, and the ``seqId`` chain on the documented examples (snapshot, updates, heartbeat,
reset, a lost update, a repeated frame, REST alignment, a checksum that does not match)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trio_harvest.venues import get
from trio_harvest.venues.base import (
    APPLIED,
    BREAK,
    BUFFERED,
    DROPPED,
    SNAPSHOT,
    STALE_SNAPSHOT,
    FrameError,
)
from trio_harvest.venues.okx import book as okxbook
from trio_harvest.venues.okx.wire import OkxBook

SPOT = get("okx-spot")


def _books(fixtures_dir: Path) -> list[OkxBook]:
    out = []
    lines = (fixtures_dir / "okx_ws_2022-05-13.txt").read_text().splitlines()[1:]
    for line in lines:
        try:
            env = SPOT.decode(line.split(": ", 1)[1])
        except FrameError:
            continue
        if isinstance(env.data, OkxBook):
            out.append(env.data)
    return out


def test_the_capture_rebuilds_with_every_checksum_verified(fixtures_dir: Path) -> None:
    """290 books messages of 3 instIds: each book starts from its socket snapshot and every
    update's non-zero checksum matches the rebuilt top 25 (the capture predates seqId, so the
    chain is given here: each update follows the message before it)."""
    msgs = _books(fixtures_dir)
    assert len(msgs) == 290
    books: dict[str, okxbook.LocalBook] = {}
    seq: dict[str, int] = {}
    outcomes: list[str] = []
    for m in msgs:
        n = seq.get(m.symbol, 0)
        assert m.checksum != 0 and m.update_id == 0  # 2022: no seqId, every checksum set
        m.prev_update_id, m.update_id = (-1 if m.is_snapshot else n), n + 1
        seq[m.symbol] = n + 1
        book = books.setdefault(m.symbol, SPOT.local_book(m.symbol, 400, 200))  # type: ignore[assignment]
        outcomes.append(book.on_event(m))
    assert outcomes.count(SNAPSHOT) == 3 and outcomes.count(APPLIED) == 287
    assert sum(b.stats.checksums for b in books.values()) == 290
    for book in books.values():
        assert book.live and book.stats.checksum_breaks == 0
        (bid, _), (ask, _) = book.top(1)[0][0], book.top(1)[1][0]
        assert bid < ask  # never crossed


def test_a_wrong_checksum_is_a_break_that_names_the_rule(fixtures_dir: Path) -> None:
    msgs = _books(fixtures_dir)
    first = next(m for m in msgs if m.symbol == "BTC-USDT")
    update = next(m for m in msgs if m.symbol == "BTC-USDT" and not m.is_snapshot)
    first.update_id, update.prev_update_id, update.update_id = 1, 1, 2
    update.checksum += 1
    book = okxbook.LocalBook("BTC-USDT")
    assert book.on_event(first) == SNAPSHOT
    assert book.on_event(update) == BREAK
    assert book.last_break is not None and book.last_break.rule == "okx checksum"
    assert book.needs_snapshot and not book.top(1)[0]


def _msg(prev: int, seq: int, bids: list[list[str]] | None = None,
         asks: list[list[str]] | None = None, action: str = "update",
         ts: int = 1_700_000_000_000, checksum: int = 0) -> OkxBook:
    import json

    data: dict[str, Any] = {"asks": asks or [], "bids": bids or [], "ts": str(ts),
                            "checksum": checksum, "prevSeqId": prev, "seqId": seq}
    frame = json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action,
                        "data": [data]})
    env = SPOT.decode(frame)
    assert isinstance(env.data, OkxBook)
    return env.data


SNAP_BIDS = [["100.0", "1", "0", "1"], ["99.5", "2", "0", "1"]]
SNAP_ASKS = [["100.5", "3", "0", "1"], ["101", "4", "0", "2"]]


def test_the_documented_chain_snapshot_update_heartbeat_reset() -> None:
    """The docs' example (prevSeqId -> seqId): -1 -> 10, 10 -> 15, 15 -> 15, 15 -> 3, 3 -> 5."""
    book = okxbook.LocalBook("BTC-USDT")
    assert book.on_event(_msg(-1, 10, SNAP_BIDS, SNAP_ASKS, "snapshot")) == SNAPSHOT
    assert book.on_event(_msg(10, 15, bids=[["100.0", "0", "0", "0"]])) == APPLIED
    assert book.on_event(_msg(15, 15)) == DROPPED  # a heartbeat: nothing changes
    assert book.stats.heartbeats == 1
    assert book.on_event(_msg(15, 3, asks=[["100.5", "1", "0", "1"]])) == APPLIED  # a reset
    assert book.on_event(_msg(3, 5, bids=[["99.9", "1", "0", "1"]])) == APPLIED
    assert book.stats.resets == 1 and book.live and book.last_update_id == 5
    assert book.top(2) == ([(99.9, 1.0), (99.5, 2.0)], [(100.5, 1.0), (101.0, 4.0)])


def test_a_lost_update_breaks_and_a_repeated_one_is_dropped() -> None:
    book = okxbook.LocalBook("BTC-USDT")
    book.on_event(_msg(-1, 10, SNAP_BIDS, SNAP_ASKS, "snapshot"))
    book.on_event(_msg(10, 12, bids=[["99.7", "1", "0", "1"]]))
    assert book.on_event(_msg(10, 12, bids=[["99.7", "1", "0", "1"]])) == DROPPED  # a repeat
    assert book.on_event(_msg(-1, 10, SNAP_BIDS, SNAP_ASKS, "snapshot")) == DROPPED
    assert book.stats.duplicates == 2
    assert book.on_event(_msg(13, 14)) == BREAK  # 12 -> 13 was lost
    brk = book.last_break
    assert brk is not None and brk.rule == "okx seqId" and "expected prevSeqId=12" in brk.detail
    assert book.needs_snapshot
    # a reset the harvester missed is a break too, not a run of "duplicates"
    book2 = okxbook.LocalBook("BTC-USDT")
    book2.on_event(_msg(-1, 15, SNAP_BIDS, SNAP_ASKS, "snapshot"))
    assert book2.on_event(_msg(3, 5)) == BREAK  # 15 -> 3 was lost


def test_a_new_snapshot_on_the_socket_restarts_a_broken_book() -> None:
    book = okxbook.LocalBook("BTC-USDT")
    book.on_event(_msg(-1, 10, SNAP_BIDS, SNAP_ASKS, "snapshot"))
    assert book.on_event(_msg(11, 12)) == BREAK
    assert book.on_event(_msg(12, 13)) == BUFFERED
    assert book.on_event(_msg(-1, 20, SNAP_BIDS, SNAP_ASKS, "snapshot")) == SNAPSHOT
    assert book.live and book.on_event(_msg(20, 21)) == APPLIED


def test_rest_snapshot_alignment_by_seq_id() -> None:
    """The mode without the socket snapshot: buffer, fetch REST books, drop what it holds,
    the first kept update has prevSeqId <= snapshot seqId < seqId."""
    venue = get("okx-swap")
    book = venue.local_book("BTC-USDT", 400, 200)
    for prev, seq in ((100, 104), (104, 109), (109, 111)):
        assert book.on_event(_msg(prev, seq)) == BUFFERED
    snap = venue.parse_snapshot({"code": "0", "msg": "", "data": [
        {"asks": SNAP_ASKS, "bids": SNAP_BIDS, "ts": "1700000000000", "seqId": 106}]})
    assert venue.bridges(106, _msg(104, 109)) and not venue.bridges(106, _msg(100, 104))
    replay = book.apply_snapshot(snap)
    assert replay is not None
    assert [book.on_event(ev) for ev, _ in replay] == [DROPPED, APPLIED, APPLIED]
    assert book.live and book.last_update_id == 111
    stale = venue.local_book("BTC-USDT", 400, 200)
    stale.on_event(_msg(200, 210))
    replay = stale.apply_snapshot(snap)
    assert replay is not None and stale.on_event(replay[0][0]) == STALE_SNAPSHOT
    for bad in ({"code": "51001", "msg": "Instrument ID does not exist", "data": []},
                {"code": "0", "data": [{"asks": [], "bids": []}]}):
        try:
            venue.parse_snapshot(bad)
        except ValueError:
            continue
        raise AssertionError(f"parsed {bad}")


def test_the_checksum_of_a_documented_style_book() -> None:
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
    import zlib

    text = "3366.1:7:3366.8:9:3366:6:3368:8:3372:8"
    crc = zlib.crc32(text.encode())
    assert okxbook.checksum(bids, asks) == (crc - 2**32 if crc >= 2**31 else crc)
    book = okxbook.LocalBook("BTC-USDT")
    ok = _msg(-1, 1, [[p, s, "0", "1"] for p, s in bids], [[p, s, "0", "1"] for p, s in asks],
              "snapshot", checksum=okxbook.checksum(bids, asks))
    assert book.on_event(ok) == SNAPSHOT and book.stats.checksums == 1
    assert book.on_event(_msg(1, 2, checksum=0)) == APPLIED  # 0: not checked (since 2026-06)
    assert book.stats.checksums == 1
