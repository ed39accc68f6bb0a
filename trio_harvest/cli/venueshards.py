"""``--workers N`` and ``--shard I/N`` for a run of several venues (``[venues.<name>]`` tables):
the (venue, symbol) pairs are split across the shards (scale/pairs.py).

Owns each venue's weights for the split (that venue's own 24 h figures, its own day snapshot in
the dataset, or its part of a snapshot file), the supervisor's assignment of pairs to workers
and the one snapshot file it hands them, and a shard's narrowing of every venue's ``Config`` to
its share: a venue with no pair on the shard runs no unit (unless it follows a listing, where
its share may come later), and the dataset-wide duties go to the first venue left. Each venue's
listing follower keeps its own hand-over timeline, keyed by its venue. Never harvests itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import Config, with_duties
from ..errors import ConfigError
from ..scale.aggregate import WorkerView
from ..scale.pairs import assign_pairs, pair_names, pair_snapshot
from ..scale.shards import Shard, parse_shard, symbols_of
from ..scale.weights import write_snapshot
from . import scale as scale_cli

log = logging.getLogger("trio_harvest.cli")

Weights = dict[str, dict[str, int] | None]


def venues_weights(configs: Sequence[Config]) -> Weights:
    """Each venue's weights. If any venue has weights, one that has none weighs its symbols
    evenly (``{}``), as its workers will from the snapshot file, which lists no pair of it."""
    out: Weights = {c.venue: scale_cli.shard_weights(c, c.venue) for c in configs}
    if any(w is not None for w in out.values()):
        out = {v: w or {} for v, w in out.items()}
    return out


def this_share(config: Config, configs: Sequence[Config]) -> tuple[list[Config], Shard]:
    """``configs`` (one per venue) narrowed to ``config.shard``'s pairs; unchanged without."""
    if not config.shard:
        return list(configs), Shard(0, 1)
    shard = parse_shard(config.shard)
    out: list[Config] = []
    for c in configs:
        if c.universe:  # the follower's own timeline: the owners it will keep to
            mine = scale_cli.timeline_share(c, shard, c.venue)
        else:
            mine = symbols_of(c.symbols, shard, scale_cli.shard_weights(c, c.venue), c.venue)
        if mine or c.universe:
            out.append(dataclasses.replace(c, symbols=mine))
    if not out:
        pairs = sum(len(c.symbols) for c in configs)
        raise ConfigError(f"shard {shard}: none of the {pairs} (venue, symbol) pairs falls to "
                          "this shard (rendezvous hashing); use fewer shards or more symbols")
    log.info("shard %s: %s", shard, ", ".join(f"{c.venue} {len(c.symbols)}" for c in out))
    return with_duties(out, config), shard


def unit_kw(c: Config) -> Mapping[str, Any]:
    """A venue unit's own ``Harvester`` arguments on a shard: its weights by day (for its
    listing follower) and its pair namespace."""
    return {"shard_weights": scale_cli.day_weights(c, c.venue), "shard_namespace": c.venue}


def supervise(config: Config, configs: Sequence[Config], argv: Sequence[str],
              summary_json: bool | None) -> int:
    """``run --workers N`` with venue tables: N processes ``run … --shard i/N``, each harvesting
    its pairs of every venue."""
    n = config.workers
    weights = venues_weights(configs)
    groups = assign_pairs({c.venue: c.symbols for c in configs}, n, weights)
    follows = any(c.universe for c in configs)
    workers = [WorkerView(i, pair_names(g)) for i, g in enumerate(groups) if g or follows]
    total = sum(len(c.symbols) for c in configs)
    if len(workers) < n:
        log.warning("%d of %d shards have no (venue, symbol) pair (rendezvous hashing of %d "
                    "pairs); starting %d workers", n - len(workers), n, total, len(workers))
    snapshot = "off"
    if any(w is not None for w in weights.values()):  # every worker uses this very snapshot
        path = config.data_dir / "_shards" / "weights.json"
        write_snapshot(path, pair_snapshot(weights))
        snapshot = str(path)
        if follows and config.shard_weights.strip() == "venue":
            snapshot = "venue"  # each venue's day snapshot in the dataset, as for one venue
    log.info("shards of %d (venue, symbol) pairs: %s", total, "; ".join(
        f"{i}: " + ", ".join(f"{v} {len(s)}" for v, s in g.items())
        for i, g in enumerate(groups)))
    return scale_cli.run_workers(config, argv, workers, snapshot, summary_json)
