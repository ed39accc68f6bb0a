"""``python -m trio_harvest compact``, and the ``run`` flags of background compaction.

Owns their arguments and output (text, or ``--json``: stable, documented in the README). Exit
codes as everywhere: 0 ok, 1 a partition could not be compacted (it stays as it was), 2 a user
mistake (a missing data dir, a bad duration, another compaction already running). A local data
dir and an ``s3://`` one are compacted alike, with the same S3 flags as ``run``. Never compacts
by itself: the work lives in ``storage/compact.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..storage.compactrules import (
    DEFAULT_DELETE_AFTER,
    DEFAULT_OLDER_THAN,
    DEFAULT_TARGET_ROWS,
    parse_duration,
)
from .scale import add_s3_flags

EXIT_OK, EXIT_FAILED = 0, 1


def duration(raw: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


DELETE_AFTER_HELP = (
    "keep a merge's source files this long after the merged file is published, so a read that "
    "listed them a moment earlier (a plain glob, DuckDB, Spark) still finds them; a later round "
    "deletes them. trio_harvest.dataset.scan skips them meanwhile; a plain glob counts their rows "
    f"twice for that long, so the default deletes at once (default {DEFAULT_DELETE_AFTER:g})")


def add_run_flags(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("compaction")
    g.add_argument("--auto-compact", dest="auto_compact", action="store_const", const=True,
                   default=None, help="compact this run's partitions in the background: hourly "
                   "files while a day runs, one file per partition once it closed (default on)")
    g.add_argument("--no-auto-compact", dest="auto_compact", action="store_const", const=False,
                   default=None, help="turn background compaction off (the default is on)")
    g.add_argument("--compact-older-than", type=duration, metavar="AGE", default=None,
                   help="an hour's files merge once its newest file is this old; a day's, once "
                   "it ended and its last write was this long ago: seconds, or 90s, 10m, 2h "
                   f"(default {DEFAULT_OLDER_THAN:g} = 10m)")
    g.add_argument("--compact-target-rows", type=int, metavar="N", default=None,
                   help=f"rows per merged file, at most (default {DEFAULT_TARGET_ROWS})")
    g.add_argument("--compact-interval", type=duration, metavar="S", default=None,
                   help="seconds between background compaction rounds (default 60)")
    g.add_argument("--compact-delete-after", type=duration, metavar="AGE", default=None,
                   help=DELETE_AFTER_HELP)


def add_subcommand(sub: Any) -> None:
    p = sub.add_parser(
        "compact",
        help="merge small part files into hourly files, and closed days into one file",
        description="Merge a partition's small part files: while its day runs, each hour whose "
        "newest file is --older-than old becomes one hourly file; a day that ended (and was "
        "last written) --older-than ago becomes files of up to --target-rows rows, usually one. "
        "Sorted by ts_ms; the merged files are deleted --delete-after later, by the next compact or "
        "background round. Crash-safe: killed at any point and run again, every row is there "
        "exactly once, and the reader API never counts a row "
        "twice. Safe while a harvester runs; one compaction at a time per dataset (on s3:// "
        "too). Files an unfinished dead-letter recovery wrote are left until it finishes.",
    )
    p.add_argument("--data-dir", required=True, metavar="DIR",
                   help="the dataset's root: a folder, or s3://BUCKET/PREFIX")
    p.add_argument("--deadletter-dir", metavar="DIR", default=None,
                   help="the dead letter whose unfinished recoveries to leave alone (default "
                   "DATA_DIR/_deadletter; for s3:// the run's local dir's _deadletter)")
    p.add_argument("--older-than", type=duration, default=DEFAULT_OLDER_THAN, metavar="AGE",
                   help="due when this old: 90s, 10m, 2h, 1d; 0 merges everything now, today's "
                   f"running hour too (default {DEFAULT_OLDER_THAN:g} s)")
    p.add_argument("--target-rows", type=int, default=DEFAULT_TARGET_ROWS, metavar="N",
                   help=f"rows per merged file, at most (default {DEFAULT_TARGET_ROWS})")
    p.add_argument("--delete-after", type=duration, default=DEFAULT_DELETE_AFTER, metavar="AGE",
                   help=DELETE_AFTER_HELP.replace("a later round", "a later compact"))
    add_s3_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(config=None)


def run_compact(args: argparse.Namespace) -> int:
    from ..storage.compact import Busy, Compactor, exclusive
    from ..storage.merge import unfinished_tokens
    from ..storage.partitions import DEADLETTER_DIR
    from ..storage.store import LocalStore
    from .ops import _existing_dir, _remote, _unreadable

    if args.target_rows < 2:
        raise ConfigError(f"--target-rows: must be at least 2, got {args.target_rows}")
    remote = _remote(args)
    store: Any
    if remote is not None:
        store, dl = remote
        where: Any = store
    else:
        data = _existing_dir(args.data_dir, "--data-dir")
        store, where = LocalStore(data), data
        dl = Path(args.deadletter_dir) if args.deadletter_dir else data / DEADLETTER_DIR
    try:
        with exclusive(where) as held:
            report = Compactor(store, older_than=args.older_than, target_rows=args.target_rows,
                               delete_after=args.delete_after,
                               busy=lambda: unfinished_tokens(dl), keep=held.keep).run()
    except Busy as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # e.g. a folder that cannot be listed (permissions)
        raise _unreadable(exc) from None
    out: Any = report.as_dict() if args.json else report.render()
    print(json.dumps(out, indent=1) if args.json else out, flush=True)
    return EXIT_FAILED if report.failed else EXIT_OK
