"""The dead letter's move from ``DATA_DIR/deadletter/`` (its first place, which readers of the
dataset's root had to be told to skip) to ``DATA_DIR/_deadletter/``.

Owns ``adopt_legacy``: every file under the old folder is renamed to the same relative path
under the new one (one ``os.rename`` each, on the same file system: a file is in one place or
the other, never lost or doubled), then the old folders are removed if empty. Idempotent and
safe to run by several processes at once (a file another one moved is skipped). Run by the
harvester at start-up and by ``recover`` before they read the dead letter. Blocking.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .partitions import DEADLETTER_DIR, LEGACY_DEADLETTER_DIR, TMP_PREFIX


def adopt_legacy(data_dir: Path, deadletter_dir: Path) -> int:
    """Move the old ``data_dir/deadletter`` into ``deadletter_dir`` when that is the new
    default place; returns the number of files moved (0 when there was nothing to do)."""
    old = data_dir / LEGACY_DEADLETTER_DIR
    if deadletter_dir != data_dir / DEADLETTER_DIR or not old.is_dir():
        return 0
    moved = 0
    for dirpath, _dirs, names in os.walk(old):
        here = Path(dirpath)
        target_dir = deadletter_dir / here.relative_to(old)
        for name in sorted(names):
            if name.startswith(TMP_PREFIX):
                continue  # a write that never finished: start-up's temp cleanup removes it
            target = target_dir / name
            if target.exists():
                continue  # never overwrite; the old one stays and is reported
            target_dir.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # another process moved it
                os.rename(here / name, target)
                moved += 1
    for dirpath, _dirs, _names in sorted(os.walk(old), key=lambda t: -len(t[0])):
        with contextlib.suppress(OSError):  # not empty: something stays for a person to see
            os.rmdir(dirpath)
    return moved
