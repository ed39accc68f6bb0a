"""What an OKX v5 public socket of the simulator answers a client: subscribe, unsubscribe and
the text ``ping``.

Owns the parsing of ``{"id":"7","op":"subscribe","args":[{"channel","instId"},…]}`` and the
answers OKX gives: one ack per arg (``{"id":"7","event":"subscribe","arg":{…},"connId":…}``),
an ``error`` event for a request it refuses (``60012`` a bad request, ``60018`` a channel or
instId that does not exist, ``60014`` over 480 subscribe/unsubscribe requests an hour on the
connection), and ``pong`` for ``ping``. Pure: it says what to subscribe and what to answer;
the server applies it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from .control import MessageRate
from .okx_wire import CHANNELS, INDEX, LIQUIDATIONS

REQUESTS_PER_HOUR = 480  # subscribe + unsubscribe + login, per connection
ARGS_BYTES = 64 * 1024  # the args of one request at most (as text)


@dataclass(frozen=True, slots=True)
class OkxAnswer:
    replies: tuple[str, ...]
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    refused: bool = False  # an error event was sent


def request_budget() -> MessageRate:
    """OKX's 480 subscribe/unsubscribe requests an hour per connection (a refused one counts)."""
    return MessageRate(REQUESTS_PER_HOUR, 3600.0)


def _error(code: str, msg: str, conn_id: str, req_id: object = None) -> str:
    doc: dict[str, object] = {"event": "error", "code": code, "msg": msg, "connId": conn_id}
    if isinstance(req_id, str):
        doc = {"id": req_id, **doc}
    return json.dumps(doc, separators=(",", ":"))


def handle_okx(message: str | bytes, conn_id: str, budget: MessageRate, now: float,
               listed: Callable[[str], bool]) -> OkxAnswer:
    """Answer one client message; ``listed(instId)`` says whether the instrument exists."""
    if message in ("ping", b"ping"):
        return OkxAnswer(("pong",))
    try:
        req = json.loads(message)
    except ValueError:
        return OkxAnswer((_error("60012", f"Invalid request: {str(message)[:60]}", conn_id),),
                         refused=True)
    op = req.get("op") if isinstance(req, dict) else None
    args = req.get("args") if isinstance(req, dict) else None
    req_id = req.get("id") if isinstance(req, dict) else None
    if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
        return OkxAnswer((_error("60012", f"Invalid request: {str(message)[:60]}", conn_id,
                                 req_id),), refused=True)
    if len(json.dumps(args)) > ARGS_BYTES:
        return OkxAnswer((_error("60012", "Invalid request: args too long", conn_id, req_id),),
                         refused=True)
    if not budget.allow(now):
        return OkxAnswer((_error("60014", "Requests too frequent.", conn_id, req_id),),
                         refused=True)
    replies: list[str] = []
    names: list[str] = []
    for arg in args:
        channel = arg.get("channel") if isinstance(arg, dict) else None
        inst = arg.get("instId") if isinstance(arg, dict) else None
        key = "instId"
        if channel == LIQUIDATIONS and isinstance(arg, dict):  # by instType, every instId
            key, inst = "instType", arg.get("instType")
            known = inst == "SWAP"
        else:  # an index is named like its swap without ``-SWAP``
            known = isinstance(inst, str) and (listed(inst) or
                                               (channel == INDEX and listed(f"{inst}-SWAP")))
        if not isinstance(channel, str) or not isinstance(inst, str) or \
                channel not in CHANNELS or not known:
            replies.append(_error("60018", f"Wrong URL or channel:{channel},{key}:{inst} "
                                  "doesn't exist.", conn_id, req_id))
            continue
        names.append(f"{channel}:{inst}")
        ack: dict[str, object] = {"event": op, "arg": {"channel": channel, key: inst},
                                  "connId": conn_id}
        if isinstance(req_id, str):
            ack = {"id": req_id, **ack}
        replies.append(json.dumps(ack, separators=(",", ":")))
    refused = len(names) < len(args)
    if op == "subscribe":
        return OkxAnswer(tuple(replies), subscribe=tuple(names), refused=refused)
    return OkxAnswer(tuple(replies), unsubscribe=tuple(names), refused=refused)
