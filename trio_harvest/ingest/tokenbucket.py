"""Pacing of REST requests: a token bucket of request *weight* over trio time.

``TokenBucket(per_minute=W, burst=C)`` refills ``(W - C) / 60`` per second up to ``C``, so any
60 s window spends at most ``C + (W - C) = W`` and a storm of requests (200 symbols resyncing
their books at once) goes out evenly, a few at once and then one every ``weight / rate``
seconds. It paces one kind of caller; the exchange-wide cap shared by every REST caller is
``restclient.WeightBudget`` (a caller may use both). ``pause_until`` honours a ``Retry-After``.
``hourly(N, burst=C)`` is the bucket whose every hour spends at most ``N`` (OKX's 480 subscribe
requests an hour per connection).
Waiters are served in arrival order (a ``trio.Lock`` is fair). Time is ``trio.current_time()``,
so tests run under MockClock.
"""

from __future__ import annotations

import trio

DEFAULT_WEIGHT_PER_MIN = 1000  # of the shared 1200 (backfill_weight): backfill keeps >= 200
DEFAULT_BURST = 100


class TokenBucket:
    def __init__(self, per_minute: float = DEFAULT_WEIGHT_PER_MIN,
                 burst: float = DEFAULT_BURST) -> None:
        if not 0 < burst < per_minute:
            raise ValueError(f"need 0 < burst < per_minute, got burst={burst} per_minute={per_minute}")
        self.per_minute = float(per_minute)
        self.burst = float(burst)
        self.rate = (self.per_minute - self.burst) / 60.0  # weight per second
        self._tokens = self.burst
        self._stamp: float | None = None
        self._paused_until = 0.0
        self._lock = trio.Lock()
        self.spent = 0.0
        self.waited = 0.0  # seconds callers spent waiting, in total

    @classmethod
    def hourly(cls, per_hour: float, burst: float) -> TokenBucket:
        """At most ``per_hour`` in any hour: ``burst`` at once, then ``(per_hour - burst) /
        3600`` a second (any 60 s window spends at most ``burst`` plus a minute's refill)."""
        if not 0 < burst < per_hour:
            raise ValueError(f"need 0 < burst < per_hour, got burst={burst} per_hour={per_hour}")
        return cls(per_minute=burst + (per_hour - burst) / 60.0, burst=burst)

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
            return
        start = max(self._stamp, self._paused_until)  # nothing accrues during a pause
        if now > start:
            self._tokens = min(self.burst, self._tokens + (now - start) * self.rate)
        self._stamp = max(self._stamp, now)

    def available(self) -> float:
        self._refill(trio.current_time())
        return self._tokens

    def pause_until(self, when: float) -> None:
        """Spend nothing before trio time ``when`` (e.g. HTTP 429 with ``Retry-After``); the
        bucket starts empty afterwards."""
        if when > self._paused_until:
            self._paused_until = when
            self._refill(trio.current_time())
            self._tokens = 0.0

    async def acquire(self, weight: float) -> None:
        """Wait until ``weight`` may be spent, then spend it."""
        if weight > self.burst:
            raise ValueError(f"weight {weight} is larger than the burst {self.burst}")
        start = trio.current_time()
        async with self._lock:
            while True:
                now = trio.current_time()
                if now < self._paused_until:
                    await trio.sleep_until(self._paused_until)
                    continue
                self._refill(now)
                if self._tokens >= weight:
                    self._tokens -= weight
                    self.spent += weight
                    break
                # at least 1 ms: a float-rounded sleep of ~0 s would never make progress
                await trio.sleep(max((weight - self._tokens) / self.rate, 0.001))
        self.waited += trio.current_time() - start
