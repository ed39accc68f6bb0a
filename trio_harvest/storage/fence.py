"""The write fence of a leased dataset: a process that cannot show it still holds its shard's
lease stops changing the bucket.

Owns one entry per dataset location (``s3://bucket/prefix``): the monotonic deadline up to which
writes are allowed (moved forward by each successful lease renewal, ``allow_until``) or the
reason they are refused for good (``close``, once the lease is lost). Every mutating call of
``S3Store`` (a data PUT, a DELETE) asks ``refusal`` first; the write then fails like any other
(rotation dead-letters the batch on local disk). A location that no lease guards is never
fenced. Process-wide on purpose: rotation, compaction and recovery each open their own store,
and none of them may write past the lease. Pure bookkeeping: no I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_lock = threading.Lock()
_until: dict[str, float] = {}  # location -> monotonic deadline of the last renewal's grant
_closed: dict[str, str] = {}  # location -> why writes stop for good
_why: dict[str, str] = {}  # location -> what a refusal past the deadline says
clock: Callable[[], float] = time.monotonic


def allow_until(location: str, deadline: float, why: str, *, reopen: bool = False) -> None:
    """Writes to ``location`` are allowed until ``deadline`` (``clock()`` time); past it they
    are refused with ``why``. ``reopen``: a lease newly acquired lifts a ``close``."""
    with _lock:
        if reopen:
            _closed.pop(location, None)
        if location not in _closed:
            _until[location] = deadline
            _why[location] = why


def close(location: str, why: str) -> None:
    """No write to ``location`` from this process any more."""
    with _lock:
        _closed[location] = why


def release(location: str) -> None:
    """The lease is given back at the end of a run: the location is no longer guarded."""
    with _lock:
        _until.pop(location, None)
        _closed.pop(location, None)
        _why.pop(location, None)


def refusal(location: str) -> str | None:
    """None if this process may write to ``location`` now, else one line saying why not."""
    closed = _closed.get(location)
    if closed is not None:
        return closed
    until = _until.get(location)
    if until is None or clock() < until:
        return None
    return _why.get(location, "fenced")
