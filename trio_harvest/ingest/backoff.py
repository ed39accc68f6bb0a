"""Reconnect delays: capped exponential backoff with full jitter (AWS architecture blog's
"Exponential Backoff and Jitter"). Pure: takes a random source, never sleeps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """Uniform in [0, min(maximum, initial * 2**attempt)]; the attempt count then grows."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt, 62)))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        """Call once a connection has proved healthy (delivered data)."""
        self.attempt = 0
