"""The dead-letter folder as a list of work: which files wait to be recovered, and how many rows.

Owns the reading of the dead-letter layout
``<deadletter>/venue=<VENUE>/<kind>/<SYMBOL>_<unix_ms>_<rows>[-u].ndjson`` (and
``<deadletter>/<kind>/…`` of versions before venues, read as ``DEFAULT_VENUE``) plus the
``_rejected/`` folder where recovery keeps lines it could not use (and ``_merging/``, its
crash records). Rows are counted from
the file names (written by the harvester), so a scan never opens a file. Blocking (``os.scandir``):
call it from a worker thread inside trio. Never changes anything on disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..kinds import ALL_KINDS, DEFAULT_VENUE
from .partitions import TMP_PREFIX, deadletter_dir, parse_deadletter_name

REJECTED_DIR = "_rejected"
MERGING_DIR = "_merging"  # recovery's crash records (merge.py); not dead-letter files


@dataclass(frozen=True, slots=True)
class DeadLetterFile:
    kind: str
    name: str
    symbol: str
    unix_ms: int
    rows: int  # as the name says
    venue: str = DEFAULT_VENUE
    legacy: bool = False  # in ``<kind>/`` (written before venues), not ``venue=…/<kind>/``

    @property
    def rel(self) -> PurePath:
        folder = PurePath(self.kind) if self.legacy else deadletter_dir(self.kind, self.venue)
        return folder / self.name

    @staticmethod
    def at(rel: str, symbol: str) -> DeadLetterFile | None:
        """The file at ``rel`` (``venue=V/<kind>/<name>`` or ``<kind>/<name>``), or None."""
        parts = PurePath(rel).parts
        if len(parts) == 2:
            venue, legacy = DEFAULT_VENUE, True
        elif len(parts) == 3 and parts[0].startswith("venue="):
            venue, legacy = parts[0][len("venue="):], False
        else:
            return None
        parsed = parse_deadletter_name(parts[-1])
        ms, rows = (parsed[1], parsed[2]) if parsed is not None else (0, 0)
        return DeadLetterFile(parts[-2], parts[-1], symbol, ms, rows, venue, legacy)


@dataclass(slots=True)
class Backlog:
    files: int = 0
    rows: int = 0
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (files, rows)
    rejected_files: int = 0
    unknown: list[str] = field(default_factory=list)  # files that are not dead-letter files

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "rows": self.rows,
            "by_kind": {k: {"files": f, "rows": r} for k, (f, r) in sorted(self.by_kind.items())},
            "rejected_files": self.rejected_files,
            "unknown_files": list(self.unknown),
        }


def list_deadletter(root: Path, unknown: list[str] | None = None) -> list[DeadLetterFile]:
    """Dead-letter files waiting under ``root``, oldest first (by the time in their name).
    Temp files are skipped; anything else unexpected is appended to ``unknown``."""
    out: list[DeadLetterFile] = []
    _list_kinds(root, PurePath(), DEFAULT_VENUE, True, out, unknown)
    out.sort(key=lambda f: (f.unix_ms, f.kind, f.venue, f.name))
    return out


def _dirs(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _list_kinds(root: Path, rel: PurePath, venue: str, legacy: bool, out: list[DeadLetterFile],
                unknown: list[str] | None) -> None:
    for kind in _dirs(root / rel):
        if legacy and kind.startswith("venue=") and len(kind) > len("venue="):
            _list_kinds(root, PurePath(kind), kind[len("venue="):], False, out, unknown)
            continue
        if legacy and kind in (REJECTED_DIR, MERGING_DIR):
            continue
        if kind not in ALL_KINDS:
            if unknown is not None:
                unknown.append(f"{(rel / kind).as_posix()}/")
            continue
        for entry in os.scandir(root / rel / kind):
            if entry.name.startswith(TMP_PREFIX) or not entry.is_file():
                continue
            parsed = parse_deadletter_name(entry.name)
            if parsed is None:
                if unknown is not None:
                    unknown.append((rel / kind / entry.name).as_posix())
                continue
            symbol, unix_ms, rows = parsed
            out.append(DeadLetterFile(kind, entry.name, symbol, unix_ms, rows, venue, legacy))


def scan_backlog(root: Path) -> Backlog:
    unknown: list[str] = []
    files = list_deadletter(root, unknown)
    b = Backlog(files=len(files), rows=sum(f.rows for f in files), unknown=unknown)
    for f in files:
        n, r = b.by_kind.get(f.kind, (0, 0))
        b.by_kind[f.kind] = (n + 1, r + f.rows)
    rejected = root / REJECTED_DIR
    if rejected.is_dir():
        for _dirpath, _dirs, names in os.walk(rejected):
            b.rejected_files += sum(1 for n in names if not n.startswith(TMP_PREFIX))
    return b
