"""The features task: on a one-second grid of trio time, emit the closed seconds of every symbol.

Owns *when* per-second rows are produced: a second is closed once the wall clock ``now_ms()``
(injectable) passes its end plus ``grace_ms``; each closed second is emitted exactly once (the
tail window's cursor guarantees it). *What* is computed lives in ``SignalEngine.close_seconds``
and ``features.py`` (Polars over the tail window only, so a tick costs O(window), never
O(buffered for writing)). Never does I/O: rows go to the injected, non-blocking ``emit``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio

from ..kinds import Row
from .batches import flush_batches
from .engine import SignalEngine
from .features import aggregate_many

log = logging.getLogger(__name__)

Emit = Callable[[str, Row], None]


def emit_closed(engines: Mapping[str, SignalEngine], emit: Emit, now_ms: int, *,
                grace: bool = True) -> int:
    """One tick: for each symbol, emit the rows of the seconds closed by ``now_ms`` (minus the
    grace unless ``grace`` is False). Returns the number of rows emitted. The per-second sums of
    every symbol come from one Polars query (``features.aggregate_many``), not one per symbol.

    A failure inside one symbol's computation is logged and its seconds are skipped, so a bug in
    a preview signal can neither stop the other symbols nor make the tail grow."""
    flush_batches(engines.values())  # what is read in batches: every symbol's in one pass
    # Nothing is waiting now, and nothing arrives before the tick returns: the engines skip
    # the flushes they would make before closing (thousands of empty reads at a whole venue).
    for engine in engines.values():
        engine._flushing = True
    try:
        return _close(engines, emit, now_ms, grace)
    finally:
        for engine in engines.values():
            engine._flushing = False


def _close(engines: Mapping[str, SignalEngine], emit: Emit, now_ms: int, grace: bool) -> int:
    todo: list[tuple[str, SignalEngine, int, int]] = []
    for symbol, engine in engines.items():
        upto = (now_ms - (engine.params.grace_ms if grace else 0)) // 1000
        try:
            span = engine.span_to_close(upto)
        except Exception:
            _skip(symbol, engine, upto)
            continue
        if span is not None:
            todo.append((symbol, engine, span[0], upto))
    if not todo:
        return 0
    try:  # one symbol: its own query (a plain select for one second) beats a group_by
        sums: list[dict[int, Any]] | None = None if len(todo) == 1 else aggregate_many(
            [(engine.tail, start, upto) for _, engine, start, upto in todo])
    except Exception:  # then each symbol on its own, so one bad tail costs only its own seconds
        log.exception("features: the batched aggregation failed; computing symbol by symbol")
        sums = None
    n = 0
    for i, (symbol, engine, start, upto) in enumerate(todo):
        try:
            rows = engine.close_span(start, upto, sums[i] if sums is not None else None)
        except Exception:
            _skip(symbol, engine, upto)
            continue
        for kind, row in rows:
            emit(kind, row)
        n += len(rows)
    return n


def _skip(symbol: str, engine: SignalEngine, upto: int) -> None:
    log.exception("features: computing %s up to second %d failed; seconds skipped", symbol, upto)
    engine.tail.advance(upto * 1000)


async def run_features(
    engines: Mapping[str, SignalEngine],
    emit: Emit,
    *,
    now_ms: Callable[[], int],
    interval: float = 1.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Tick every ``interval`` seconds of trio time on a fixed grid (a slow tick skips the grid
    points it missed instead of bunching up) and emit what closed since the last tick."""
    if not interval > 0:
        raise ValueError(f"interval must be positive, got {interval!r}")
    origin = trio.current_time()
    k = 0
    task_status.started()
    while True:
        k += 1
        await trio.sleep_until(origin + k * interval)
        emit_closed(engines, emit, now_ms())
        behind = int((trio.current_time() - origin) // interval)
        k = max(k, behind)


def flush_all(engines: Mapping[str, SignalEngine], emit: Emit,
              now_ms: Callable[[], int] | int) -> int:
    """Shutdown path: emit every second complete by ``now_ms`` (its end passed; no grace), so
    nothing computed is left behind. Synchronous; returns the number of rows emitted."""
    now = now_ms if isinstance(now_ms, int) else now_ms()
    return emit_closed(engines, emit, now, grace=False)
