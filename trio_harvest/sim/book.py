"""One symbol's order book on integer grids: two sorted sides of (price ticks -> size lots).

Owns level storage and the ordering of each side, best first. It is a data structure only: it
never decides what happens to the book (that is ``market.py``), never allocates update ids and
never checks that the sides do not cross.
"""

from __future__ import annotations

from bisect import bisect_left, insort

BID = 0
ASK = 1


class BookSide:
    """Levels of one side. Keys are ``sign * ticks`` kept ascending, so index 0 is the best."""

    __slots__ = ("_keys", "_sign", "sizes")

    def __init__(self, side: int) -> None:
        self._sign = -1 if side == BID else 1
        self._keys: list[int] = []
        self.sizes: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def best(self) -> int:
        return self._sign * self._keys[0]

    @property
    def worst(self) -> int:
        return self._sign * self._keys[-1]

    def size(self, ticks: int) -> int:
        return self.sizes.get(ticks, 0)

    def set(self, ticks: int, lots: int) -> None:
        """Set a level's size; 0 removes it."""
        if lots > 0:
            if ticks not in self.sizes:
                insort(self._keys, self._sign * ticks)
            self.sizes[ticks] = lots
        elif ticks in self.sizes:
            del self.sizes[ticks]
            key = self._sign * ticks
            del self._keys[bisect_left(self._keys, key)]

    def price_at(self, index: int) -> int:
        return self._sign * self._keys[index]

    def top(self, n: int) -> tuple[tuple[int, int], ...]:
        sign, sizes = self._sign, self.sizes
        return tuple((sign * k, sizes[sign * k]) for k in self._keys[:n])

    def beyond(self, ticks: int) -> bool:
        """Whether ``ticks`` is further from the spread than the last level."""
        return self._sign * ticks > self._keys[-1]

    def outward(self, ticks: int, steps: int) -> int:
        """The price ``steps`` ticks away from ``ticks``, away from the spread."""
        return ticks + self._sign * steps


class Book:
    __slots__ = ("sides",)

    def __init__(self) -> None:
        self.sides = (BookSide(BID), BookSide(ASK))

    @property
    def bids(self) -> BookSide:
        return self.sides[BID]

    @property
    def asks(self) -> BookSide:
        return self.sides[ASK]

    def spread(self) -> int:
        return self.asks.best - self.bids.best
