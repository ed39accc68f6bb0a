"""The report's HTML: Plotly figures of the coverage tables, in one self-contained file.

Owns the page's layout and the figures (heat map of coverage with missing data on top, gap
timeline coloured by status, uptime per symbol and day, rows and bytes per kind) and the small
tables (dead letter, quarantine, worst symbols). Plotly's JavaScript is embedded once, inline,
so the file opens with no network. Never reads the dataset: it gets ``coverage``'s tables.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.colors as pcolors
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ..storage.inventory import human_size
from .coverage import (
    FILLED,
    INTERVAL,
    UNFILLED,
    Gathered,
    Heat,
    Uptime,
    gap_counts,
    per_kind,
)

MAX_TIMELINE = 5_000  # gap rows drawn (the latest); the counts table has them all
STATUS_COLOURS = {FILLED: "#2ca02c", UNFILLED: "#d62728", INTERVAL: "#ff7f0e"}
STATUS_LABELS = {FILLED: "agg ids filled by backfill", UNFILLED: "agg ids unfilled (missing)",
                 INTERVAL: "time interval (disconnect, stall, …)"}
ROW_PX, MIN_PX, MAX_PX = 18, 260, 9_000


def _t(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _height(n: int) -> int:
    return max(MIN_PX, min(MAX_PX, 120 + ROW_PX * n))


Figure = dict[str, Any]  # a Plotly figure as plain data: big grids skip per-cell validation


def _scale(colours: list[str]) -> list[list[Any]]:
    """A named Plotly scale as explicit stops (plotly.js names run the other way round)."""
    return [[i / (len(colours) - 1), c] for i, c in enumerate(colours)]


BLUES = _scale(pcolors.sequential.Blues)
RED_YELLOW_GREEN = _scale(pcolors.diverging.RdYlGn)
MISSING = [[0, "#fcbba1"], [1, "#a50f15"]]


def _layout(**kw: Any) -> dict[str, Any]:
    """A figure's layout with Plotly's default look (a plain-data figure gets no template)."""
    return {"template": pio.templates["plotly"].to_plotly_json(), **kw}


def heat_figure(h: Heat) -> Figure:
    x = [_t(h.origin_ms + j * h.bin_ms) for j in range(h.bins)]
    rows = [[round(v) for v in line] for line in h.rows]
    missing = [[None if v is None else round(v, 3) for v in line] for line in h.missing]
    traces = [
        {"type": "heatmap", "z": rows, "x": x, "y": h.symbols, "colorscale": BLUES,
         "name": "rows", "colorbar": {"title": {"text": "rows"}, "x": 1.0},
         "hovertemplate": "%{y} %{x}<br>~%{z} rows<extra></extra>"},
        {"type": "heatmap", "z": missing, "x": x, "y": h.symbols, "text": h.reasons,
         "name": "missing", "zmin": 0, "zmax": 1,
         "colorscale": MISSING, "showscale": True,
         "colorbar": {"title": {"text": "missing"}, "x": 1.08, "tickformat": ".0%"},
         "hovertemplate": "%{y} %{x}<br>missing %{z:.0%}: %{text}<extra></extra>"},
    ]
    layout = _layout(title={"text": f"Coverage: rows per symbol and {_bin_name(h.bin_ms)} "
                                    "(red: data missing)"},
                     height=_height(len(h.symbols)),
                     yaxis={"autorange": "reversed", "type": "category"},
                     margin={"l": 110, "r": 40, "t": 50, "b": 40})
    return {"data": traces, "layout": layout}


def _bin_name(ms: int) -> str:
    if ms >= 3_600_000:
        return f"{ms // 3_600_000} h".replace("1 h", "hour")
    if ms >= 60_000:
        return f"{ms // 60_000} min"
    return f"{ms // 1000} s"


def timeline_figure(data: Gathered) -> Figure:
    gaps = data.gaps[-MAX_TIMELINE:]
    traces = []
    symbols = sorted({g.symbol for g in gaps})
    for status in (INTERVAL, FILLED, UNFILLED):  # the rarer on top
        own = [g for g in gaps if g.status == status]
        xs: list[Any] = []
        ys: list[Any] = []
        texts: list[Any] = []
        for g in own:
            text = html.escape(f"{g.reason} · {g.stream} · {g.detail} · "
                               f"{(g.end_ms - g.start_ms) / 1000:.3f} s")
            xs += [_t(g.start_ms), _t(g.end_ms), None]
            ys += [g.symbol, g.symbol, None]
            texts += [text, text, None]
        traces.append({
            "type": "scatter", "x": xs, "y": ys, "text": texts, "mode": "lines+markers",
            "name": STATUS_LABELS[status],
            "line": {"color": STATUS_COLOURS[status], "width": 8}, "marker": {"size": 7},
            "hovertemplate": "%{y} %{x}<br>%{text}<extra></extra>",
            "visible": True if own else "legendonly"})
    title = "Gap timeline (from the gaps kind)"
    if len(data.gaps) > len(gaps):
        title += f": the latest {len(gaps):,} of {len(data.gaps):,} rows"
    layout = _layout(title={"text": title}, height=_height(len(symbols)),
                     xaxis={"type": "date"},
                     yaxis={"type": "category", "categoryorder": "category descending"},
                     legend={"orientation": "h", "y": -0.15},
                     margin={"l": 110, "r": 40, "t": 50, "b": 40})
    return {"data": traces, "layout": layout}


def uptime_figure(up: Uptime) -> Figure:
    symbols = list(up.percent)
    z = [[_round(up.percent[s].get(d)) for d in up.days] for s in symbols]
    text = [[f"{v:.2f}%" if v is not None else "" for v in row] for row in z]
    trace = {"type": "heatmap", "z": z, "x": up.days, "y": symbols, "text": text,
             "texttemplate": "%{text}", "zmin": 90, "zmax": 100, "colorscale": RED_YELLOW_GREEN,
             "colorbar": {"title": {"text": "uptime %"}},
             "hovertemplate": "%{y} %{x}: %{z:.3f}% without a gap<extra></extra>"}
    layout = _layout(title={"text": "Uptime per symbol and day (share of its harvested time not "
                                    "in a gap)"},
                     height=_height(len(symbols)), xaxis={"type": "category"},
                     yaxis={"autorange": "reversed", "type": "category"},
                     margin={"l": 110, "r": 40, "t": 50, "b": 40})
    return {"data": [trace], "layout": layout}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def kinds_figure(data: Gathered) -> go.Figure:
    kinds = per_kind(data.files)
    names = list(kinds)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("rows", "bytes"))
    fig.add_trace(go.Bar(x=names, y=[kinds[k][1] for k in names], name="rows",
                         marker_color="#1f77b4"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[kinds[k][2] for k in names], name="bytes",
                         marker_color="#9467bd"), row=1, col=2)
    fig.update_layout(title="Rows and bytes per kind", height=360, showlegend=False,
                      margin={"l": 60, "r": 40, "t": 70, "b": 40})
    return fig


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.2em .6em;
text-align:right} th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.note{color:#666;font-size:.9em}
"""


