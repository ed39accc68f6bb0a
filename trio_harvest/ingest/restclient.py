"""The harvester's REST side: an injectable ``fetch``, its httpx implementation, and the weight
budget that keeps every caller together under the exchange's per-minute request-weight limit.

Owns talking HTTP (httpx's ``AsyncClient``, which runs on trio through anyio) and pacing:
``WeightBudget.acquire`` waits (trio time) until a request of some weight fits in the current
window, ``pause`` honours a 429/418 ``Retry-After``, ``observe_used`` adopts the server's own
count (the venue's used-weight header) when it is higher. Never interprets a body (callers do).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import trio

from .. import venues
from . import tls

Params = Mapping[str, str | int]


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class RestError(Exception):
    """The request did not get an HTTP answer (connection refused, timeout, ...)."""


FetchFn = Callable[[str, Params], Awaitable[RestResponse]]


async def tls_for(base_url: str) -> ssl.SSLContext | bool:
    """What httpx should verify with: the process's verifying context (``tls.py``: the system's
    trust store and ``--ca-file``, made once off the loop); a plain ``http://`` URL (the
    simulator) needs none."""
    if not base_url.startswith("https://"):
        return False
    return await tls.client_context()


@asynccontextmanager
async def http_fetch(base_url: str, *, request_seconds: float = 10.0) -> AsyncIterator[FetchFn]:
    """A ``fetch(path, params)`` for ``base_url`` over one pooled httpx client."""
    verify = await tls_for(base_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=request_seconds, verify=verify,
                                 headers={"User-Agent": "trio_harvest"}) as client:

        async def fetch(path: str, params: Params) -> RestResponse:
            try:
                r = await client.get(path, params=dict(params))
            except httpx.HTTPError as exc:
                raise RestError(f"{type(exc).__name__}: {exc}") from None
            return RestResponse(r.status_code, {k.lower(): v for k, v in r.headers.items()},
                                r.content)

        yield fetch


def retry_after(resp: RestResponse, default: float) -> float:
    raw = resp.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


class WeightBudget:
    """At most ``per_window`` request weight per ``window`` seconds (trio time)."""

    def __init__(self, per_window: int, window: float = 60.0,
                 clock: Callable[[], float] = trio.current_time,
                 header: str | None = None) -> None:
        if per_window < 1:
            raise ValueError("per_window must be at least 1")
        # the response header with the weight the server counted in this window (the venue's)
        self.header = header if header is not None else venues.default().weight_header
        self.limit = per_window
        self.window = window
        self._clock = clock
        self._start: float | None = None
        self._used = 0
        self._paused_until = 0.0
        self.spent = 0  # over the whole run
        self.waits = 0  # times a request had to wait for the budget

    @property
    def used(self) -> int:
        return self._used

    @property
    def paused_until(self) -> float:
        """Trio time before which nothing goes out (a 429/418's pause; 0.0: none yet)."""
        return self._paused_until

    def _roll(self, now: float) -> None:
        if self._start is None or now >= self._start + self.window:
            self._start = now
            self._used = 0

    async def acquire(self, weight: int) -> None:
        """Wait until ``weight`` fits, then take it. A weight above the limit waits for an
        empty window and then goes through alone."""
        waited = False
        while True:
            now = self._clock()
            if now < self._paused_until:
                waited = True
                await trio.sleep_until(self._paused_until)
                continue
            self._roll(now)
            if self._used + weight <= self.limit or self._used == 0:
                self._used += weight
                self.spent += weight
                self.waits += waited
                return
            waited = True
            assert self._start is not None
            await trio.sleep_until(self._start + self.window)

    def pause(self, seconds: float) -> None:
        """The server said stop (429/418): nothing goes out for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe_used(self, headers: Mapping[str, str]) -> None:
        raw = headers.get(self.header)
        if raw is None:
            return
        try:
            used = int(raw)
        except ValueError:
            return
        self._roll(self._clock())
        if used > self._used:
            self._used = used
