"""``python -m trio_harvest compact``, and the ``run`` flags of background compaction.

Owns their arguments and output (text, or ``--json``: stable, documented in the README). Exit
codes as everywhere: 0 ok, 1 a partition could not be compacted (it stays as it was), 2 a user
mistake (a missing data dir, a bad duration, another compaction already running). Never
compacts by itself: the work lives in ``storage/compact.py``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..config import ConfigError
from ..storage.compact import DEFAULT_TARGET_ROWS, parse_duration

EXIT_OK, EXIT_FAILED = 0, 1


def duration(raw: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_run_flags(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("compaction")
    g.add_argument("--auto-compact", dest="auto_compact", action="store_const", const=True,
                   default=None, help="compact this run's closed partitions in the background "
                   "(default off; see `compact`)")
    g.add_argument("--compact-older-than", type=duration, metavar="AGE", default=None,
                   help="with --auto-compact: a partition is closed this long after its UTC date "
                   "ended and its last write: seconds, or 90m, 2h, 1d (default 7200 = 2h)")
    g.add_argument("--compact-target-rows", type=int, metavar="N", default=None,
                   help=f"with --auto-compact: rows per merged file, at most (default "
                   f"{DEFAULT_TARGET_ROWS})")


def add_subcommand(sub: Any) -> None:
    p = sub.add_parser(
        "compact",
        help="merge the small files of closed partitions",
        description="For partitions no longer written to (their UTC date ended, and nothing "
        "written, --older-than ago), merge small part files into files of up to --target-rows "
        "rows sorted by ts_ms, then delete the small ones. Crash-safe: killed at any point and "
        "run again, every row is there exactly once, and the reader API never counts a row "
        "twice. Safe while a harvester runs; one compaction at a time per dataset.",
    )
    p.add_argument("--data-dir", required=True, metavar="DIR", help="the dataset's root")
    p.add_argument("--older-than", type=duration, default=7200.0, metavar="AGE",
                   help="closed means the date ended, and the last write was, this long ago: "
                   "90s, 30m, 2h, 1d (default 2h)")
    p.add_argument("--target-rows", type=int, default=DEFAULT_TARGET_ROWS, metavar="N",
                   help=f"rows per merged file, at most (default {DEFAULT_TARGET_ROWS})")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_compact(args: argparse.Namespace) -> int:
    from ..storage.compact import Busy, Compactor, exclusive
    from ..storage.store import LocalStore
    from .ops import _existing_dir, _unreadable

    if args.target_rows < 2:
        raise ConfigError(f"--target-rows: must be at least 2, got {args.target_rows}")
    data = _existing_dir(args.data_dir, "--data-dir")
    try:
        with exclusive(data):
            report = Compactor(LocalStore(data), older_than=args.older_than,
                               target_rows=args.target_rows).run()
    except Busy as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # e.g. a folder that cannot be listed (permissions)
        raise _unreadable(exc) from None
    out: Any = report.as_dict() if args.json else report.render()
    print(json.dumps(out, indent=1) if args.json else out, flush=True)
    return EXIT_FAILED if report.failed else EXIT_OK
