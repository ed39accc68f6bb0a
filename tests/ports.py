"""Ports for tests that must name a port before a process binds it (``--metrics-port``, and a
supervisor's workers on the ports after it).

A port the kernel handed out (bind to port 0) and that was then let go is back in the ephemeral
range, where any ``connect`` on the machine may take it as its source port before the process
under test binds it: with many tests and processes on one machine, that happens. So these ports
come from below the ephemeral range, which the kernel never hands out on its own, at random, and
each is checked free by binding it. Never a fixed port.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 10_000  # below: well-known and registered services
_rng = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(n: int = 1) -> int:
    """The first of ``n`` consecutive free ports (a supervisor's and its workers')."""
    top = _ephemeral_start() - n
    for _ in range(1000):
        base = _rng.randrange(_LOWEST, top)
        if all(_bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no {n} consecutive free ports below the ephemeral range")
