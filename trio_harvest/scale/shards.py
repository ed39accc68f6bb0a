"""Which symbols a shard harvests: rendezvous (highest-random-weight) hashing, balanced by load.

Owns the assignment of symbols to shards ``0..N-1`` and the ``I/N`` notation. Unweighted, each
symbol goes to the shard with the highest hash of (symbol, shard), so going from N to N+1 shards
moves only the symbols the new shard wins (about 1/(N+1) of them) and no symbol moves between the
old shards. With load weights (weights.py), rendezvous hashing with bounded loads: heaviest
first (ties in hash order), each symbol takes the first shard of its own rendezvous ranking whose
load stays within ``(1 + SLACK)`` times the mean; so heavy symbols spread out, the load stays
within a few percent of even, and a listing change moves O(1) other symbols (the measured
figures are in docs/workers.md). Every shard computes the same owners from the same symbols and
weights: no coordinator. Pure: no I/O, no trio; the hash is stable across processes, hosts and
Python versions, and the weights are integers (no float sums that could differ).

A run of several venues assigns (venue, symbol) pairs (pairs.py): each function takes the
pair's venue as ``namespace``, which salts the hash, so the same name on two venues is two
independent units; ``namespace=""`` (one venue) hashes exactly as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from .weights import UNIT

SLACK_PERCENT = 5  # a shard may carry up to 5 % more than the mean load


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


def weight(symbol: str, shard: int, namespace: str = "") -> int:
    key = f"{namespace}\x00{symbol}\x00{shard}" if namespace else f"{symbol}\x00{shard}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(symbol: str, count: int, namespace: str = "") -> int:
    """The shard (``0..count-1``) that harvests ``symbol`` (of venue ``namespace``)."""
    return max(range(count), key=lambda i: weight(symbol, i, namespace))


def assignment(symbols: Iterable[str], weights: Mapping[str, int] | None,
               count: int, namespace: str = "") -> dict[str, int]:
    """The owner shard of each symbol. ``weights`` None: plain rendezvous hashing. Otherwise
    bounded loads; a symbol the weights lack weighs ``UNIT`` (a new listing starts light)."""
    names = list(dict.fromkeys(symbols))
    if weights is None or count == 1:
        return {s: owner(s, count, namespace) for s in names}
    w = {s: max(1, weights.get(s, UNIT)) for s in names}
    total = sum(w.values())
    # integer arithmetic only: load * 100 * count <= total * (100 + SLACK)
    cap_scaled = max(total * (100 + SLACK_PERCENT), max(w.values(), default=0) * 100 * count)
    load = [0] * count
    out: dict[str, int] = {}
    for s in sorted(names, key=lambda s: (-w[s], weight(s, -1, namespace), s)):
        ranking = sorted(range(count), key=lambda i: -weight(s, i, namespace))
        pick = next((i for i in ranking if (load[i] + w[s]) * 100 * count <= cap_scaled),
                    min(ranking, key=lambda i: load[i]))
        load[pick] += w[s]
        out[s] = pick
    return {s: out[s] for s in names}


def assign(symbols: Iterable[str], count: int,
           weights: Mapping[str, int] | None = None,
           namespace: str = "") -> list[tuple[str, ...]]:
    """Symbols per shard, each in the given order."""
    owners = assignment(symbols, weights, count, namespace)
    out: list[list[str]] = [[] for _ in range(count)]
    for s, i in owners.items():
        out[i].append(s)
    return [tuple(group) for group in out]


def symbols_of(symbols: Iterable[str], shard: Shard,
               weights: Mapping[str, int] | None = None,
               namespace: str = "") -> tuple[str, ...]:
    owners = assignment(symbols, weights, shard.count, namespace)
    return tuple(s for s, i in owners.items() if i == shard.index)
