"""Which symbols a shard harvests: rendezvous (highest-random-weight) hashing.

Owns the assignment of symbols to shards ``0..N-1`` and the ``I/N`` notation. Each symbol goes to
the shard with the highest hash of (symbol, shard), so going from N to N+1 shards moves only the
symbols the new shard wins (about 1/(N+1) of them) and no symbol moves between the old shards.
Pure: no I/O, no trio; the hash is stable across processes, hosts and Python versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def slug(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def parse_shard(raw: str, what: str = "shard") -> Shard:
    """``I/N`` with ``0 <= I < N``; ``ConfigError`` with one line otherwise."""
    index, sep, count = raw.strip().partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise ConfigError(f"{what}: {raw!r} is not I/N with 0 <= I < N (e.g. 0/4 is the first "
                          "of four shards)")
    return Shard(i, n)


def weight(symbol: str, shard: int) -> int:
    digest = hashlib.blake2b(f"{symbol}\x00{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(symbol: str, count: int) -> int:
    """The shard (``0..count-1``) that harvests ``symbol``."""
    return max(range(count), key=lambda i: weight(symbol, i))


def assign(symbols: Iterable[str], count: int) -> list[tuple[str, ...]]:
    """Symbols per shard, each in the given order."""
    out: list[list[str]] = [[] for _ in range(count)]
    for s in symbols:
        out[owner(s, count)].append(s)
    return [tuple(group) for group in out]


def symbols_of(symbols: Iterable[str], shard: Shard) -> tuple[str, ...]:
    return tuple(s for s in symbols if owner(s, shard.count) == shard.index)
