"""A worker's side of its supervisor's life line: stdin is a pipe whose only writer is the
supervisor, so end of file on it means the supervisor is gone (exited, crashed or SIGKILLed).

Owns ``--stop-on-eof``: the check that stdin is a pipe (a user mistake otherwise), the task that
waits for end of file and then asks the run for its clean stop (final flush, journal closed), and
quieting the worker's stdout/stderr once their reader (the dead supervisor) is gone, so the last
log lines and the summary cannot fail on a broken pipe. Never reads anything but stdin; never
stops the run itself (it only calls the ``stop`` it was given).

Why a pipe and not ``PR_SET_PDEATHSIG``: Linux sends the parent-death signal when the *thread*
that forked the child ends, and trio forks from a cached worker thread that ends after ~10 s
idle, so every worker got SIGTERM ten seconds after its start. A pipe's end of file belongs to
the process: it comes when the last writer closes, which for the supervisor's write end (close on
exec, one per worker) is when the supervisor process ends, however it ends. It also sees a
supervisor that died before the worker started watching (the end of file is still there), it is
not Linux-only, and it needs no thread held alive.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import stat
from collections.abc import Callable

import trio

from ..errors import ConfigError

log = logging.getLogger("trio_harvest.parent")

STDIN = 0
REASON = "supervisor gone (stdin closed)"


def check_stdin_is_pipe(fd: int = STDIN) -> None:
    """``ConfigError`` unless ``fd`` is a pipe or a socket (what a supervisor gives)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        mode = 0
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        raise ConfigError("--stop-on-eof: stdin must be a pipe from the supervising process "
                          "(the run stops cleanly when it closes); it is not")


async def stop_on_eof(stop: Callable[[str], None], fd: int = STDIN) -> None:
    """Wait for end of file on ``fd``, then ``stop(REASON)``. Bytes that arrive are ignored.
    Never raises: a failure to watch is logged once and the run goes on."""
    try:
        while True:
            await trio.lowlevel.wait_readable(fd)
            if not os.read(fd, 4096):
                break
    except OSError as exc:
        log.warning("--stop-on-eof: cannot watch stdin (%s); the run will not notice its "
                    "supervisor's death", exc)
        return
    quiet_broken_outputs()
    log.warning("%s: stopping cleanly", REASON)
    stop(REASON)


def quiet_broken_outputs(fds: tuple[int, ...] = (1, 2)) -> list[int]:
    """Point each of ``fds`` whose reader is gone (a pipe to a dead process) at ``/dev/null``;
    the ones still read are left alone. Returns the fds redirected."""
    broken = [fd for fd in fds if _reader_gone(fd)]
    if broken:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in broken:
                os.dup2(null, fd)
        finally:
            os.close(null)
    return broken


def _reader_gone(fd: int) -> bool:
    """A pipe's write end reports POLLERR once no process holds its read end."""
    with contextlib.suppress(OSError, ValueError):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    return False
