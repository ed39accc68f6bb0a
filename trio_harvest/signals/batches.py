"""Quotes and depth messages computed in batches: every symbol's rows since the last read, in
one NumPy pass.

Owns the batch side of ``SignalEngine.read_quotes`` / ``read_depth``: take each engine's unread
rows from its lane's tap, compute what ``on_quote`` / ``on_book_levels`` compute per message
(the best-level OFI against the quote before; the multi-level OFI, level sizes and best level of
a depth row, ``depthbatch.py``), with each symbol's carried previous state in front of its own
run, and append the results to the symbol's ``ofi`` lane and tail in bulk. A run that cannot be
done bit for bit here (a depth row with a missing level) is computed row by row.

Never raises: a failure is logged and costs only the derived rows of the batch (symbol by
symbol when it can). Never imports trio, never does I/O.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import numpy as np

from ..venues import QUOTE_SOURCE
from .depthbatch import derive

if TYPE_CHECKING:
    from .engine import SignalEngine

log = logging.getLogger(__name__)

IMB_LEVELS = 5  # the depth sizes the tail keeps per side (``engine.IMB_LEVELS``)
# at most this many rows are computed one by one, as the messages would have been: a batch
# costs a few dozen NumPy calls, which only pays for more (a stream whose times fall outside
# the tail's span makes every message a batch of one)
FEW = 8
Todo = list[tuple["SignalEngine", list[Any]]]


def flush_batches(engines: Iterable[SignalEngine]) -> None:
    """Everything the engines read in batches and have not computed yet (the features tick,
    benchmarks): trades, quotes, then depth."""
    engines = list(engines)
    flush_trades(engines)
    flush_quotes(engines)
    flush_depth(engines)


def flush_trades(engines: Iterable[SignalEngine], *, keep_last: int = 0) -> None:
    """The trades each engine's ``prices`` lane took since it last looked (not those marked
    unseen), computed together: per trade its CVD, into its ``cvd`` lane and its tail as
    ``on_trade_record`` would have put them."""
    _flush(engines, "_ttap", keep_last, _trades, _trades_few, "trades")


def flush_depth(engines: Iterable[SignalEngine], *, keep_last: int = 0) -> None:
    """The depth rows each engine's ``orderbook`` lane took since it last looked, computed
    together: per row its multi-level OFI, level sums and best level, into its ``ofi`` lane and
    its tail as ``on_book_levels`` would have put them."""
    _flush(engines, "_tap", keep_last, _depth, _depth_few, "depth")


def flush_quotes(engines: Iterable[SignalEngine]) -> None:
    """The quotes each engine's ``quotes`` lane took since it last looked, computed together:
    per quote its best-level OFI, into its ``ofi`` lane and its tail as ``on_quote`` would
    have put them."""
    _flush(engines, "_qtap", 0, _quotes, _quotes_few, "quotes")


def _flush(engines: Iterable[SignalEngine], tap_name: str, keep_last: int,
           many: Callable[[Todo], None], few: Callable[[Todo], None], what: str) -> None:
    todo: Todo = []
    rows = 0
    for e in engines:
        tap = getattr(e, tap_name)
        if tap is None or e._flushing:
            continue
        segments = tap.take(keep_last)
        if segments:
            todo.append((e, segments))
            for _, a, z in segments:
                rows += z - a
    if not todo:
        return
    compute = few if rows <= FEW else many
    for e, _ in todo:
        e._flushing = True
    try:
        compute(todo)
    except Exception:  # the batch as a whole: then symbol by symbol, each on its own
        log.exception("signals: the batched %s computation failed; symbol by symbol", what)
        for item in todo:
            try:
                compute([item])
            except Exception:
                log.exception("signals: %s of %s failed; its derived rows are skipped", what,
                              item[0].symbol)
    finally:
        for e, _ in todo:
            e._flushing = False


def _scatter(todo: Todo, starts: list[int], ts: Any, tail: tuple[Any, ...],
             ofi: tuple[Any, ...], sources: list[list[str]] | None, table: str,
             done: list[bool]) -> None:
    """Append each symbol's run (rows ``starts[i]`` up to the next start; runs with ``done``
    set are already handled) to its tail's ``table`` (columns ``tail``, in the table's order)
    and to its lane: ``ofi`` rows (columns ts, ofi_l1, ofi_ml, bid, ask, bid_sz, ask_sz; with
    ``sources``) or, for the ``trades`` table, ``cvd`` rows (ts, agg_id, delta, cvd, gap).
    What can be checked for every run at once is; per run only the appends are left."""
    n = len(ts)
    counts = np.diff(np.array([*starts, n]))
    spans = [e.tail.span() for e, _ in todo]
    lo = np.repeat(np.array([s[0] for s in spans], np.int64), counts)
    hi = np.repeat(np.array([s[1] for s in spans], np.int64), counts)
    good = (ts >= lo) & (ts <= hi)  # admitted as the tail stands, nothing else to do
    good[1:] &= ts[1:] >= ts[:-1]  # and in time order within the run
    good[starts] = (ts >= lo)[starts] & (ts <= hi)[starts]
    bulk = np.logical_and.reduceat(good, starts).tolist()
    ts_b = ts.astype("=i8").tobytes()
    cols_b = [c.astype("=f8").tobytes() for c in tail]
    first = ts[starts].tolist()
    cvd = table == "trades"
    pack = todo[0][0]._cvd_pack if cvd else todo[0][0]._ofi_pack
    assert pack is not None
    records, size = pack(*ofi)
    add_name = "add_trade" if cvd else "add_" + table
    bounds = [*starts, n]
    for i, (e, _) in enumerate(todo):
        if done[i]:
            continue
        a, z = bounds[i], bounds[i + 1]
        t = getattr(e.tail, table)
        tss = t.ts
        if bulk[i] and (not tss or first[i] >= tss[-1]):
            tss.frombytes(ts_b[a * 8:z * 8])
            for col, values in zip(t.cols, cols_b, strict=True):
                col.frombytes(values[a * 8:z * 8])
        else:  # the rule row by row (out of order, or not admitted as it stands)
            add = getattr(e.tail, add_name)
            for row in zip(ts[a:z].tolist(), *(c[a:z].tolist() for c in tail), strict=True):
                add(*row)
        if cvd:
            assert e._cvd_many is not None
            if not e._cvd_many(records[a * size:z * size], z - a):
                emit_cvd = e._emit_cvd  # the lane is full: one by one, as it would have
                for t_ms, agg_id, delta, total, gap in zip(
                        *(c[a:z].tolist() for c in ofi), strict=True):
                    emit_cvd(t_ms, agg_id, delta, total, bool(gap))
            continue
        assert e._ofi_many is not None and sources is not None
        if not e._ofi_many(records[a * size:z * size], z - a, sources[i]):
            emit = e._emit_ofi  # the lane is full: one by one, each spills as it would have
            for r, source in zip(zip(*(c[a:z].tolist() for c in ofi), strict=True), sources[i],
                                 strict=True):
                t_ms, ofi1, ofim, bid, ask, bid_sz, ask_sz = r
                emit(t_ms, source, None if ofi1 != ofi1 else ofi1,
                     None if ofim != ofim else ofim, bid, ask, bid_sz, ask_sz)


def _depth(todo: Todo) -> None:
    levels = todo[0][1][0][0].levels
    width = 4 * levels
    parts: list[bytes] = []
    ts_parts: list[memoryview] = []
    sources: list[list[str]] = []
    starts: list[int] = []
    n = 0
    for _, segments in todo:
        starts.append(n)
        src: list[str] = []
        for b, a, z in segments:
            parts += b.rows[a:z]
            ts_parts.append(memoryview(b.ts)[a:z])
            src += b.source[a:z]
            n += z - a
        sources.append(src)
    head = todo[0][1][0][0].HEAD_BYTES // 8  # a row record: its head, then its levels
    m = np.frombuffer(b"".join(parts), np.float64).reshape(n, head + width)[:, head:]
    ts = np.frombuffer(b"".join(ts_parts), np.int64)
    parts.clear()  # no view of a builder outlives this (its array may grow again)
    ts_parts.clear()
    e0 = todo[0][0]
    d = derive(m, starts, [e._prev_book for e, _ in todo], levels, e0._ml_levels,
               min(IMB_LEVELS, e0.depth_levels))
    tail_ofi = np.where(d.has_prev, d.ofim, 0.0)
    bounds = [*starts, n]
    done = (~d.complete).tolist()
    for i, (e, _) in enumerate(todo):
        a, z = bounds[i], bounds[i + 1]
        if done[i]:  # a missing level: one by one, as the messages came
            e._depth_one_by_one(m[a:z], ts[a:z].tolist(), sources[i])
        else:
            e._prev_book = m[z - 1].copy()
    _scatter(todo, starts, ts, (tail_ofi, d.q_bid, d.q_ask),
             (ts, np.full(n, np.nan), d.ofim, d.bid, d.ask, d.bid_sz, d.ask_sz), sources, "ml",
             done)


def _depth_few(todo: Todo) -> None:
    for e, segments in todo:
        rows: list[Any] = []
        ts: list[int] = []
        sources: list[str] = []
        for b, a, z in segments:
            head = b.HEAD_BYTES  # a row record: its head, then its levels
            rows += [array("d", r[head:]) for r in b.rows[a:z]]
            ts += b.ts[a:z]
            sources += b.source[a:z]
        e._depth_one_by_one(rows, ts, sources)


def _quotes_few(todo: Todo) -> None:
    for e, segments in todo:
        for b, a, z in segments:
            unpack, size = b.RECORD.unpack_from, b.SIZE
            for r in range(a, z):
                ts, _, _, _, bid, bid_sz, ask, ask_sz = unpack(b.rec, r * size)
                e._quote(ts, bid, bid_sz, ask, ask_sz)


def _records(todo: Todo) -> tuple[Any, list[int]]:
    """Every run's packed records (quotes or trades) end to end as one NumPy structured array,
    and where each run starts."""
    first = todo[0][1][0][0]  # the builders' record layout
    size = first.SIZE
    parts: list[memoryview] = []
    starts: list[int] = []
    n = 0
    for _, segments in todo:
        starts.append(n)
        for b, a, z in segments:
            parts.append(memoryview(b.rec)[a * size:z * size])
            n += z - a
    q = np.frombuffer(b"".join(parts), first.DTYPE)
    parts.clear()  # no view of a builder outlives this (its buffer may grow again)
    return q, starts


def _quotes(todo: Todo) -> None:
    q, starts = _records(todo)
    n = len(q)
    bid, bid_sz, ask, ask_sz = q["bid"], q["bid_qty"], q["ask"], q["ask_qty"]
    b0, s0, a0, t0 = (np.empty(n) for _ in range(4))
    b0[1:], s0[1:], a0[1:], t0[1:] = bid[:-1], bid_sz[:-1], ask[:-1], ask_sz[:-1]
    has_prev = np.ones(n, np.bool_)
    prevs = [e._prev_l1 for e, _ in todo]
    given = [(s, p) for s, p in zip(starts, prevs, strict=True) if p is not None]
    missing = [s for s, p in zip(starts, prevs, strict=True) if p is None]
    if given:
        at = [s for s, _ in given]
        for col, values in zip((b0, s0, a0, t0), zip(*(p for _, p in given), strict=True),
                               strict=True):
            col[at] = values
    if missing:
        b0[missing] = s0[missing] = a0[missing] = t0[missing] = np.nan
        has_prev[missing] = False
    # ``ofi.ofi_term`` element by element: the same four terms in the same order, a term that
    # does not apply adding 0.0 (the sum starts at +0.0, so it is never -0.0)
    zero = 0.0
    ofi = np.zeros(n)
    ofi += np.where(bid >= b0, bid_sz, zero)
    ofi -= np.where(bid <= b0, s0, zero)
    ofi -= np.where(ask <= a0, ask_sz, zero)
    ofi += np.where(ask >= a0, t0, zero)
    tail_ofi = np.where(has_prev, ofi, zero)
    ofi[~has_prev] = np.nan
    ts = np.ascontiguousarray(q["ts_ms"])
    bounds = [*starts, n]
    last = [z - 1 for z in bounds[1:]]
    for e, b1, s1, a1, t1 in zip((e for e, _ in todo), bid[last].tolist(), bid_sz[last].tolist(),
                                 ask[last].tolist(), ask_sz[last].tolist(), strict=True):
        e._prev_l1 = (b1, s1, a1, t1)
    _scatter(todo, starts, ts, (tail_ofi, bid, ask, bid_sz, ask_sz),
             (ts, ofi, np.full(n, np.nan), bid, ask, bid_sz, ask_sz),
             [[QUOTE_SOURCE] * (bounds[i + 1] - bounds[i]) for i in range(len(todo))], "l1",
             [False] * len(todo))


def _trades_few(todo: Todo) -> None:
    for e, segments in todo:
        for b, a, z in segments:
            unpack, size = b.RECORD.unpack_from, b.SIZE
            for r in range(a, z):
                ts, _, _, agg_id, price, qty, _, _, maker = unpack(b.rec, r * size)
                e._trade(ts, agg_id, price, qty, bool(maker))


def _trades(todo: Todo) -> None:
    q, starts = _records(todo)
    n = len(q)
    agg = np.ascontiguousarray(q["agg_id"])
    ts = np.ascontiguousarray(q["ts_ms"])
    price, qty = q["price"], q["qty"]
    counts = np.diff(np.array([*starts, n]))
    states = [e.cvd for e, _ in todo]
    # the usual case, checked for all runs at once: every id above the one before it (no
    # duplicate, so CVD's running maximum is the id itself); a run where that fails is taken
    # trade by trade
    last = [-1 if c.last_agg_id is None else c.last_agg_id for c in states]
    before = np.empty(n, np.int64)
    before[1:] = agg[:-1]
    before[starts] = last
    has_before = np.ones(n, np.bool_)
    has_before[[s for s, c in zip(starts, states, strict=True) if c.last_agg_id is None]] = False
    rising = ~has_before | (agg > before)
    done = (~np.logical_and.reduceat(rising, starts)).tolist()
    broke = has_before & (agg != before + 1)  # an agg-id break: the gap flag from here on
    idx = np.arange(n)
    first_break = np.minimum.reduceat(np.where(broke, idx, n), starts)
    gap0 = np.repeat(np.array([c.gap for c in states], np.bool_), counts)
    gap = gap0 | (idx >= np.repeat(first_break, counts))
    sqty = np.where(q["is_buyer_maker"] != 0, -qty, qty)
    sq = sqty.tolist()
    total = np.empty(n)
    bounds = [*starts, n]
    breaks = np.add.reduceat(broke, starts).tolist()
    gap_ts = ts[broke].tolist()
    gap_run = np.repeat(np.arange(len(todo)), counts)[broke].tolist()
    for i, (e, segments) in enumerate(todo):
        a, z = bounds[i], bounds[i + 1]
        c = e.cvd
        if done[i]:  # a duplicate or an id going back: trade by trade, as they came
            _trades_few([(e, segments)])
            continue
        # the running sum one addition at a time from the carried value, as ``CvdState``
        total[a:z] = list(accumulate(sq[a:z], initial=c.cvd))[1:]
        c.cvd = total[z - 1].item()
        c.last_agg_id = int(agg[z - 1])
        c.gaps += breaks[i]
        c.gap = bool(gap[z - 1])
    for t_ms, run in zip(gap_ts, gap_run, strict=True):  # each break flags its second
        if not done[run]:
            todo[run][0].tail.add_flag(t_ms, "gap")
    _scatter(todo, starts, ts, (price, qty, sqty, price * qty, total),
             (ts, agg, sqty, total, gap), None, "trades", done)
