"""What a starting harvester tells the operator about the disk it finds: a dead-letter backlog
(how much, where, and what replays it) and, with the simulator, a data dir that already holds
simulated trades (the simulator's ids repeat per seed, so two runs' trades would collide).

Owns those checks and their wording, and the ``recover`` command line that replays a run's dead
letter (also used by the end-of-run summary). Blocking (directory listings): call ``startup_notes``
from a worker thread. Only reads; never changes anything on disk.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ..hints import plural
from ..storage.backlog import scan_backlog
from ..storage.partitions import DEADLETTER_DIR

if TYPE_CHECKING:
    from ..config import Config

SHOWN_SYMBOLS = 3


def recover_command(data_dir: Path, deadletter_dir: Path, config_file: str | None = None) -> str:
    """The command that replays a run's dead letter, with the same settings as the run."""
    if config_file:
        return f"python -m trio_harvest recover --config {shlex.quote(config_file)}"
    cmd = f"python -m trio_harvest recover --data-dir {shlex.quote(str(data_dir))}"
    if deadletter_dir != data_dir / DEADLETTER_DIR:
        cmd += f" --deadletter-dir {shlex.quote(str(deadletter_dir))}"
    return cmd


def backlog_note(cfg: Config, config_file: str | None = None) -> str | None:
    try:
        b = scan_backlog(cfg.deadletter_path)
    except OSError:
        return None
    if not b.files:
        return None
    how = (f"automatic recovery replays them once writes have succeeded for "
           f"{cfg.auto_recover_after:g}s; or run: " if cfg.auto_recover else "replay them with: ")
    return (f"dead letter holds {plural(b.files, 'file')}, {plural(b.rows, 'row')} in "
            f"{cfg.deadletter_path} from an earlier run; {how}"
            f"{recover_command(cfg.data_dir, cfg.deadletter_path, config_file)}")


def sim_collision_note(cfg: Config) -> str | None:
    """With ``sim``: the configured symbols that already have prices in the data dir."""
    if not cfg.sim:
        return None
    try:
        tops = [cfg.data_dir] + [Path(e.path) for e in os.scandir(cfg.data_dir)
                                 if e.name.startswith("venue=")]  # and the layout before venues
        dates = [e.path for top in tops for e in os.scandir(top) if e.name.startswith("date=")]
    except OSError:
        return None
    wanted = set(cfg.symbols)
    found: set[str] = set()
    for date in dates:
        for s in wanted - found:
            if os.path.isdir(os.path.join(date, f"symbol={s}", "kind=prices")):
                found.add(s)
    if not found:
        return None
    names = sorted(found)
    more = f" and {len(names) - SHOWN_SYMBOLS} more" if len(names) > SHOWN_SYMBOLS else ""
    return (f"{cfg.data_dir} already holds prices of {', '.join(names[:SHOWN_SYMBOLS])}{more} "
            f"(an earlier run?); the simulator repeats its trade ids for the same --sim-seed "
            f"({cfg.sim_seed}), so this run's trades would collide with those: use a fresh "
            f"--data-dir or another --sim-seed")


def startup_notes(cfg: Config) -> list[str]:
    """Warnings for the start-up log (blocking)."""
    return [n for n in (backlog_note(cfg), sim_collision_note(cfg)) if n]
