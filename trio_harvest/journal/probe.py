"""The disk probe: "a bad disk is seen at once". Every interval, for each directory that must
stay writable (the data dir, the journal dir), a tiny file is written, fsynced and removed in a
worker thread; one that hangs counts as failing.

Owns ``failures`` (directory -> why it failed, cleared by its next good probe), which health
turns into ``disk_unwritable`` problems whether or not a Parquet write was due. Never writes
anything else and never touches the harvester.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import trio

PROBE_NAME = ".trio_harvest-probe"


def probe_dir(directory: Path) -> None:
    """Blocking: create, write, fsync and remove a probe file; raises ``OSError`` on failure."""
    directory.mkdir(parents=True, exist_ok=True)  # created per write, like every directory
    path = directory / f"{PROBE_NAME}-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"ok\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class DiskProbe:
    """Probes run in threads that are never waited on with a trio timeout (a mock clock jumps
    while a thread runs): a probe still running ``timeout`` seconds of *wall* time later counts
    as hung, and a hung probe is not started again until it returns."""

    def __init__(self, dirs: tuple[Path, ...], *, interval: float = 5.0,
                 timeout: float | None = None, wall: Callable[[], float] = time.monotonic) -> None:
        self.dirs = dirs
        self.interval = interval
        # a hang is reported within 2 x interval: next probe <= interval, flagged interval/2 later
        self.timeout = timeout if timeout is not None else max(1.0, interval / 2)
        self.wall = wall
        self.failures: dict[Path, str] = {}
        self.probes = 0
        self._running: dict[Path, float] = {}  # directory -> wall time its probe started

    def check_hung(self) -> None:
        now = self.wall()
        for directory, started in self._running.items():
            if now - started > self.timeout:
                self.failures[directory] = (f"a write+fsync has not returned for "
                                            f"{now - started:.0f}s")

    async def _probe(self, directory: Path) -> None:
        self._running[directory] = self.wall()
        try:
            await trio.to_thread.run_sync(probe_dir, directory, abandon_on_cancel=True)
        except OSError as exc:
            self.failures[directory] = f"{type(exc).__name__}: {exc.strerror or exc}"
        else:
            self.failures.pop(directory, None)
        finally:
            self._running.pop(directory, None)
        self.probes += 1

    async def run_task(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                       ) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self.check_hung()
                for directory in self.dirs:
                    if directory not in self._running:
                        nursery.start_soon(self._probe, directory)
                await trio.sleep(self.interval)

    def findings(self) -> list[tuple[str, str, str]]:
        """Problems for health, as (code, subject, message)."""
        self.check_hung()
        return [("disk_unwritable", str(path), f"{path} is not writable: {error}")
                for path, error in self.failures.items()]
