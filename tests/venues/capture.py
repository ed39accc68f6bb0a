"""Reading the real captures in ../shared/fixtures and replaying their books under a venue's rules.

A capture is ``<url> <-> <s>`` then ``<recv_s>: <frame>`` lines; a REST file is
``<url> -> <recv_s>: <body>`` lines. ``replay`` buffers each symbol's deltas from the start,
applies its REST snapshot when it was received (``align``), then chains (``check``), and records
every outcome and the best bid/ask after each applied delta.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trio_harvest.venues.binance_common.sequence import BRIDGE, DROP, OK, Delta
from trio_harvest.venues.binance_usdm.diffbook import BookSide


def frames(path: Path) -> Iterator[tuple[float, str]]:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("wss://")
    for line in lines[1:]:
        if not line.strip():
            continue
        recv, _, frame = line.partition(": ")
        yield float(recv), frame


def snapshots(path: Path) -> list[tuple[float, str, dict[str, Any]]]:
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        head, _, body = line.partition(": ")
        url, _, recv = head.partition(" -> ")
        out.append((float(recv), url.split("symbol=")[1].split("&")[0], json.loads(body)))
    return sorted(out)


@dataclass
class Replayed:
    snapshot_id: int = -1
    outcomes: list[str] = field(default_factory=list)
    first_applied: Delta | None = None
    # after each applied delta: (U, u, best bid price, best ask price)
    states: list[tuple[int, int, float, float]] = field(default_factory=list)


@dataclass
class _Book:
    buffer: list[Any] = field(default_factory=list)
    bids: BookSide = field(default_factory=lambda: BookSide(True))
    asks: BookSide = field(default_factory=lambda: BookSide(False))
    last_u: int | None = None  # None: no snapshot yet


def replay(events: list[tuple[float, Any]], snaps: list[tuple[float, str, dict[str, Any]]],
           check: Callable[[int, Any], str], align: Callable[[int, Any], str]
           ) -> dict[str, Replayed]:
    """``events``: (recv_s, decoded delta) in capture order."""
    books = {sym: _Book() for _, sym, _ in snaps}
    out = {sym: Replayed() for _, sym, _ in snaps}
    pending = list(snaps)

    def apply(sym: str, ev: Any) -> None:
        book, rp = books[sym], out[sym]
        assert book.last_u is not None
        if rp.first_applied is None:
            outcome = align(rp.snapshot_id, ev)
            ok = outcome == BRIDGE
        else:
            outcome = check(book.last_u, ev)
            ok = outcome == OK
        rp.outcomes.append(outcome)
        if not ok:
            return
        if rp.first_applied is None:
            rp.first_applied = ev
        for p, q in ev.bids:
            book.bids.set(p, q)
        for p, q in ev.asks:
            book.asks.set(p, q)
        book.last_u = ev.update_id
        bid, ask = book.bids.best(), book.asks.best()
        assert bid is not None and ask is not None
        rp.states.append((ev.first_update_id, ev.update_id, bid[0], ask[0]))

    for recv, ev in events:
        while pending and pending[0][0] <= recv:
            _, sym, body = pending.pop(0)
            book = books[sym]
            book.bids.load((float(p), float(q)) for p, q in body["bids"])
            book.asks.load((float(p), float(q)) for p, q in body["asks"])
            book.last_u = out[sym].snapshot_id = body["lastUpdateId"]
            for old in book.buffer:
                apply(sym, old)
            book.buffer.clear()
        if ev.symbol not in books:
            continue
        if books[ev.symbol].last_u is None:
            books[ev.symbol].buffer.append(ev)
        else:
            apply(ev.symbol, ev)
    return out


def agrees_with_tickers(rp: Replayed, tickers: list[Any]) -> tuple[int, int]:
    """(compared, matched): a ticker with update id t lines up with the book after delta k when
    ``u_k <= t < U_(k+1)`` (no update of the symbol in between)."""
    compared = matched = 0
    states = rp.states
    for t in tickers:
        for k in range(len(states) - 1):
            if states[k][1] <= t.update_id < states[k + 1][0]:
                compared += 1
                matched += (states[k][2], states[k][3]) == (t.bid, t.ask)
                break
    return compared, matched


__all__ = ["DROP", "Replayed", "agrees_with_tickers", "frames", "replay", "snapshots"]
