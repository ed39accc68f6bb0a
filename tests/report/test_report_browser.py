"""The report in a real browser (headless Chromium): it renders with no console error and no
network, its plots are drawn, and its screenshot is the one the README shows."""

from __future__ import annotations

from pathlib import Path

from tests.browserkit import render

from .conftest import ROOT, cli

SCREENSHOT = ROOT / "docs" / "img" / "report.png"


def test_report_renders_its_plots_with_no_console_error(dataset: Path) -> None:
    out = dataset.parent / "browser.html"
    done = cli("report", "--data-dir", str(dataset), "--out", str(out))
    assert done.returncode == 0, done.stderr
    seen = render(str(out), SCREENSHOT, settle=2.0, width=1300, evaluate={
        "plots": "document.querySelectorAll('.js-plotly-plot').length",
        "drawn": "Array.from(document.querySelectorAll('.js-plotly-plot'))"
                 ".filter(p => p.querySelector('svg.main-svg') && p._fullData).length",
        "heatmaps": "document.querySelectorAll('.js-plotly-plot .hm').length",
        "titles": "Array.from(document.querySelectorAll('.gtitle')).map(t => t.textContent)",
    })
    assert seen.console_errors == []
    assert seen.values["plots"] == 4 and seen.values["drawn"] == 4
    assert seen.values["heatmaps"] >= 3  # coverage rows, missing on top, uptime
    titles = " | ".join(seen.values["titles"])
    for part in ("Coverage", "Gap timeline", "Uptime", "Rows and bytes per kind"):
        assert part in titles, titles
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
