"""Tests marked ``alone`` run with no other test of the run beside them, also when pytest-xdist
runs the suite in several worker processes (a timing bound, such as what a SIGKILL may lose,
is measured on a machine that only the test itself loads).

A readers-writer lock across the workers, on two files in the run's shared temp root: every
other test holds the lock shared while it runs (set-up and teardown included); an ``alone``
test holds it exclusively. The gate in front makes a waiting ``alone`` test go first: once it
holds the gate no new test starts, the running ones finish, then it runs. Without xdist (one
process) there is nothing to wait for and no lock is taken.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

MARK = "alone"


def run_root(factory: pytest.TempPathFactory) -> Path:
    """The temp folder of the whole run, one for all its workers (under xdist each worker's
    basetemp is a folder of it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _root(config: pytest.Config) -> Path | None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return run_root(config._tmp_path_factory)  # type: ignore[attr-defined]


@contextmanager
def locked(path: Path, how: int = fcntl.LOCK_EX) -> Iterator[IO[bytes]]:
    """``path`` flock-ed for the block (exclusive by default), across the run's workers."""
    with open(path, "a+b") as fh:
        fcntl.flock(fh, how)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def held(item: pytest.Item) -> Iterator[None]:
    """Around one test's whole run: exclusive for an ``alone`` test, shared for the others."""
    root = _root(item.config)
    if root is None:
        yield
        return
    gate, lock = root / "alone.gate", root / "alone.lock"
    if item.get_closest_marker(MARK) is not None:
        with locked(gate, fcntl.LOCK_EX), locked(lock, fcntl.LOCK_EX):
            yield
    else:
        with locked(gate, fcntl.LOCK_EX):  # only to pass the gate: released at once
            shared = open(lock, "a+b")
            fcntl.flock(shared, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(shared, fcntl.LOCK_UN)
            shared.close()
