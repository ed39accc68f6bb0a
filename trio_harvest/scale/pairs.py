"""Shards of a run of several venues: the unit of assignment is the (venue, symbol) pair.

Owns the pair assignment and the pair notation ``venue:SYMBOL`` (the keys of a weight snapshot
that covers several venues, and the names a supervisor shows for a worker's share). Each venue's
pairs are assigned on their own, by the same load-balanced rendezvous hashing as one venue
(shards.py) salted with the venue's name, from that venue's own weights (its 24 h counts): so
every worker carries about its share of every venue's load, the same name on two venues is two
independent units, and a listing change on one venue never moves another venue's pairs. A
venue's owners follow from its own symbols and weights alone, which is what lets each venue's
listing follower keep its own hand-over timeline (handover.py, keyed by the venue). Pure: no
I/O, no trio; every shard computes the same owners from the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .shards import Shard, assignment

SEP = ":"  # venue:SYMBOL; no venue name nor symbol of any venue holds it

# the symbols of each venue, in the run's order of venues
Venues = Mapping[str, Sequence[str]]
# each venue's load weights by symbol (None: that venue unweighted)
VenueWeights = Mapping[str, Mapping[str, int] | None]


def pair_key(venue: str, symbol: str) -> str:
    return f"{venue}{SEP}{symbol}"


def pair_assignment(venues: Venues, weights: VenueWeights | None,
                    count: int) -> dict[tuple[str, str], int]:
    """The owner shard of every (venue, symbol) pair."""
    out: dict[tuple[str, str], int] = {}
    for venue, symbols in venues.items():
        mine = None if weights is None else weights.get(venue)
        for s, shard in assignment(symbols, mine, count, namespace=venue).items():
            out[(venue, s)] = shard
    return out


def assign_pairs(venues: Venues, count: int,
                 weights: VenueWeights | None = None) -> list[dict[str, tuple[str, ...]]]:
    """Per shard, each venue's symbols in it (in the given order; a venue with none is left
    out)."""
    owners = pair_assignment(venues, weights, count)
    out: list[dict[str, list[str]]] = [{} for _ in range(count)]
    for (venue, s), shard in owners.items():
        out[shard].setdefault(venue, []).append(s)
    return [{v: tuple(group[v]) for v in venues if v in group} for group in out]


def share_of(venues: Venues, shard: Shard,
             weights: VenueWeights | None = None) -> dict[str, tuple[str, ...]]:
    """Shard ``shard``'s symbols of each venue (every venue named, possibly with none)."""
    mine = assign_pairs(venues, shard.count, weights)[shard.index]
    return {v: mine.get(v, ()) for v in venues}


def pair_names(share: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """A share as ``venue:SYMBOL`` names."""
    return tuple(pair_key(v, s) for v, symbols in share.items() for s in symbols)


def pair_snapshot(weights: VenueWeights) -> dict[str, int]:
    """Every venue's weights as one snapshot keyed ``venue:SYMBOL`` (weights.py's format)."""
    return {pair_key(v, s): w for v, ws in weights.items() if ws for s, w in ws.items()}


def venue_weights(snapshot: Mapping[str, int], venue: str) -> dict[str, int]:
    """One venue's weights from a snapshot: its ``venue:SYMBOL`` keys, and bare ``SYMBOL``
    keys (meant for every venue) where it has no pair key of its own."""
    out = {k: w for k, w in snapshot.items() if SEP not in k}
    prefix = venue + SEP
    out.update({k[len(prefix):]: w for k, w in snapshot.items() if k.startswith(prefix)})
    return out
