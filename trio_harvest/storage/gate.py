"""The publish gate between a write thread and the trio task that waits for it.

A thread cannot be killed: when a write times out, trio abandons the thread but it keeps
running. The gate makes "timed out" and "published" mutually exclusive: the thread must win the
gate before it publishes its file, and the waiter must win ``abandon()`` before it treats the
batch as failed (and dead-letters it). Exactly one of them wins. The lock is held only to flip a
flag, never during I/O.

A writer whose publish step can still fail (a local rename) wins with ``begin()`` and then
reports how it ended with ``settle()``; a waiter that lost the gate waits for that outcome, so a
rename that fails after the gate was won sends the batch to the dead letter instead of counting
it as written. A writer whose publish is already done when it wins (an object store's PUT) wins
with ``try_publish()``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

OPEN, PUBLISHING, PUBLISHED, FAILED, ABANDONED = (
    "open", "publishing", "published", "failed", "abandoned")


class PublishGate:
    __slots__ = ("_lock", "_settled", "_state")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = OPEN
        self._settled: Callable[[], None] | None = None

    def try_publish(self) -> bool:
        """Writer side, publish already done: True if it stands (the file is published)."""
        with self._lock:
            if self._state == ABANDONED:
                return False
            self._state = PUBLISHED
            return True

    def begin(self) -> bool:
        """Writer side, before a publish step that may fail: True if it may run (then
        ``settle`` must follow)."""
        with self._lock:
            if self._state == ABANDONED:
                return False
            self._state = PUBLISHING
            return True

    def settle(self, published: bool) -> None:
        """Writer side, after ``begin()``: how the publish step ended."""
        with self._lock:
            self._state = PUBLISHED if published else FAILED
            callback, self._settled = self._settled, None
        if callback is not None:
            callback()

    def when_settled(self, callback: Callable[[], None]) -> bool:
        """Waiter side: ``callback`` is called (from the writer's thread) when the publish step
        ends; False (and never called) if it is not running."""
        with self._lock:
            if self._state != PUBLISHING:
                return False
            self._settled = callback
            return True

    def abandon(self) -> bool:
        """Waiter side: True if the writer will never publish; False if it already decided to
        (then ``settled`` and ``failed`` tell how that ended)."""
        with self._lock:
            if self._state != OPEN:
                return self._state == ABANDONED
            self._state = ABANDONED
            return True

    @property
    def settled(self) -> bool:
        """False while a publish step the writer began is still running."""
        return self._state != PUBLISHING

    @property
    def failed(self) -> bool:
        return self._state == FAILED

    @property
    def state(self) -> str:
        return self._state
