"""Sockets of a venue that subscribes after the handshake: the plan's URL names the streams,
the socket opens without them and is sent the venue's subscribe requests at once.

Owns ``subscribing``: a ``connect`` wrapper that opens ``venue.open_url(url)`` and, before
handing the socket over, sends ``venue.open_messages(url)`` (batched by the venue, one request
per ``spacing`` seconds at most), so whoever opens a URL (a connection, a reconnect, a
handover's replacement) gets the same streams as a venue whose URL carries them. The replies
come as frames like any other (the router counts them). Never decodes data frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import trio

from .transport import ConnectFn, MessageSource


class OpensBare(Protocol):
    """What ``subscribing`` asks of the venue (``venues.base.Venue`` has it)."""

    subscribe_on_open: bool
    messages_per_second: int

    def open_url(self, url: str) -> str: ...
    def open_messages(self, url: str) -> list[str]: ...


def subscribing(connect: ConnectFn, venue: OpensBare) -> ConnectFn:
    """``connect`` as is for a venue whose URLs carry the streams; else the wrapper above."""
    if not venue.subscribe_on_open:
        return connect
    spacing = 1.0 / max(1, venue.messages_per_second)

    @asynccontextmanager
    async def open_subscribed(url: str) -> AsyncIterator[MessageSource]:
        async with connect(venue.open_url(url)) as ws:
            for i, message in enumerate(venue.open_messages(url)):
                if i:
                    await trio.sleep(spacing)
                await ws.send(message)
            yield ws

    return open_subscribed
