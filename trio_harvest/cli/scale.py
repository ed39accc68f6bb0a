"""The scale-out side of ``run``: object-storage flags, ``--workers N`` (a supervisor
of N shard processes) and ``--shard I/N`` (one shard, under its lock).

Owns those flags and the hand-over to ``scale/``; never harvests itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import trio

from ..config import Config, ConfigError
from ..scale import parent
from ..scale.aggregate import WorkerView, merge_summaries, render_summary
from ..scale.handover import Timeline
from ..scale.lock import shard_lock
from ..scale.pairs import venue_weights
from ..scale.settings import MAX_WORKERS
from ..scale.shards import Shard, assign, parse_shard, symbols_of
from ..scale.snapshot import LocalShared, Shared, day_snapshot, grid_day
from ..scale.supervisor import Supervisor, SupervisorSettings, worker_port
from ..scale.weights import UNIT, fetch_weights, quantize, read_snapshot, write_snapshot
from ..sim.activity import activity
from ..storage.backends import data_location
from ..venues import get

log = logging.getLogger("trio_harvest.cli")
MIN_BACKFILL_WEIGHT = 20  # one trades request


def add_s3_flags(g: Any) -> None:
    """``--s3-endpoint``, ``--s3-region``, ``--s3-allow-http``: for ``run`` and for the
    commands that read an ``s3://`` dataset (``recover``, ``inspect``)."""
    g.add_argument("--s3-endpoint", metavar="URL", default=None,
                   help="S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO (default "
                   "TRIO_HARVEST_S3_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else the "
                   "region's endpoint)")
    g.add_argument("--s3-region", metavar="REGION", default=None,
                   help="S3 region (default TRIO_HARVEST_S3_REGION, AWS_REGION / "
                   "AWS_DEFAULT_REGION)")
    g.add_argument("--s3-allow-http", dest="s3_allow_http", action="store_const", const=True,
                   default=None, help="allow a plain-http --s3-endpoint (default off; also "
                   "TRIO_HARVEST_S3_ALLOW_HTTP or AWS_ALLOW_HTTP=true)")


