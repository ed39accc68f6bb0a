"""``report`` on a real simulated run with disconnects: the page holds the gaps in the timeline
and in the heat map, embeds everything (no network), and bad filters are one line, exit 2."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from trio_harvest.cli import main
from trio_harvest.report.build import build
from trio_harvest.report.coverage import heat, span

from .conftest import cli


def test_report_shows_the_disconnects_in_the_timeline_and_the_heat_map(dataset: Path) -> None:
    out = dataset.parent / "report.html"
    done = cli("report", "--data-dir", str(dataset), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert re.match(r"wrote .*report\.html \(\d+\.\d+ s: \d+ files, 2 symbols, \d+ gap rows\)",
                    done.stdout)
    page = out.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inline: opens offline
    assert "plotly.js" in page.lower() or "Plotly" in page
    assert page.count('"type":"heatmap"') >= 2  # coverage (rows, missing) and uptime
    assert "Gap timeline" in page and "disconnect" in page
    built = build(dataset, [])
    disconnects = [g for g in built.data.gaps if g.reason == "disconnect"]
    assert {g.symbol for g in disconnects} == {"BTCUSDT", "ETHUSDT"}
    lo, hi = span(built.data.files) or (0, 0)
    h = heat(built.data.files, built.data.gaps, lo, hi)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        marked = [r for r in h.reasons[h.symbols.index(symbol)] if "disconnect" in r]
        assert marked, f"no disconnect in {symbol}'s heat-map row"
    # the timeline draws each disconnect: its traces hold one point per gap end
    traces = [json.loads(m) for m in re.findall(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{',
                                                 page, re.S)]
    texts = [t for fig in traces for tr in fig for t in (tr.get("text") or [])
             if isinstance(t, str)]
    assert sum("disconnect" in t for t in texts) >= 2 * len(disconnects)


def test_report_filters_are_checked_against_the_dataset(
        dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(dataset.parent / "x.html")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(["report", *args])
        got = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, got.out, got.err)

    for args, msg in (
        (("--symbols", "btcusd"), "symbol 'btcusd' is not in the dataset"),
        (("--venue", "binance"),
         "--venue: 'binance' is not one of binance-coinm, binance-spot, binance-usdm"),
        (("--start", "2024-02-01", "--end", "2024-01-01"), "--end must be after --start"),
        (("--start", "yesterday"), "--start: 'yesterday' is not an ISO 8601 time"),
    ):
        done = run("--data-dir", str(dataset), "--out", out, *args)
        assert done.returncode == 2 and msg in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    done = run("--data-dir", str(dataset), "--out", out, "--symbols", "btcusdt",
               "--venue", "binance-usdm")
    assert done.returncode == 0 and "1 symbol," in done.stdout  # any case matches
    done = run("--data-dir", str(dataset.parent / "nope"), "--out", out)
    assert done.returncode == 2 and "no such directory" in done.stderr
