"""The tail window: per symbol, the recent records the feature table needs, kept columnar.

Owns a time-bounded buffer, separate from the write lanes: the last ``history_s`` seconds before
the first second not yet emitted (the *cursor*), plus every record at or after the cursor. It holds
three tables, each a set of contiguous ``array.array`` columns sorted by ``ts_ms``:

- ``trades``: ts, price, qty, signed qty, notional, cvd after the trade
- ``l1``: best-level book states (quotes, or depth when quotes are not subscribed):
  ts, OFI increment, bid, ask, bid size, ask size
- ``ml``: depth snapshots: ts, multi-level OFI increment, Σ bid size and Σ ask size of levels 1..5

plus a short list of flags (gap / resync / stale) with their times.

Appending is O(1) (an out-of-order record is inserted near the end); trimming happens when the
cursor advances. Its size depends on time and message rate only, never on what is buffered for
writing. Must never import trio or do I/O.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable

TRADE_COLUMNS = ("price", "qty", "sqty", "notional", "cvd")
L1_COLUMNS = ("ofi", "bid", "ask", "bid_sz", "ask_sz")
ML_COLUMNS = ("ofi", "bid5", "ask5")
# positions in ``Table.cols``
T_PRICE, T_QTY, T_SQTY, T_NOTIONAL, T_CVD = range(len(TRADE_COLUMNS))
L1_OFI, L1_BID, L1_ASK, L1_BID_SZ, L1_ASK_SZ = range(len(L1_COLUMNS))
ML_OFI, ML_BID5, ML_ASK5 = range(len(ML_COLUMNS))


class Table:
    """Columns of float64 values keyed by a sorted int64 ``ts`` column."""

    __slots__ = ("apps", "cols", "names", "ts")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.ts: array[int] = array("q")
        self.cols: tuple[array[float], ...] = tuple(array("d") for _ in names)
        # bound appends, for the in-order fast paths (trimming deletes in place: they stay valid)
        self.apps = tuple(c.append for c in self.cols)

    def __len__(self) -> int:
        return len(self.ts)

    def col(self, name: str) -> array[float]:
        return self.cols[self.names.index(name)]

    def add(self, ts: int, values: tuple[float, ...]) -> None:
        tss = self.ts
        if not tss or ts >= tss[-1]:
            tss.append(ts)
            for c, v in zip(self.cols, values, strict=True):
                c.append(v)
        else:  # out of order (another stream, or a late message): keep ts sorted, stable
            i = bisect_right(tss, ts)
            tss.insert(i, ts)
            for c, v in zip(self.cols, values, strict=True):
                c.insert(i, v)

    def span(self, lo_ms: int, hi_ms: int) -> tuple[int, int]:
        """Index range of rows with lo_ms <= ts < hi_ms."""
        return bisect_left(self.ts, lo_ms), bisect_left(self.ts, hi_ms)

    def drop_before(self, ts_ms: int) -> int:
        n = bisect_left(self.ts, ts_ms)
        if n:
            del self.ts[:n]
            for c in self.cols:
                del c[:n]
        return n


class TailWindow:
    """The columnar, time-bounded tail of one symbol (see the module docstring)."""

    __slots__ = (
        "_first_ms", "_hi", "_lo", "before_admit", "cursor_ms", "flag_names", "flag_ts",
        "history_ms", "l1",
        "late", "max_lag_ms", "ml", "skipped_s", "trades",
    )

    def __init__(self, history_s: int = 60, max_lag_s: int = 300) -> None:
        self.history_ms = history_s * 1000
        self.max_lag_ms = max_lag_s * 1000
        self.trades = Table(TRADE_COLUMNS)
        self.l1 = Table(L1_COLUMNS)
        self.ml = Table(ML_COLUMNS)
        self.flag_ts: list[int] = []
        self.flag_names: list[str] = []
        # start of the first second not yet emitted; None until the features task first runs
        self.cursor_ms: int | None = None
        self._first_ms: int | None = None  # earliest ts seen while the cursor is None
        # every ts in [_lo, _hi] is admitted with nothing else to do (``_admit``'s usual
        # case, checked inline by the appends): from the cursor (or the earliest ts before
        # the features task runs) up to the lag that would make the window fall behind
        self._lo = self._hi = 0
        self._span(None)
        # called before the admission state may change (a record outside the span, the cursor
        # moving): records noted for a later batch are computed first, so each is admitted as
        # it would have been when it came
        self.before_admit: Callable[[], None] | None = None
        self.late = 0  # records dropped because their second was already emitted
        self.skipped_s = 0  # seconds given up because the features task fell max_lag_s behind

    def __len__(self) -> int:
        return len(self.trades) + len(self.l1) + len(self.ml)

    # -- hot path -------------------------------------------------------------------------------

    def _span(self, ref: int | None) -> None:
        """The admission window from ``ref`` (None: no record yet, every ts takes ``_admit``)."""
        if ref is None:
            self._lo, self._hi = 1, 0
        else:
            self._lo, self._hi = ref, ref + self.max_lag_ms + 1000

    def _admit(self, ts: int) -> bool:
        if self.before_admit is not None:
            self.before_admit()
        cursor = self.cursor_ms
        if cursor is None:
            ref = self._first_ms
            if ref is None or ts < ref:
                self._first_ms = ref = ts
                self._span(ref)
        elif ts < cursor:
            self.late += 1
            return False
        else:
            ref = cursor
        if ts - ref > self.max_lag_ms + 1000:
            self._fall_behind(ts)
        return True

    def add_trade(self, ts: int, price: float, qty: float, sqty: float, notional: float,
                  cvd: float) -> bool:
        """Append a trade; False when its second was already emitted (counted in ``late``)."""
        if not self._lo <= ts <= self._hi and not self._admit(ts):
            return False
        t = self.trades
        tss = t.ts
        if tss and ts < tss[-1]:
            t.add(ts, (price, qty, sqty, notional, cvd))
            return True
        tss.append(ts)
        a = t.apps
        a[0](price)
        a[1](qty)
        a[2](sqty)
        a[3](notional)
        a[4](cvd)
        return True

    def add_l1(self, ts: int, ofi: float, bid: float, ask: float, bid_sz: float,
               ask_sz: float) -> bool:
        if not self._lo <= ts <= self._hi and not self._admit(ts):
            return False
        t = self.l1
        tss = t.ts
        if tss and ts < tss[-1]:
            t.add(ts, (ofi, bid, ask, bid_sz, ask_sz))
            return True
        tss.append(ts)
        a = t.apps
        a[0](ofi)
        a[1](bid)
        a[2](ask)
        a[3](bid_sz)
        a[4](ask_sz)
        return True

    def add_ml(self, ts: int, ofi: float, bid5: float, ask5: float) -> bool:
        if not self._lo <= ts <= self._hi and not self._admit(ts):
            return False
        t = self.ml
        tss = t.ts
        if tss and ts < tss[-1]:
            t.add(ts, (ofi, bid5, ask5))
            return True
        tss.append(ts)
        a = t.apps
        a[0](ofi)
        a[1](bid5)
        a[2](ask5)
        return True

    def span(self) -> tuple[int, int]:
        """The times admitted now with nothing else to do: [lo, hi] (the appends' fast path;
        an engine reading in batches checks each message against it)."""
        return self._lo, self._hi

    def add_flag(self, ts: int, flag: str) -> None:
        """Mark ``flag`` (gap / resync / stale) in the second of ``ts``. A flag for a second that
        was already emitted goes to the first second not yet emitted."""
        if self.cursor_ms is not None and ts < self.cursor_ms:
            ts = self.cursor_ms
        i = bisect_right(self.flag_ts, ts)
        self.flag_ts.insert(i, ts)
        self.flag_names.insert(i, flag)

    # -- features task side ---------------------------------------------------------------------

    def first_second(self) -> int | None:
        """The first second (``ts_ms // 1000``) not yet emitted, or None before any record."""
        if self.cursor_ms is not None:
            return self.cursor_ms // 1000
        if self._first_ms is not None:
            return self._first_ms // 1000
        return None

    def advance(self, cursor_ms: int) -> None:
        """Mark every second before ``cursor_ms`` as emitted and drop what the window no longer
        needs (rows older than ``cursor_ms - history``)."""
        if self.cursor_ms is not None and cursor_ms <= self.cursor_ms:
            return
        if self.before_admit is not None:
            self.before_admit()
        self.cursor_ms = cursor_ms
        self._first_ms = None
        self._span(cursor_ms)
        keep = cursor_ms - self.history_ms
        self.trades.drop_before(keep)
        self.l1.drop_before(keep)
        self.ml.drop_before(keep)
        if self.flag_ts:
            n = bisect_left(self.flag_ts, cursor_ms)
            if n:
                del self.flag_ts[:n]
                del self.flag_names[:n]

    def flags_between(self, lo_ms: int, hi_ms: int) -> list[tuple[int, str]]:
        i = bisect_left(self.flag_ts, lo_ms)
        j = bisect_left(self.flag_ts, hi_ms)
        return list(zip(self.flag_ts[i:j], self.flag_names[i:j], strict=True))

    def _fall_behind(self, ts: int) -> None:
        """The features task is more than ``max_lag_s`` behind (or not running): give up the
        oldest unemitted seconds so the window stays bounded, and flag the jump as stale."""
        start = self.first_second()
        new_cursor = (ts // 1000) * 1000 - self.max_lag_ms // 2
        if start is not None and new_cursor > start * 1000:
            self.skipped_s += new_cursor // 1000 - start
        self.advance(new_cursor)
        self.add_flag(new_cursor, "stale")