def add_run_flags(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("object storage and scale-out")
    g.add_argument("--data-url", metavar="URL", default=None,
                   help="s3://BUCKET/PREFIX for the Parquet dataset; the same as an s3:// "
                   "--data-dir (default none: --data-dir is a local folder)")
    g.add_argument("--local-dir", metavar="DIR", default=None,
                   help="with an s3:// --data-dir: local folder for the dead letter, the journal "
                   "and the shard locks (default ./trio_harvest-local/BUCKET/PREFIX)")
    add_s3_flags(g)
    g.add_argument("--workers", type=workers_arg, metavar="N|auto", default=None,
                   help="run N harvester processes on this host, shards 0/N..N-1/N, under one "
                   "supervisor with one ops endpoint; 'auto' = one per CPU core this process "
                   "may use. A worker that dies is restarted; if the supervisor dies, its "
                   "workers stop cleanly (final flush) (default 1)")
    g.add_argument("--worker-stable-after", type=float, metavar="S", default=None,
                   help="with --workers: a worker that ran S seconds before it died is "
                   "restarted after the initial backoff again (default 60)")
    g.add_argument("--shard", metavar="I/N", default=None,
                   help="harvest only shard I of N (symbols by load-weighted rendezvous "
                   "hashing; with [venues.<name>] tables, (venue, symbol) pairs, each venue "
                   "split on its own; several hosts, one shard each; default: every symbol)")
    g.add_argument("--lease-ttl", type=float, metavar="S", default=None,
                   help="with an s3:// --data-dir: the shard lease in the bucket lasts S seconds "
                   "after its last renewal; without a renewal, writes to the bucket stop at half "
                   "of it (default 90)")
    g.add_argument("--shard-weights", metavar="venue|off|FILE", default=None,
                   help="how --workers/--shard weigh symbols by load: 'venue' = each symbol's "
                   "24 h trade count from the venue's 24 h ticker (unweighted if that "
                   "fails), 'off' = unweighted, or a JSON snapshot {\"SYMBOL\": weight} that "
                   "every host is given for an exact match; with venue tables a key may be "
                   "\"venue:SYMBOL\" (default venue)")
    g.add_argument("--stop-on-eof", action="store_const", const=True, default=None,
                   help="stop cleanly (final flush) when stdin, which must be a pipe, reaches "
                   "end of file: the supervisor of --workers starts each worker so, and a "
                   "process manager can do the same (default off)")


def cores() -> int:
    """The CPU cores this process may run on (its affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_arg(raw: str) -> int:
    """``--workers``: a count, or ``auto`` for one per core (at most MAX_WORKERS)."""
    if raw.strip().lower() == "auto":
        return min(cores(), MAX_WORKERS)
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of workers or 'auto'") from None


async def harvest(harvester: Any, stop_on_eof: bool | None) -> None:
    """``harvester.run()``; with ``--stop-on-eof`` beside a watcher of stdin that asks for the
    clean stop. The watcher is a system task (cancelled when the run returns), so the run's own
    exceptions reach the caller unwrapped."""
    if stop_on_eof:
        trio.lowlevel.spawn_system_task(parent.stop_on_eof, harvester.request_stop)
    await harvester.run()


def shard_weights(config: Config, namespace: str = "") -> dict[str, int] | None:
    """The load weights ``config.shard_weights`` names: None for ``off`` (or a failed fetch,
    logged once); with ``--sim`` the figures the simulator's ticker serves. ``namespace``: the
    venue of a run of several venues (its own day snapshot; its part of a snapshot file)."""
    source = config.shard_weights.strip()
    if source == "off":
        return None
    if source == "venue":
        if config.sim:  # its REST is not up yet: the same model it serves (a pure function of
            return {s: quantize(activity(s).count) for s in config.symbols}  # the name)
        # the day's snapshot in the dataset, published by the day's first shard: every shard
        # of this dataset, on any host, assigns from the same numbers
        return day_snapshot(_shared(config), grid_day(time.time()),
                            lambda: fetch_weights(_http_get, config.rest_url,
                                                  venue=get(config.venue)), namespace)
    try:
        return _of_venue(read_snapshot(Path(source)), namespace)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"shard_weights: cannot use {source!r} ({exc}); give 'venue', 'off' "
                          "or a JSON file {\"SYMBOL\": weight}") from None


def day_weights(config: Config, namespace: str = "") -> Callable[[str], dict[str, int] | None]:
    """The weights of any UTC day, for a shard's listing follower: the same source as
    ``shard_weights`` (the day's snapshot in the dataset for ``venue``, published by the day's
    first shard; the file; none), so at every grid point every shard assigns from the same
    numbers. Blocking (the follower calls it from a thread)."""
    source = config.shard_weights.strip()
    if source == "venue" and not config.sim:
        shared = _shared(config)
        return lambda day: day_snapshot(shared, day,
                                        lambda: fetch_weights(_http_get, config.rest_url,
                                                              venue=get(config.venue)),
                                        namespace)
    if source == "venue":  # the simulator's model: a pure function of the name, every day
        return lambda day: {s: quantize(activity(s).count)
                            for s in _sim_names(config)}
    if source == "off":
        return lambda day: None
    path = Path(source)
    shard_weights(config, namespace)  # a file that cannot be used is a user mistake now

    def from_file(day: str) -> dict[str, int] | None:
        """Read again for each new UTC day: a file changed by then takes effect at that
        day's first boundary (give every host the same file)."""
        try:
            return _of_venue(read_snapshot(path), namespace)
        except (OSError, ValueError) as exc:
            log.warning("shard weights: cannot read %s for %s (%s); asked again at the next "
                        "poll", path, day, exc)
            return None

    return from_file


def _of_venue(snapshot: dict[str, int], namespace: str) -> dict[str, int]:
    """A snapshot file's weights for one venue of several (``venue:SYMBOL`` keys), or as is."""
    return venue_weights(snapshot, namespace) if namespace else snapshot


def _sim_names(config: Config) -> tuple[str, ...]:
    """What the simulator of the configured venue lists now and lists later (``listing=S``)."""
    from ..sim.listing import initial_listing
    from ..sim.venue import profile

    venue = profile(config.venue)
    return (*initial_listing(config.universe or config.symbols, venue.catalogue),
            *venue.new_listings)


def _shared(config: Config) -> Shared:
    """Where the day's snapshot is published: the dataset's bucket, or its local folder."""
    if not config.data_url:
        return LocalShared(config.data_dir)
    from ..storage.backends import data_store
    from ..storage.s3store import S3Store

    store = data_store(config)
    assert isinstance(store, S3Store)
    return store


def _http_get(url: str) -> bytes:
    import httpx  # here: the command line starts (``--help``) without the HTTP client

    reply = httpx.get(url, timeout=10.0)
    reply.raise_for_status()
    return reply.content


def this_shard(config: Config) -> tuple[Config, Shard]:
    """``config`` narrowed to its shard's symbols (unchanged without ``--shard``)."""
    if not config.shard:
        return config, Shard(0, 1)
    shard = parse_shard(config.shard)
    if config.universe:  # the follower's own timeline: the same owners it will keep to
        mine = timeline_share(config, shard)
    else:
        mine = symbols_of(config.symbols, shard, shard_weights(config))
    if not mine and config.universe:  # it follows the listing: its share may come later
        log.warning("shard %s: none of the %d symbols is this shard's yet; it follows the "
                    "listing for its share", shard, len(config.symbols))
    elif not mine:
        raise ConfigError(f"shard {shard}: none of the {len(config.symbols)} symbols falls to "
                          "this shard (rendezvous hashing); use fewer shards or more symbols")
    return dataclasses.replace(config, symbols=mine), shard


def timeline_share(config: Config, shard: Shard, namespace: str = "") -> tuple[str, ...]:
    """A universe shard's symbols now, by the ownership timeline the listing follower keeps to
    (scale/handover.py): the listing's own times and the weights of the grid point's day."""
    from ..ingest.restclient import http_fetch
    from ..ops.listing import ListingError, fetch_listing
    from ..venues.base import Listed

    venue = get(config.venue)
    listed: dict[str, Listed] = {s: Listed(venue.trading) for s in config.symbols}
    if not config.sim:
        try:
            listed = trio.run(fetch_listing, config.rest_url, http_fetch, venue)
        except ListingError as exc:
            log.warning("shard %s: cannot read the listing's dates (%s); assigning from the "
                        "symbols alone", shard, exc)
    step = max(1, round(config.listing_interval * 1000))
    timeline = Timeline(listed, config.universe, shard, day_weights(config, namespace), step,
                        trading=venue.trading, namespace=namespace,
                        dated=venue.listing_dates)
    now = time.time_ns() // 1_000_000
    return tuple(s for s in config.symbols if timeline.mine(s, now))


@contextlib.contextmanager
def locked(config: Config, shard: Shard,
           on_lost: Callable[[], None] = lambda: None) -> Iterator[None]:
    """The shard's ``flock`` on local disk; with an ``s3://`` data dir also its lease object in
    the bucket (renewed in a thread while the run lasts; writes to the bucket are fenced when
    renewals fail), which keeps every other process off it. ``on_lost``: another process took
    the lease (called from the renewing thread)."""
    with shard_lock(config.data_dir, shard, str(data_location(config))) as held:
        if not config.data_url:
            yield
            return
        from ..scale.lease import Renewer, ShardLease
        from ..storage import fence
        from ..storage.location import S3Options, parse_s3
        from ..storage.s3store import S3Store

        store = S3Store(parse_s3(config.data_url), S3Options.of(config))
        lease = ShardLease(store, shard, token=held.token, predecessor=held.previous,
                           ttl=config.lease_ttl)
        try:
            lease.acquire()
        except OSError as exc:
            raise ConfigError(f"shard {shard} of {config.data_url}: cannot take its lease "
                              f"({exc})") from None
        renewer = Renewer(lease, on_lost)
        renewer.start()
        try:
            yield
        finally:
            renewer.stop()
            lease.release()
            fence.release(store.location)


def worker_argv(config: Config, argv: Sequence[str], index: int, started: int,
                settings: SupervisorSettings, *, weights: str = "off") -> list[str]:
    """Worker ``index``'s command line: the supervisor's own, then what makes it one shard (of
    the assignment the supervisor computed: ``weights`` is its snapshot file, or ``off``). The
    REST weight budget is Binance's per IP, so the ``started`` workers of one host share it, as
    they share the host's memory for buffered rows (``max_buffered_mb``)."""
    weight = max(MIN_BACKFILL_WEIGHT, config.backfill_weight // max(started, 1))
    return [sys.executable, "-m", "trio_harvest", *argv, "--workers", "1",
            "--shard", f"{index}/{config.workers}", "--summary-json", "--stop-on-eof",
            "--shard-weights", weights, "--backfill-weight", str(weight),
            "--max-buffered-mb", f"{config.max_buffered_mb / max(started, 1):g}",
            "--metrics-port", str(worker_port(settings, index))]


def supervise(config: Config, argv: Sequence[str], summary_json: bool | None) -> int:
    """``run --workers N``: N child processes ``run … --shard i/N``; one summary at the end."""
    n = config.workers
    weights = shard_weights(config)
    groups = assign(config.symbols, n, weights)
    # a universe follows the listing: every shard runs, an empty one may gain symbols later
    workers = [WorkerView(i, g) for i, g in enumerate(groups) if g or config.universe]
    if len(workers) < n:
        log.warning("%d of %d shards have no symbol (rendezvous hashing of %d symbols); "
                    "starting %d workers", n - len(workers), n, len(config.symbols), len(workers))
    snapshot = "off"
    if weights is not None:  # every worker, restarted or not, uses this very snapshot
        path = config.data_dir / "_shards" / "weights.json"
        write_snapshot(path, weights)
        snapshot = str(path)
        if config.universe and config.shard_weights.strip() == "venue":
            # a universe's workers follow the day's snapshot in the dataset (re-read each UTC
            # day, the same for a restarted worker and for every sibling), not a fixed file
            snapshot = "venue"
        shares = [sum(weights.get(s, UNIT) for s in g) for g in groups]
        log.info("shards weighted by 24 h load: %s", ", ".join(
            f"{i}: {len(g)} symbols, {100 * w / max(sum(shares), 1):.0f} %"
            for i, (g, w) in enumerate(zip(groups, shares, strict=True))))
    return run_workers(config, argv, workers, snapshot, summary_json)


def run_workers(config: Config, argv: Sequence[str], workers: list[WorkerView], snapshot: str,
                summary_json: bool | None) -> int:
    """The supervisor of ``workers`` (each a ``--shard i/N`` process of ``argv`` given the
    weight ``snapshot``: a file, ``venue`` or ``off``); one summary at the end."""
    settings = SupervisorSettings(
        metrics_host=config.metrics_host, metrics_port=config.metrics_port,
        stop_bound=config.shutdown_grace + config.deadletter_timeout + 15.0,
        stable_after=config.worker_stable_after,
        poll_interval=min(config.health_interval, 2.0),
        restart_clean_exits=config.duration is None)

    sup_argv = [*argv]

    def argv_of(w: WorkerView) -> list[str]:
        return worker_argv(config, sup_argv, w.index, len(workers), settings, weights=snapshot)

    sup = Supervisor(workers, argv_of, settings)
    log.info("supervising %d workers over %d symbols (data %s)", len(workers),
             sum(len(w.symbols) for w in workers), data_location(config))
    code = trio.run(sup.run)
    doc = merge_summaries(workers)
    print(json.dumps(doc) if summary_json else render_summary(doc), flush=True)
    return code
