"""Crash benchmark: N SIGKILLs of a real harvester at random moments under load (one during the
restart's own replay), against the standalone simulator, then a count against what it sent.

Prints a table and, last, one JSON line with the keys ``kills``, ``max_loss_ms`` (largest window
of frames lost around a kill), ``unrecorded_loss`` (must be 0) and ``duplicates`` (must be 0).
``python bench/crash.py [--kills N] [--rate MSGS] [--fsync-ms MS]``; about 3 s per kill.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.journal.crashkit import run_kills


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=None, help="default 12 (--quick: 10)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true", help="30 kills")
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--fsync-ms", type=int, default=200)
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT")
    args = ap.parse_args()
    if args.kills is None:
        args.kills = 30 if args.full else 10 if args.quick else 12
    with tempfile.TemporaryDirectory() as tmp:
        r = run_kills(Path(tmp), kills=args.kills, rate=args.rate, fsync_ms=args.fsync_ms,
                      symbols=args.symbols, min_up=1.0, max_up=3.0)
    print(f"{'kills':>24} {r['kills']} ({r['replay_kills']} during replay)")
    print(f"{'loss per kill (ms)':>24} {r['loss_ms_per_kill']}")
    print(f"{'max_loss_ms':>24} {r['max_loss_ms']} (bound: fsync {args.fsync_ms} + 100)")
    print(f"{'max_loss_ms_received':>24} {r['max_loss_ms_received']} (less the receive lag)")
    print(f"{'unrecorded_loss':>24} {r['unrecorded_loss']}")
    print(f"{'duplicates':>24} {r['duplicates']}")
    print(f"{'rows':>24} {r['trades']} trades, {r['book_rows']} book rows; gaps "
          f"{r['gaps_by_reason']}")
    print(json.dumps({k: r[k] for k in ("kills", "max_loss_ms", "unrecorded_loss",
                                        "duplicates", "max_loss_ms_received")}))


if __name__ == "__main__":
    main()