def render(data: Gathered, h: Heat | None, up: Uptime | None, title: str,
           worst: Sequence[tuple[str, float, int]], elapsed_s: float) -> str:
    """The whole page. ``worst``: (symbol, lowest daily uptime %, gap rows), worst first."""
    kinds = per_kind(data.files)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>data dir {html.escape(data.data_dir)} · generated "
             f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M:%S} UTC in {elapsed_s:.2f} s from Parquet "
             f"footers and the gaps kind · {len(data.files):,} files</p>"]
    figures: list[Figure | go.Figure] = []
    if h is not None and h.symbols:
        figures.append(heat_figure(h))
    figures.append(timeline_figure(data))
    if up is not None and up.percent:
        figures.append(uptime_figure(up))
    figures.append(kinds_figure(data))
    for i, fig in enumerate(figures):
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0),
                                 config={"displaylogo": False}, validate=False))
    parts.append("<h2>Rows and bytes per kind</h2>")
    parts.append(_table(("kind", "files", "rows", "bytes"),
                        [(k, f"{n:,}", f"{r:,}", human_size(b)) for k, (n, r, b) in kinds.items()]))
    parts.append("<h2>Gaps per reason and status</h2>")
    parts.append(_table(("reason", "status", "rows", "time covered (s)"),
                        [(r, s, f"{n:,}", f"{ms / 1000:,.3f}")
                         for (r, s), (n, ms) in gap_counts(data.gaps).items()])
                 if data.gaps else "<p>no gaps recorded</p>")
    if worst:
        parts.append("<h2>Worst symbols</h2>")
        parts.append(_table(("symbol", "lowest daily uptime %", "gap rows"),
                            [(s, f"{u:.3f}", f"{n:,}") for s, u, n in worst]))
    parts.append("<h2>Dead letter and quarantine</h2>")
    dl_rows = [(k, f"{n:,}", f"{r:,}") for k, (n, r) in sorted(data.deadletter_by_kind.items())]
    parts.append(_table(("dead letter", "files", "rows"),
                        [*dl_rows, ("total", f"{data.deadletter_files:,}",
                                    f"{data.deadletter_rows:,}")]))
    parts.append(_table(("quarantine (DEADLETTER/_rejected)", "files", "lines"),
                        [("rejected", f"{data.quarantine_files:,}",
                          f"{data.quarantine_lines:,}")]))
    broken = [f for f in data.files if f.error]
    if broken:
        parts.append(f"<p>{len(broken)} file(s) whose footer could not be read "
                     f"(run <code>inspect</code> for the list)</p>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")
