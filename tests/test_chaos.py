"""Chaos end to end: the app against a simulator that misbehaves on purpose, over loopback.

For each fault: the harvester keeps writing until the end of the run; *conservation* holds
(every agg_id the simulator produced between the first and the last one in ``prices`` is in
``prices`` exactly once, with the exchange's values, or inside an ``unfilled`` gap row); health
reports the fault; the run stops cleanly (nothing dead-lettered, nothing lost). Faults are seeded
and assertions are on conservation and on "at least one", never on exact counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.summary import summarize
from trio_harvest.gaps import parse_agg_detail
from trio_harvest.ops.health import HealthReport
from trio_harvest.sim.server import Simulator
from trio_harvest.storage.inventory import inspect_dataset, venue_label

from .conftest import make_config

RUN_S = 3.0


@dataclass
class Outcome:
    h: Harvester
    status: dict[str, Any]
    report: HealthReport
    per_symbol: dict[str, dict[str, int]]

    @property
    def adversity(self) -> dict[str, Any]:
        return self.h.repair.as_dict()

    def notes(self) -> set[str]:
        return {n.code for n in self.report.notes}

    def problems(self) -> set[str]:
        return {p.code for p in self.report.problems}

    @property
    def reconnects(self) -> int:
        return sum(c["reconnects"] for c in self.status["connections"])


def read_kind(data: Path, kind: str) -> pl.DataFrame:
    files = list(data.glob(f"venue=*/date=*/symbol=*/kind={kind}/*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.read_parquet(files, hive_partitioning=True)  # symbol comes from the path


Reader = Callable[[Path, str], pl.DataFrame]  # (data dir, kind) -> every row of the kind


def tape_frame(sim: Simulator, symbol: str, lo: int, hi: int) -> pl.DataFrame:
    spec = sim.venue.spec(symbol)  # the venue's grids (COIN-M: whole contracts)
    trades = sim.tape(symbol).since(lo, hi - lo + 1)
    return pl.DataFrame({
        "agg_id": [t.agg_id for t in trades],
        "t_ts": [t.trade_ms for t in trades],
        "t_price": [float(spec.price_str(t.price)) for t in trades],
        "t_qty": [float(spec.qty_str(t.qty)) for t in trades],
        "t_first": [t.first_id for t in trades],
        "t_last": [t.last_id for t in trades],
        "t_maker": [t.buyer_maker for t in trades],
    })


def check_conservation(data: Path, sim: Simulator, symbols: tuple[str, ...],
                       last_ids_before_end: dict[str, int],
                       read: Reader = read_kind) -> dict[str, dict[str, int]]:
    prices, gaps = read(data, "prices"), read(data, "gaps")
    out: dict[str, dict[str, int]] = {}
    for symbol in symbols:
        df = prices.filter(pl.col("symbol") == symbol).sort("agg_id")
        ids = df["agg_id"]
        assert ids.n_unique() == len(ids), f"{symbol}: an agg_id is in prices twice"
        lo, hi = int(ids[0]), int(ids[-1])
        assert hi >= last_ids_before_end[symbol], f"{symbol}: stopped writing before the end"
        tape = tape_frame(sim, symbol, lo, hi)
        assert tape["agg_id"].to_list() == list(range(lo, hi + 1))
        joined = df.join(tape, on="agg_id", how="left")
        assert joined.filter(
            (pl.col("ts_ms") != pl.col("t_ts")) | (pl.col("price") != pl.col("t_price"))
            | (pl.col("qty") != pl.col("t_qty")) | (pl.col("first_id") != pl.col("t_first"))
            | (pl.col("last_id") != pl.col("t_last"))
            | (pl.col("is_buyer_maker") != pl.col("t_maker"))
        ).height == 0, f"{symbol}: a row differs from the exchange's trade"
        unfilled: list[tuple[int, int]] = []
        filled = 0
        if gaps.height:
            for detail in gaps.filter(pl.col("symbol") == symbol)["detail"]:
                parsed = parse_agg_detail(detail)
                if parsed is not None and not parsed[2]:
                    unfilled.append((parsed[0], parsed[1]))
                elif parsed is not None:
                    filled += 1
        missing = sorted(set(range(lo, hi + 1)) - set(ids.to_list()))
        outside = [i for i in missing if not any(a <= i <= b for a, b in unfilled)]
        assert not outside, f"{symbol}: agg_ids missing without an unfilled gap: {outside[:10]}"
        out[symbol] = {"rows": len(ids), "span": hi - lo + 1, "missing": len(missing),
                       "filled_gap_rows": filled}
    return out


async def run_chaos(tmp_path: Path, faults: str, *, settle: bool = False,
                    read: Reader = read_kind, **overrides: Any) -> Outcome:
    settings: dict[str, Any] = {"sim": True, "sim_rate": 600.0, "sim_seed": 3,
                                "sim_faults": f"{faults},seed=5", "backfill_delay": 0.3,
                                "shutdown_grace": 6.0,
                                # a 3 s run needs test-sized reconnect delays (still capped and
                                # jittered), or the last reconnect can land after the stop
                                "backoff_initial": 0.05, "backoff_max": 0.25}
    settings.update(overrides)
    cfg = make_config(tmp_path, **settings)
    h = Harvester(cfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        await trio.sleep(RUN_S - 1.0)
        last_ids = {s: h.simulator.tape(s).last_id for s in cfg.symbols}
        await trio.sleep(1.0)
        if settle:  # let backfill catch up (bounded) before health is judged: the gaps it
            # records, not the ids still waiting for REST, are what this run checks
            with trio.move_on_after(3.0):
                while sum(t.missing_ids for t in h.repair.trackers.values()):
                    await trio.sleep(0.05)
        status = h.ops.status()
        _, report = h.ops.health_now()
        h.request_stop("chaos over")
    summary = summarize(h)  # a clean stop: nothing dead-lettered, nothing lost
    assert summary.reason == "chaos over" and not summary.deadlettered and not summary.lost
    assert h.lanes.total_pending() == 0
    per_symbol = check_conservation(tmp_path / "data", h.simulator, cfg.symbols, last_ids, read)
    for symbol, counts in per_symbol.items():
        assert counts["rows"] >= 50, f"{symbol}: too few trades written: {counts}"
    inventory = inspect_dataset(tmp_path / "data")  # `inspect` shows the gaps and the holes
    assert inventory.gaps.rows == read(tmp_path / "data", "gaps").height
    for symbol, counts in per_symbol.items():
        listed = venue_label(cfg.venue, symbol)  # how `inspect` names it (VENUE:SYMBOL)
        assert inventory.continuity[listed].missing == counts["missing"]
        assert inventory.gaps.unfilled_ids.get(symbol, 0) >= counts["missing"]
    return Outcome(h, status, report, per_symbol)


def gap_reasons(o: Outcome) -> dict[str, int]:
    return dict(o.adversity["gaps"])


def disconnects(o: Outcome) -> None:
    assert o.reconnects >= 2
    assert gap_reasons(o).get("disconnect", 0) >= 2
    assert "gaps" in o.notes()


def stalls(o: Outcome) -> None:
    assert gap_reasons(o).get("stall", 0) >= 1 and o.reconnects >= 1
    assert any("stalled" in c["last_error"] for c in o.status["connections"])


def junk(o: Outcome) -> None:
    assert o.status["malformed"] + o.status["unexpected"] > 0
    assert o.adversity["backfill"]["rows"] > 0  # truncated trades came back over REST
    assert "gaps" in o.notes()


def oversize(o: Outcome) -> None:
    assert o.reconnects >= 1
    assert any("1009" in c["last_error"] or "TOO_BIG" in c["last_error"]
               for c in o.status["connections"])


def skipped(o: Outcome) -> None:
    bf = o.adversity["backfill"]
    assert bf["rows"] > 0 and bf["filled"] > 0
    assert gap_reasons(o).get("agg-id break", 0) > 0 and "gaps" in o.notes()
    assert sum(s["missing"] for s in o.per_symbol.values()) == 0  # all of it repaired


def duplicated(o: Outcome) -> None:
    a = o.adversity
    assert a["trade_duplicates_dropped"] > 0 and a["book_duplicates_dropped"] > 0
    assert "duplicates" in o.notes()


def book_breaks(o: Outcome) -> None:
    assert gap_reasons(o).get("book sequence break", 0) >= 1


def skewed(o: Outcome) -> None:
    assert "clock_skew" in o.notes()
    assert o.adversity["receipt_lag_ms"] < -3000  # the exchange's clock runs 5 s ahead


def rate_limited(o: Outcome) -> None:
    bf = o.adversity["backfill"]
    assert bf["rate_limited"] > 0 and bf["unfilled_ids"] > 0
    assert "backfill_waiting" in o.notes()  # while running: ids wait for the REST budget
    problems, _ = o.h.repair.findings(trio.current_time())  # after the stop: recorded unfilled
    assert "gaps_unfilled" in {code for code, _, _ in problems}
    assert o.h.simulator.rest.stats.rejected_429 > 0
    assert sum(s["missing"] for s in o.per_symbol.values()) > 0  # not vacuous: ids are missing


def lifetime_without_handover(o: Outcome) -> None:
    assert gap_reasons(o).get("disconnect", 0) >= 2
    assert o.h.simulator.injector.stats.counts.get("lifetime_closes", 0) >= 2


CASES: list[Any] = [
    pytest.param("disconnect=1", {}, disconnects, id="disconnect-periodic"),
    pytest.param("disconnect_random=0.6", {}, disconnects, id="disconnect-random"),
    pytest.param("stall=1,stall_for=3", {"stall_timeout": 0.5}, stalls, id="stall"),
    pytest.param("garbage=0.02,truncate=0.02", {}, junk, id="garbage-truncated"),
    pytest.param("oversize=0.003,oversize_bytes=70000", {"max_message_bytes": 65536}, oversize,
                 id="oversize"),
    pytest.param("skip=0.03", {}, skipped, id="skipped-ids"),
    pytest.param("dup_id=0.03,dup_frame=0.02", {}, duplicated, id="duplicates"),
    pytest.param("drop_diff=0.2", {"book": "diff"}, book_breaks, id="dropped-diff"),
    pytest.param("skew=5000", {}, skewed, id="clock-skew"),
    pytest.param("skip=0.05,weight=40", {"shutdown_grace": 3.0}, rate_limited,
                 id="rest-429-unfilled"),
    pytest.param("lifetime=1.2", {}, lifetime_without_handover, id="lifetime-no-handover"),
]


@pytest.mark.parametrize("faults, overrides, reported", CASES)
async def test_chaos(tmp_path: Path, faults: str, overrides: dict[str, Any],
                     reported: Callable[[Outcome], None]) -> None:
    outcome = await run_chaos(tmp_path, faults, settle=reported is junk, **overrides)
    reported(outcome)
