"""Command-line side of the ``run`` flags of the journal and the raw archive, and the
``replay`` subcommand (rebuild a dataset from a raw archive).

Owns those flags and the subcommand's arguments and output. Never harvests; the work lives in
``journal/rebuild.py``.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_run_flags(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("durability (journal, raw archive)")
    g.add_argument("--no-journal", dest="journal", action="store_const", const=False,
                   default=None, help="do not journal frames (a crash then loses what memory "
                   "held; the journal is on by default)")
    g.add_argument("--journal-dir", metavar="DIR", default=None,
                   help="where the journal's segments go (default DATA_DIR/_journal)")
    g.add_argument("--journal-fsync-ms", type=int, metavar="MS", default=None,
                   help="group commit: write + fsync the journal every MS ms (default 200)")
    g.add_argument("--journal-max-bytes", type=int, metavar="N", default=None,
                   help="bound of the journal on disk (default 2147483648 = 2 GiB)")
    g.add_argument("--journal-segment-bytes", type=int, metavar="N", default=None,
                   help="a segment rolls at this size (default 67108864 = 64 MiB)…")
    g.add_argument("--journal-segment-s", type=float, metavar="S", default=None,
                   help="…or at this age (default 60)")
    g.add_argument("--no-journal-compress", dest="journal_compress", action="store_const",
                   const=False, default=None,
                   help="write journal segments uncompressed (by default each group commit is "
                   "one zstd block, about 3x fewer bytes; both formats are read back)")
    g.add_argument("--raw-dir", metavar="DIR", default=None,
                   help="keep sealed segments here, zstd-compressed, as the raw archive "
                   "(default off)")


def add_subcommand(sub: Any) -> None:
    rep = sub.add_parser(
        "replay",
        help="rebuild a dataset from a raw archive",
        description="Read the raw archive (RAW_DIR/date=*/seg-*.jnl.zst) in order and route every "
        "frame through the harvester's own decode/route path into a dataset under DATA_DIR: "
        "every kind, derived ones with the signal parameters of --config.",
    )
    rep.add_argument("--raw-dir", required=True, metavar="DIR",
                     help="the raw archive (of a run of several venues: the folder holding "
                     "one <venue>/ folder each, replayed into each venue's partitions)")
    rep.add_argument("--data-dir", required=True, metavar="DIR", help="the dataset to write")
    rep.add_argument("--config", metavar="FILE", default=None,
                     help="TOML config: symbols, depth levels, [signals] parameters")
    rep.add_argument("--venue", metavar="NAME", default=None,
                     help="the venue of an archive that does not name its own (archives written "
                     "before they did; default binance-usdm); an archive that names one is "
                     "replayed as that venue")
    rep.add_argument("--symbols", metavar="LIST", default=None,
                     help="only these symbols (default: the config's, else the archive's)")
    rep.add_argument("--start", metavar="TIME", default=None,
                     help="only frames received at or after TIME (ISO 8601 UTC or unix ms)")
    rep.add_argument("--end", metavar="TIME", default=None,
                     help="only frames received before TIME")
    rep.add_argument("--json", action="store_true", help="print one JSON object")


def run_replay(args: argparse.Namespace) -> int:
    from ..journal.rebuild import main

    return main(args)
