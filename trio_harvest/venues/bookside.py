"""One side of a local order book, shared by every venue's book rule: price levels kept sorted
best first, absolute sizes (0 deletes a level; a delete of a level not held is ignored),
bounded to ``max_levels`` by dropping the far end, and top-N extraction (as levels, or as
price and size columns). Pure: no I/O, no
venue's wire terms.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

Level = tuple[float, float]  # (price, size)
# a book's top as columns: bid prices, bid sizes, ask prices, ask sizes (best first)
TopColumns = tuple[list[float], list[float], list[float], list[float]]

MAX_LEVELS = 1000  # per side, unless the book says otherwise


class BookSide:
    """One side's levels: ``sizes`` (price -> size) and ``_keys`` (sign * price, ascending, so
    index 0 is the best). At most ``max_levels`` levels: the farthest one goes first."""

    __slots__ = ("_keys", "_sign", "max_levels", "sizes")

    def __init__(self, bid: bool, max_levels: int = MAX_LEVELS) -> None:
        self._sign = -1.0 if bid else 1.0
        self._keys: list[float] = []
        self.sizes: dict[float, float] = {}
        self.max_levels = max_levels

    def __len__(self) -> int:
        return len(self._keys)

    def clear(self) -> None:
        self._keys.clear()
        self.sizes.clear()

    def load(self, levels: Iterable[Level]) -> None:
        self.clear()
        sizes = self.sizes
        for price, size in levels:
            if size > 0:
                sizes[price] = size
        sign = self._sign
        self._keys = sorted(sign * p for p in sizes)
        while len(self._keys) > self.max_levels:
            del sizes[sign * self._keys.pop()]

    def set(self, price: float, size: float) -> None:
        """Absolute size at ``price``; 0 deletes the level."""
        self.update(((price, size),))

    def update(self, levels: Iterable[Level]) -> None:
        """``set`` each ``(price, size)`` in turn (a diff event's side: one call, not one a
        level)."""
        sizes, keys, sign, limit = self.sizes, self._keys, self._sign, self.max_levels
        for price, size in levels:
            if size > 0:
                if price not in sizes:
                    key = sign * price
                    insort(keys, key)
                    if len(keys) > limit:
                        far = keys.pop()
                        if far == key:
                            continue  # the new level is the farthest one: not kept
                        del sizes[sign * far]
                sizes[price] = size
            elif price in sizes:
                del sizes[price]
                del keys[bisect_left(keys, sign * price)]

    def best(self) -> Level | None:
        if not self._keys:
            return None
        price = self._sign * self._keys[0]
        return price, self.sizes[price]

    def top_columns(self, n: int) -> tuple[list[float], list[float]]:
        """``top(n)`` as its prices and its sizes (no tuple per level)."""
        keys = self._keys[:n]
        prices = keys if self._sign > 0 else [-k for k in keys]
        return prices, list(map(self.sizes.__getitem__, prices))

    def top(self, n: int) -> list[Level]:
        sizes = self.sizes
        if self._sign > 0:  # the asks' keys are their prices
            return [(p, sizes[p]) for p in self._keys[:n]]
        return [(-k, sizes[-k]) for k in self._keys[:n]]
