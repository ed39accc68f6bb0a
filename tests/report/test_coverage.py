"""The report's tables from file statistics and gap rows: pure, no disk."""

from __future__ import annotations

from trio_harvest.report.coverage import (
    FILLED,
    INTERVAL,
    UNFILLED,
    FileStat,
    GapRow,
    Slice,
    choose_bin,
    heat,
    merge_intervals,
    per_kind,
    uptime,
    worst,
)

H = 3_600_000
DAY0 = 1_700_006_400_000  # 2023-11-15T00:00Z


def prices(symbol: str, first: int, last: int, rows: int, size: int = 100) -> FileStat:
    return FileStat("prices", symbol, "2023-11-15", size, rows, [Slice(first, last, rows)])


def test_bins_are_an_hour_for_a_month_and_finer_for_a_short_run() -> None:
    assert choose_bin(30 * 24 * H) == H
    assert choose_bin(60_000) == 1_000
    assert choose_bin(2 * H) == 15_000


def test_heat_spreads_rows_over_their_range_and_marks_gaps_and_empty_bins() -> None:
    files = [prices("BTCUSDT", DAY0, DAY0 + 2 * H - 1, 200),  # hours 0 and 1
             prices("ETHUSDT", DAY0, DAY0 + H - 1, 50)]  # hour 0 only: hour 1 has no rows
    gaps = [GapRow("BTCUSDT", "btcusdt@aggTrade", DAY0 + H + 60_000, DAY0 + H + 120_000,
                   "disconnect", "")]
    h = heat(files, gaps, DAY0, DAY0 + 2 * H - 1, bin_ms=H)
    assert h.symbols == ["BTCUSDT", "ETHUSDT"] and h.bins == 2
    assert [round(v) for v in h.rows[0]] == [100, 100] and round(h.rows[1][0]) == 50
    assert h.missing[0][0] is None and h.missing[1][0] is None
    assert h.missing[0][1] is not None and abs(h.missing[0][1] - 60_000 / H) < 1e-9
    assert h.reasons[0][1] == "disconnect"
    assert h.missing[1][1] == 1.0 and h.reasons[1][1] == "no rows"


def test_heat_counts_quotes_and_book_updates_like_prices_and_orderbook() -> None:
    def of(kind: str, symbol: str, rows: int) -> FileStat:
        return FileStat(kind, symbol, "2023-11-15", 100, rows, [Slice(DAY0, DAY0 + H - 1, rows)])

    files = [of("quotes", "BTCUSDT", 30), of("prices", "BTCUSDT", 10),
             of("quotes", "ETHUSDT", 40),  # harvested for its best bid/ask alone
             of("book_updates", "SOLUSDT", 70), of("ofi", "XRPUSDT", 90)]  # preview: not data
    h = heat(files, [], DAY0, DAY0 + H - 1, bin_ms=H)
    assert h.symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert [round(r[0]) for r in h.rows] == [40, 40, 70]
    assert all(m[0] is None for m in h.missing)  # none of them shows as "no rows"


def test_uptime_is_the_share_of_harvested_time_outside_gaps_per_day() -> None:
    files = [prices("BTCUSDT", DAY0, DAY0 + 24 * H - 1, 10),
             prices("BTCUSDT", DAY0 + 24 * H, DAY0 + 36 * H - 1, 10)]
    gaps = [GapRow("BTCUSDT", "s", DAY0 + H, DAY0 + 2 * H, "disconnect", ""),
            GapRow("BTCUSDT", "t", DAY0 + H + 1, DAY0 + H + 2, "stall", ""),  # inside: counts once
            GapRow("BTCUSDT", "s", DAY0 + 30 * H, DAY0 + 33 * H, "stall", "")]
    up = uptime(files, gaps, DAY0, DAY0 + 36 * H - 1)
    assert up.days == ["2023-11-15", "2023-11-16"]
    day1, day2 = (up.percent["BTCUSDT"][d] for d in up.days)
    assert abs(day1 - 100 * 23 / 24) < 1e-9 and abs(day2 - 100 * 9 / 12) < 1e-9
    assert worst(up, gaps) == [("BTCUSDT", day2, 3)]


def test_gap_status_comes_from_the_agg_id_detail() -> None:
    def row(detail: str) -> GapRow:
        return GapRow("X", "x", 0, 1, "agg-id break", detail)

    assert row("agg_id 1..5 (5 ids): filled").status == FILLED
    assert row("agg_id 1..5 (5 ids): unfilled (backfill off)").status == UNFILLED
    assert row("").status == INTERVAL


def test_per_kind_totals_and_interval_union() -> None:
    files = [prices("A", 0, 9, 10, 1000), prices("B", 0, 9, 5, 500)]
    assert per_kind(files) == {"prices": (2, 15, 1500)}
    assert merge_intervals([(5, 9), (0, 3), (2, 6), (20, 21)]) == [(0, 9), (20, 21)]
