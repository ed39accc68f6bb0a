"""Command-line flags of simulator faults (``sim --faults``, ``run --sim-faults``), REST
backfill and the 24 h handover (``run``).

Owns those flags and the parsing of a fault spec given on ``sim`` (``run`` passes it through
``Config.sim_faults``, validated there). Never harvests and never serves.
"""

from __future__ import annotations

import argparse

from ..config import ConfigError
from ..sim.faultplan import FaultPlan, FaultSpecError, parse_faults

FAULTS_HELP = (
    "comma-separated faults, e.g. disconnect=5,garbage=0.01,skip=0.002: disconnect=S, "
    "disconnect_random=S, stall=S, stall_for=S, garbage=P, truncate=P, oversize=P, "
    "oversize_bytes=N, skip=P, dup_id=P, drop_diff=P, dup_frame=P, reset=P (a venue-side "
    "book reset: OKX, Bybit), skew=MS, lifetime=S, "
    "weight=N (REST weight/min), listing=S (list one symbol and delist one every S s), "
    "seed=N (see docs/adversity.md)"
)


def add_run_flags(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("adversity (gaps, backfill, handover)")
    g.add_argument("--sim-faults", metavar="SPEC", default=None,
                   help="needs --sim: make the built-in simulator misbehave (default none); "
                   + FAULTS_HELP)
    g.add_argument("--no-backfill", dest="backfill", action="store_const", const=False,
                   default=None, help="do not fetch missing trades over REST; gaps stay unfilled "
                   "(backfill is on by default)")
    g.add_argument("--no-resume", dest="resume", action="store_const", const=False, default=None,
                   help="after a restart, do not continue agg_id continuity from the dataset "
                   "(by default the trades missed while down are a gap, backfilled)")
    g.add_argument("--backfill-weight", type=int, metavar="N", default=None,
                   help="REST request weight per minute backfill may use (default 1200 of "
                   "Binance's 2400)")
    g.add_argument("--backfill-delay", type=float, metavar="S", default=None,
                   help="wait this long for late frames before backfilling a break (default 1)")
    g.add_argument("--ws-lifetime", type=float, metavar="S", default=None,
                   help="the exchange closes connections this old (default 86400 = 24 h)")
    g.add_argument("--handover-lead", type=float, metavar="S", default=None,
                   help="open a connection's replacement this long before that (default 300)")
    g.add_argument("--handover-overlap", type=float, metavar="S", default=None,
                   help="read the old connection at most this long after its replacement "
                   "opened (default 5)")


def add_sim_flags(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("--faults", metavar="SPEC", default="",
                     help="make the simulator misbehave (default none: an exact exchange); "
                     + FAULTS_HELP)


def sim_plan(args: argparse.Namespace) -> FaultPlan | None:
    """The ``FaultPlan`` of ``sim --faults`` (None without faults); ``ConfigError`` if bad."""
    if not args.faults:
        return None
    try:
        return parse_faults(args.faults)
    except FaultSpecError as exc:
        raise ConfigError(f"--faults: {exc}") from None
