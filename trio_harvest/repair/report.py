"""What the adversity wiring reports: the ``adversity`` section of ``/status`` and the summary,
and the problems and notes health shows (gaps, backfill, duplicates, quarantined outliers,
handovers, clock skew).

Owns only the reading of ``Repair``'s counters into those shapes. Pure: no trio, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .coordinator import Repair

Finding = tuple[str, str, str]  # (code, subject, message)
SKEW_NOTE_MS = 2000.0  # a mean receipt lag beyond this is reported as clock skew


def as_dict(repair: Repair) -> dict[str, Any]:
    """The ``adversity`` section of ``/status`` and of the run summary."""
    st = repair.stats
    return {
        "gaps": dict(sorted(st.gaps.items())),
        "trade_duplicates_dropped": st.trade_duplicates,
        "book_duplicates_dropped": st.book_duplicates,
        "trades_quarantined": st.trade_quarantined,
        "book_quarantined": st.book_quarantined,
        "trades_implausible": st.trade_implausible,
        "resume_unreadable_files": sum(len(v) for v in repair.resume_unreadable.values()),
        "late_trades": sum(t.late for t in repair.trackers.values()),
        "interrupted_streams": len(repair.resuming),
        "missing_ids_open": sum(t.missing_ids for t in repair.trackers.values()),
        "receipt_lag_ms": None if st.lag_ms is None else round(st.lag_ms, 1),
        "backfill": repair.backfill.stats.as_dict(),
        "backfill_weight_spent": repair.budget.spent,
        "handover": repair.connector.stats.as_dict(),
    }


def findings(repair: Repair, now: float) -> tuple[list[Finding], list[Finding]]:
    """(problems, notes) for health, as (code, subject, message)."""
    problems: list[tuple[str, str, str]] = []
    notes: list[tuple[str, str, str]] = []
    st, bf = repair.stats, repair.backfill.stats
    recent = st.last_unfilled_at is not None and now - st.last_unfilled_at < 600.0
    if recent:
        problems.append(("gaps_unfilled", "prices",
                         f"{bf.unfilled_ids} agg ids could not be backfilled (recorded in "
                         f"gaps; last {now - (st.last_unfilled_at or now):.0f}s ago)"))
    if st.gaps:
        by = ", ".join(f"{r} {n}" for r, n in sorted(st.gaps.items()))
        notes.append(("gaps", "gaps", f"gaps recorded: {by}; backfill wrote {bf.rows} trades "
                      f"({bf.requests} requests, {bf.rate_limited} rate-limited)"))
    waiting = sum(t.missing_ids for t in repair.trackers.values())
    if waiting:
        notes.append(("backfill_waiting", "prices",
                      f"{waiting} agg ids missing, waiting for backfill "
                      f"({bf.rate_limited} answers so far were 429/418)"))
    if repair.resuming:
        notes.append(("interrupted", "streams",
                      f"{len(repair.resuming)} streams interrupted, waiting to resume"))
    dups = st.trade_duplicates + st.book_duplicates
    if dups:
        notes.append(("duplicates", "streams",
                      f"duplicates dropped: {st.trade_duplicates} trades, "
                      f"{st.book_duplicates} book messages"))
    if st.trade_quarantined or st.book_quarantined:
        notes.append(("quarantined", "streams",
                      f"outlier ids quarantined: {st.trade_quarantined} trades, "
                      f"{st.book_quarantined} book messages"))
    if st.lag_ms is not None and abs(st.lag_ms) > SKEW_NOTE_MS:
        notes.append(("clock_skew", "exchange",
                      f"trades arrive {st.lag_ms / 1000:+.1f}s after their event time on "
                      f"average: the exchange's clock and ours disagree (or latency is high)"))
    ho = repair.connector.stats
    if ho.handovers or ho.failures:
        notes.append(("handover", "connections",
                      f"{ho.handovers} connection handovers ({ho.failures} failed attempts)"))
    return problems, notes
