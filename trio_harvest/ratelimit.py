"""Rate-limited logging: the first occurrence of a message key is logged, repeats within the
interval are counted and reported with the next one ("… (repeated 412 times)").

Owns only the suppression bookkeeping; the clock is injected so it is tested without sleeping.
Never drops the *count* of what it suppressed, unless more than ``max_keys`` different messages
compete (then it forgets them all at once: its memory is bounded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log unless ``key`` was logged less than ``interval`` ago. True if it was logged."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if len(self._last) >= self.max_keys and key not in self._last:
            self._last.clear()
            self._suppressed.clear()  # bounded together: varying keys cannot pile up
        self._last[key] = now
        repeated = self._suppressed.pop(key, 0)
        if repeated:
            self.logger.log(level, msg + " (and %d more like it since the last report)",
                            *args, repeated)
        else:
            self.logger.log(level, msg, *args)
        return True

    def suppressed(self, key: str) -> int:
        return self._suppressed.get(key, 0)
