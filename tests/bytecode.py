"""Compiled bytecode for the run, also where the environment says not to write it
(``PYTHONDONTWRITEBYTECODE``, as in many containers).

Without it every ``python -m trio_harvest`` the tests start compiles the whole package from
source again (a fifth of a process's start-up), and every xdist worker rewrites the asserts of
every test module again (seconds of CPU each). So the controller compiles the package once
before the tests start (the processes they spawn read that bytecode and write none), and
collection writes pytest's rewritten test modules, which the next run reads. Both land in the
``__pycache__`` folders beside the sources (ignored by git) and are stale-checked by Python as
usual. Nothing else changes: what the tests run and assert is the same.
"""

from __future__ import annotations

import compileall
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio_harvest


def compile_package() -> None:
    """Bytecode for every module of the package this run imports (up to date ones are kept).
    Once, in the controller, before any worker or test starts a process."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    compileall.compile_dir(Path(trio_harvest.__file__).parent, quiet=1)


@contextmanager
def written() -> Iterator[None]:
    """Around collection: the test modules' rewritten bytecode is written for the next run."""
    before = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        yield
    finally:
        sys.dont_write_bytecode = before
