"""``DONE``: an awaitable that is already done, returned by a synchronous step that had nothing
left to wait for (so the hot path builds no coroutine per message). Owns nothing else."""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Any


class _Done:
    """An awaitable that is already done: awaiting it returns None at once."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # (a generator that ends at once)


DONE: Awaitable[None] = _Done()
