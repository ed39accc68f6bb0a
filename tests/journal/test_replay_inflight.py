"""A crash while a diff book's files are being written: the rows of the writes in flight are
written by the restart's replay, once (their frames stay journaled until they are durable)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.journal.bookchain import assert_once_and_unbroken, count, events, scan
from tests.journal.test_replay_diffbook import SYMBOLS, config, crash, exchange, journaled
from trio_harvest.app import Harvester
from trio_harvest.kinds import BOOK_UPDATES, ORDERBOOK
from trio_harvest.storage.gate import PublishGate
from trio_harvest.storage.partitions import Partition


@pytest.mark.parametrize("hung", [(BOOK_UPDATES,), (BOOK_UPDATES, ORDERBOOK)],
                         ids=["book_updates-only", "both-kinds"])
async def test_book_rows_whose_write_was_in_flight_at_a_crash_are_replayed_into_the_dataset(
        tmp_path: Path, hung: tuple[str, ...]) -> None:
    """``book_updates-only``: the orderbook rows of the same events are on disk (the replay's
    check of one kind never skips the other); ``both-kinds``: neither is."""
    async with exchange(5) as urls:
        cfg = config(tmp_path, urls)
        first = Harvester(cfg)
        save = first.rotation._save
        stuck = trio.Event()

        async def hanging(part: Partition, gate: PublishGate) -> object:
            # once some book rows are on disk, BTCUSDT's next book files never finish writing
            if (part.symbol == "BTCUSDT" and part.kind in hung
                    and first.rotation.stats.kind(BOOK_UPDATES).rows_written > 0):
                stuck.set()
                await trio.sleep_forever()
            return await save(part, gate)

        first.rotation._save = hanging
        await crash(first, stuck.is_set)
        last = journaled(cfg.data_dir / "_journal")
        # as after SIGKILL: the batches being written are in no file (their frames are
        # journaled), none in the dead letter
        assert not list(cfg.deadletter_path.rglob("*.ndjson"))

        second = Harvester(config(tmp_path, urls, duration=1.0))
        await second.run()
        result = count(cfg.data_dir, list(SYMBOLS))
        assert_once_and_unbroken(result)
        updates = scan(cfg.data_dir, "book_updates")
        for symbol in SYMBOLS:
            assert last[symbol] in set(events(updates, symbol)["update_id"].to_list()), symbol
