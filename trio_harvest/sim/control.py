"""Client control messages: SUBSCRIBE, UNSUBSCRIBE and LIST_SUBSCRIPTIONS, as Binance answers them.

Owns parsing a client's JSON request and the reply text (``{"result":null,"id":1}`` or
``{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}``), and the venue's limit
on how many messages a client may send per second (``MessageRate``; over it, the server closes
the connection). Pure: it returns what
to subscribe to and what to answer; whether a subscribed stream ever delivers (route, symbol) is
decided elsewhere, and a stream that will never deliver is still acknowledged, like Binance.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec

_STREAM_RE = re.compile(r"^[^\WA-Z]+@[A-Za-z0-9_@]+$")
_encode = msgspec.json.encode


class MessageRate:
    """At most ``limit`` client messages in any ``window`` seconds (Spot 5, COIN-M 10 per
    second); ``allow(now)`` is False for the message that goes over."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        times = self._times
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        return len(times) <= self.limit


@dataclass(frozen=True, slots=True)
class ControlResult:
    reply: str
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()


def _error(code: int, msg: str, req_id: Any) -> ControlResult:
    body = {"error": {"code": code, "msg": msg}, "id": req_id}
    return ControlResult(_encode(body).decode())


def handle_control(message: str | bytes, subscribed: Collection[str]) -> ControlResult:
    """Answer one client message; ``subscribed`` is the connection's current list."""
    try:
        req = msgspec.json.decode(message)
    except msgspec.DecodeError as exc:
        return _error(3, f"Invalid JSON: {exc}", None)
    if not isinstance(req, dict):
        return _error(2, "Invalid request: expected an object", None)
    req_id = req.get("id")
    if not (
        (isinstance(req_id, int) and not isinstance(req_id, bool) and req_id >= 0)
        or isinstance(req_id, str)
    ):
        return _error(2, "Invalid request: request ID must be an unsigned integer", None)
    method = req.get("method")
    if method == "LIST_SUBSCRIPTIONS":
        return ControlResult(_encode({"result": list(subscribed), "id": req_id}).decode())
    if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
        return _error(2, "Invalid request: unknown method", req_id)
    params = req.get("params")
    if not isinstance(params, list) or not all(
        isinstance(p, str) and _STREAM_RE.match(p) for p in params
    ):
        return _error(2, "Invalid request: invalid stream", req_id)
    ok = _encode({"result": None, "id": req_id}).decode()
    names = tuple(dict.fromkeys(params))
    if method == "SUBSCRIBE":
        return ControlResult(ok, subscribe=names)
    return ControlResult(ok, unsubscribe=names)
