"""The publish gate between a write thread and the trio task that waits for it.

A thread cannot be killed: when a write times out, trio abandons the thread but it keeps
running. The gate makes "timed out" and "published" mutually exclusive: the thread must win
``try_publish()`` before it renames its file into place, and the waiter must win ``abandon()``
before it treats the batch as failed (and dead-letters it). Exactly one of them wins. The lock is
held only to flip a flag, never during I/O.
"""

from __future__ import annotations

import threading

OPEN, PUBLISHING, ABANDONED = "open", "publishing", "abandoned"


class PublishGate:
    __slots__ = ("_lock", "_state")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = OPEN

    def try_publish(self) -> bool:
        """Writer side: True if the file may be renamed into place (then it will be)."""
        with self._lock:
            if self._state == ABANDONED:
                return False
            self._state = PUBLISHING
            return True

    def abandon(self) -> bool:
        """Waiter side: True if the writer will never publish; False if it already decided to."""
        with self._lock:
            if self._state == PUBLISHING:
                return False
            self._state = ABANDONED
            return True

    @property
    def state(self) -> str:
        return self._state
