"""The real USD-M capture (diff depth, bookTicker, REST snapshots) as ``DiffBooks`` meets it:
each frame's decoded message in receive order, with each symbol's REST snapshot handed to the
books when the capture received it (as the fetcher would)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trio_harvest.repair.booksync import DiffBooks
from trio_harvest.venues.binance_usdm.decode import FrameError, decode_frame
from trio_harvest.venues.binance_usdm.diffbook import parse_snapshot


def messages(fixtures_dir: Path, books: DiffBooks) -> Iterator[tuple[int, Any]]:
    """``(recv_ms, message)`` per frame of the capture (frames that are not ours skipped)."""
    snaps: list[tuple[float, str, Any]] = []
    for line in (fixtures_dir / "binance_usdm_rest_2021-07-22.txt").read_text().splitlines():
        if line.strip():
            head, _, body = line.partition(": ")
            url, _, recv = head.partition(" -> ")
            snaps.append((float(recv), url.split("symbol=")[1].split("&")[0],
                          parse_snapshot(json.loads(body))))
    snaps.sort(key=lambda s: s[0])
    lines = (fixtures_dir / "binance_usdm_ws_2021-07-22.txt").read_text().splitlines()
    for line in lines[1:]:
        recv_s, _, frame = line.partition(": ")
        while snaps and snaps[0][0] <= float(recv_s):
            _, sym, snap = snaps.pop(0)
            books._ready[sym] = snap
            books._pending.add(sym)
        try:
            msg = decode_frame(frame).data
        except FrameError:
            continue  # kline_1m: not ours
        yield int(float(recv_s) * 1000), msg
