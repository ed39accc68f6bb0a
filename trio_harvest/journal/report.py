"""What the journal reports: its health findings (``journal_failing``) and its ``/status`` part.

Owns the wording. Pure reads of a ``Journal``'s state; never changes it.
"""

from __future__ import annotations

import time

from .journal import STUCK_AFTER, Journal


def findings(journal: Journal, now: float
             ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(problems, notes) for health, as (code, subject, message)."""
    problems: list[tuple[str, str, str]] = []
    reason = journal.failing
    started, wall = journal.commit_started, time.monotonic()
    if not reason and started is not None and wall - started > STUCK_AFTER:
        reason = f"a journal write has been hanging for {wall - started:.0f}s"
    if reason:
        problems.append(("journal_failing", "journal",
                         f"journal not protecting new frames: {reason} (harvesting goes on; "
                         "the interval becomes a gaps row, reason journal)"))
    notes: list[tuple[str, str, str]] = []
    if journal.disk_bytes > journal.max_bytes // 2:
        notes.append(("journal_large", "journal",
                      f"journal holds {journal.disk_bytes / 1e6:.0f} MB, over half of "
                      f"journal_max_bytes: the lanes holding it back are flushed early"))
    return problems, notes


def as_dict(journal: Journal) -> dict[str, object]:
    st = journal.stats
    return {"dir": str(journal.directory), "failing": journal.failing, "seq": journal.seq,
            "segments": len(journal.segments), "disk_bytes": journal.disk_bytes,
            "pending_bytes": journal.pending_bytes, "records": st.records, "bytes": st.bytes,
            "commits": st.commits, "unprotected": st.unprotected, "failures": st.failures,
            "deleted": st.deleted, "archived": st.archived,
            "raw_dir": None if journal.raw_dir is None else str(journal.raw_dir)}
