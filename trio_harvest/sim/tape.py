"""The trade tape of one symbol: every aggTrade the model produced, newest last, bounded.

Owns compact storage of recent aggregated trades (columnar arrays in a ring, about 40 bytes per
trade) and look-up by aggregate id, as ``GET /fapi/v1/aggTrades?fromId=&limit=`` needs. It
never drops a trade other than the oldest once full, and never reorders: ids are contiguous.
"""

from __future__ import annotations

from array import array

from .events import AggTrade

DEFAULT_CAPACITY = 1_000_000


class TradeTape:
    def __init__(self, symbol: str, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.symbol = symbol
        self.capacity = capacity
        self._first_id: int | None = None  # agg id of ring slot ``_start``
        self._start = 0
        self._len = 0
        self._price = array("q")
        self._qty = array("q")
        self._first = array("q")
        self._span = array("l")  # last_id - first_id
        self._trade_ms = array("q")
        self._lag = array("l")  # event_ms - trade_ms
        self._maker = array("b")

    def __len__(self) -> int:
        return self._len

    @property
    def first_id(self) -> int | None:
        """The oldest aggregate id still held, or None when empty."""
        return self._first_id

    @property
    def last_id(self) -> int | None:
        return None if self._first_id is None else self._first_id + self._len - 1

    def append(self, t: AggTrade) -> None:
        """Add the next trade; its id must follow the last one."""
        if self._first_id is None:
            self._first_id = t.agg_id
        elif t.agg_id != self._first_id + self._len:
            raise ValueError(f"agg id {t.agg_id} does not follow {self._first_id + self._len - 1}")
        row = (t.price, t.qty, t.first_id, t.last_id - t.first_id, t.trade_ms,
               t.event_ms - t.trade_ms, int(t.buyer_maker))
        cols = self._columns()
        if self._len < self.capacity:
            for col, v in zip(cols, row, strict=True):
                col.append(v)
            self._len += 1
        else:  # overwrite the oldest
            for col, v in zip(cols, row, strict=True):
                col[self._start] = v
            self._start = (self._start + 1) % self.capacity
            self._first_id += 1

    def since(self, from_id: int, limit: int = 500) -> list[AggTrade]:
        """Up to ``limit`` trades with ``agg_id >= from_id``, oldest first. Ids older than the
        tape start at the oldest held trade; ids beyond the newest give an empty list."""
        if self._first_id is None or limit <= 0:
            return []
        offset = max(0, from_id - self._first_id)
        end = min(self._len, offset + limit)
        return [self._row(i) for i in range(offset, end)]

    def _row(self, offset: int) -> AggTrade:
        assert self._first_id is not None
        i = (self._start + offset) % self.capacity
        first = self._first[i]
        trade_ms = self._trade_ms[i]
        return AggTrade(
            symbol=self.symbol,
            agg_id=self._first_id + offset,
            price=self._price[i],
            qty=self._qty[i],
            first_id=first,
            last_id=first + self._span[i],
            trade_ms=trade_ms,
            event_ms=trade_ms + self._lag[i],
            buyer_maker=bool(self._maker[i]),
        )

    def _columns(self) -> tuple[array[int], ...]:
        return (self._price, self._qty, self._first, self._span, self._trade_ms, self._lag,
                self._maker)
