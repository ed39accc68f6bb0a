"""Sockets of a venue that subscribes after the handshake: the plan's URL names the streams,
the socket opens without them and is sent the venue's subscribe requests at once.

Owns ``subscribing``: a ``connect`` wrapper that opens ``venue.open_url(url)`` and, before
handing the socket over, sends ``venue.open_messages(url)`` (batched by the venue, one request
per ``spacing`` seconds at most), so whoever opens a URL (a connection, a reconnect, a
handover's replacement) gets the same streams as a venue whose URL carries them. The replies
come as frames like any other (the router counts them). A venue that caps the requests of a
connection (``subscribe_requests_per_hour``: OKX's 480 subscribe, unsubscribe and login requests
an hour per connection) gets each socket wrapped in a ``Budgeted`` sender: every message but the
keepalive ping, the ones sent on open and every later subscribe or unsubscribe of the session
(a listing change), waits for a token of that socket's ``TokenBucket.hourly`` (a tenth of the
hour at once, then evenly), so no socket ever asks for more. While a request waits (its
sender holds the connection's send lock, so the keepalive cannot send), the socket is sent the
ping itself every keepalive interval: a quiet socket is never dropped for a budget wait. Never
decodes data frames.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import trio

from ..ratelimit import RateLimitedLog
from .tokenbucket import TokenBucket
from .transport import ConnectFn, MessageSource

log = logging.getLogger("trio_harvest.subscribe")
_ratelog = RateLimitedLog(log, interval=600.0)
BURST_SHARE = 10  # of a socket's hourly requests, this share may go at once (OKX: 48 of 480)


class OpensBare(Protocol):
    """What ``subscribing`` asks of the venue (``venues.base.Venue`` has it)."""

    subscribe_on_open: bool
    messages_per_second: int

    def open_url(self, url: str) -> str: ...
    def open_messages(self, url: str) -> list[str]: ...


class Budgeted:
    """One socket whose requests are budgeted: ``send`` waits for a token of ``bucket`` for
    every message but ``ping`` (the keepalive's, sent meanwhile every ``interval`` seconds);
    reading is the socket's own (its ``get_message`` and ``poll``, no extra call per frame)."""

    def __init__(self, ws: MessageSource, bucket: TokenBucket, ping: str | None,
                 interval: float) -> None:
        self.ws = ws
        self.bucket = bucket
        self.ping = ping
        self.interval = interval
        self.get_message: Callable[[], Awaitable[str | bytes]] = ws.get_message
        poll = getattr(ws, "poll", None)
        if poll is not None:
            self.poll = poll
        self.requests = 0
        self._sent_at = trio.current_time()

    async def send(self, message: str) -> None:
        if message != self.ping:
            if self.bucket.available() < 1:
                _ratelog.log(logging.WARNING, "subscribe budget", "a socket has used its "
                             "subscribe requests of the hour (%g at once, %g an hour): the next "
                             "one waits for the budget", self.bucket.burst,
                             self.bucket.burst + self.bucket.rate * 3600)
            await self._acquire()
            self.requests += 1
        await self.ws.send(message)
        self._sent_at = trio.current_time()

    async def _acquire(self) -> None:
        ping = self.ping
        while ping is not None and self.interval > 0 and self.bucket.available() < 1:
            with trio.move_on_at(self._sent_at + self.interval):
                await self.bucket.acquire(1)  # a cancel takes no token
                return
            await self.ws.send(ping)  # the wait is long: keep the socket alive meanwhile
            self._sent_at = trio.current_time()
        await self.bucket.acquire(1)


def subscribing(connect: ConnectFn, venue: OpensBare) -> ConnectFn:
    """``connect`` as is for a venue whose URLs carry the streams; else the wrapper above."""
    if not venue.subscribe_on_open:
        return connect
    spacing = 1.0 / max(1, venue.messages_per_second)
    per_hour: int = getattr(venue, "subscribe_requests_per_hour", 0)
    keepalive = getattr(venue, "keepalive", None)
    ping: str | None = getattr(keepalive, "ping_text", None)
    interval: float = getattr(keepalive, "interval", 0.0)

    @asynccontextmanager
    async def open_subscribed(url: str) -> AsyncIterator[MessageSource]:
        async with connect(venue.open_url(url)) as raw:
            ws: MessageSource = raw if not per_hour else \
                Budgeted(raw, TokenBucket.hourly(per_hour, max(1, per_hour // BURST_SHARE)), ping,
                         interval)
            for i, message in enumerate(venue.open_messages(url)):
                if i:
                    await trio.sleep(spacing)
                await ws.send(message)
            yield ws

    return open_subscribed
