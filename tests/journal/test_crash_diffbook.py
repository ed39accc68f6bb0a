"""Real crashes of a diff-book run (``run --book diff``, the simulator in its own process): the
harvester is SIGKILLed three times (the last time once its books have journaled their own
state and the segments of their snapshots are gone), restarted, then stopped
cleanly. Every ``book_updates`` chain per symbol is unbroken between recorded gaps, no row of
``book_updates`` or of the books' ``orderbook`` is on disk twice, every event is in both, and the
diffs that at a kill were in the journal only (newer than any event on disk) are on disk."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import polars as pl

from trio_harvest.journal import format as fmt

from .bookchain import assert_once_and_unbroken, count, events, scan
from .crashkit import finish, harvester, kill, start_sim, stop_sim, wait_line

SYMBOLS = "BTCUSDT,ETHUSDT"
LIVES = (2.5, 3.5, 3.5)  # seconds up before each SIGKILL (the last: at least, see ``rebased``)
REBASED_WITHIN = 90.0  # the last life waits this long at most for the books to rebase
# Liquidations are not harvested: the time guard holds a stream's first frame until the next
# one (``GATE_HOLD_MAX_MS`` at most), and a liquidation stream's next frame may come minutes
# later; that hold pins the journal checkpoint below the books' states, so their snapshots stay
# their bases (replay then rightly rebuilds the books from the snapshots) for as long.
EXTRA = ("--book", "diff", "--rotate-sec", "1", "--min-file-rows", "1",
         "--journal-segment-s", "1",
         "--channels", "trades,book,quotes,book_updates,derivatives")


def journaled(journal: Path) -> dict[str, list[int]]:
    """The diff-depth update ids per symbol of the frames the journal holds on disk."""
    out: dict[str, list[int]] = {}
    for rec in fmt.iter_segments(journal.rglob("seg-*.jnl")):
        if rec.type == fmt.FRAME:
            doc = json.loads(rec.payload)
            if doc["stream"].endswith("@depth@100ms"):
                out.setdefault(doc["data"]["s"], []).append(int(doc["data"]["u"]))
    return out


def last_seq(journal: Path) -> int:
    return max((rec.seq for rec in fmt.iter_segments(journal.rglob("seg-*.jnl"))), default=0)


def rebased(journal: Path, symbols: list[str], after: int) -> bool:
    """The oldest book record the journal holds on disk is, for every symbol, a state the book
    journaled of itself after seq ``after`` (in this life): the segments of its snapshot are
    gone, so replay rebuilds it from its own state."""
    first: dict[str, tuple[int, int]] = {}
    try:
        for rec in fmt.iter_segments(journal.rglob("seg-*.jnl")):
            if rec.type in (fmt.SNAPSHOT, fmt.BOOK_STATE):
                first.setdefault(json.loads(rec.payload)["symbol"], (rec.type, rec.seq))
    except OSError:  # a segment the checkpoint passed went while being read: look again
        return False
    return all(s in first and first[s][0] == fmt.BOOK_STATE and first[s][1] > after
               for s in symbols)


def only_journaled(data: Path, symbols: list[str]) -> dict[str, list[int]]:
    """Right after a kill: the diffs the journal holds that are newer than every event of the
    symbol on disk (only the journal has them)."""
    updates = scan(data, "book_updates")
    on_disk = {s: max(events(updates, s)["update_id"].to_list(), default=-1) for s in symbols}
    return {s: [u for u in ids if u > on_disk[s]]
            for s, ids in journaled(data / "_journal").items()}


def test_sigkill_of_a_diff_book_run_writes_every_book_row_once_and_unbroken(
        tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "harvester.log"
    sim, port = start_sim(SYMBOLS, 300.0, 11, "")
    at_kill: list[dict[str, list[int]]] = []
    try:
        for life, up in enumerate(LIVES, 1):
            before = last_seq(data / "_journal")  # this life's records come after it
            proc = harvester(port, data, SYMBOLS, 50, EXTRA)
            assert wait_line(proc, log, "harvesting", 60.0), log.read_text()[-3000:]
            time.sleep(up)
            if life == len(LIVES):  # the long life: until the books rebased on their states
                deadline = time.monotonic() + REBASED_WITHIN
                while not rebased(data / "_journal", SYMBOLS.split(","), before):
                    assert time.monotonic() < deadline and proc.poll() is None, \
                        log.read_text()[-3000:]
                    time.sleep(0.2)
            kill(proc)
            at_kill.append(only_journaled(data, SYMBOLS.split(",")))
        finish(harvester(port, data, SYMBOLS, 50, ("--duration", "3", *EXTRA)), log)
    finally:
        stop_sim(sim)
    symbols = SYMBOLS.split(",")
    result = count(data, symbols)
    assert_once_and_unbroken(result)
    updates = scan(data, "book_updates")
    on_disk = {s: set(events(updates, s)["update_id"].to_list()) for s in symbols}
    kept = [(life, s, u) for life, held in enumerate(at_kill) for s, ids in held.items()
            for u in ids]
    missing = [k for k in kept if k[2] not in on_disk[k[1]]]
    # a kill right after a flush may leave a symbol with nothing only journaled: count them all
    assert len(at_kill) == len(LIVES) and len(kept) >= len(LIVES), at_kill
    assert not missing, (f"{len(missing)} of {len(kept)} diffs only journaled at a kill are "
                         f"not on disk", missing[:6], result)
    print(f"{len(kept)} diffs only journaled at the kills, all on disk; holes "
          f"{result['holes']} (all recorded); events {result['events']}")
    replays = re.findall(r"journal: replayed .* book snapshots and states of which (\d+) "
                         "states", log.read_text())
    assert len(replays) == len(LIVES), log.read_text()[-3000:]
    assert int(replays[-1]) >= 1  # after the long life: books rebuilt from their own state
    restart = scan(data, "gaps").filter(pl.col("reason") == "restart")
    assert restart.height > 0  # each downtime is recorded
