"""One report, end to end: gather what the dataset says, compute the tables, render the page.

Owns the order of those steps and the figures a caller gets back (for the command's summary
line). Blocking; writes nothing itself (the command writes the page where it is told).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .coverage import Gathered, heat, span, uptime, worst
from .gather import gather
from .page import render


@dataclass(frozen=True, slots=True)
class Built:
    html: str
    data: Gathered
    seconds: float
    symbols: int
    gaps: int


def build(data_dir: Path, deadletter_dirs: Iterable[Path], symbols: Iterable[str] | None = None,
          start_ms: int | None = None, end_ms: int | None = None,
          title: str = "trio_harvest report") -> Built:
    t0 = time.perf_counter()
    data = gather(data_dir, deadletter_dirs, symbols, start_ms, end_ms)
    covered = span(data.files, start_ms, end_ms)
    h = up = None
    bad: list[tuple[str, float, int]] = []
    if covered is not None:
        lo, hi = covered
        h = heat(data.files, data.gaps, lo, hi)
        up = uptime(data.files, data.gaps, lo, hi)
        bad = worst(up, data.gaps)
    html = render(data, h, up, title, bad, time.perf_counter() - t0)
    return Built(html, data, time.perf_counter() - t0, len({f.symbol for f in data.files}),
                 len(data.gaps))
