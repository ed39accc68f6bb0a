"""Client messages on the simulator's Bybit sockets, answered as Bybit answers them.

Owns ``{"op":"ping"}`` -> pong, and ``subscribe`` / ``unsubscribe`` with their acks
(``{"success":true,"ret_msg":"","conn_id":…,"req_id":…,"op":"subscribe"}``; spot says
``"ret_msg":"subscribe"``) and refusals: a topic not served (``orderbook.500`` was removed:
``error:handler not found,topic:…``; ``tickers`` and ``allLiquidation`` are served on linear
only), a topic already subscribed, more than 10 args in one
request on spot (``error:args size >10``), a request that is not JSON or has no ``op``. Pure:
returns what to subscribe, unsubscribe and answer (``control.ControlResult``).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import msgspec

from ..venues.bybit import facts
from .control import ControlResult

_TOPIC = re.compile(r"^(?:publicTrade|orderbook\.(\d+)|(tickers|allLiquidation))"
                    r"\.[A-Z0-9][A-Z0-9-]{1,39}$")
SERVED_DEPTHS = frozenset(d for d, _ in facts.DEPTHS)
_encode = msgspec.json.encode


def served(topic: str, spot: bool = False) -> bool:
    """A topic the simulator serves: trades and the served book depths on both categories,
    ``tickers`` and ``allLiquidation`` on linear only (the contract model's)."""
    m = _TOPIC.match(topic)
    if m is None or (m.group(2) is not None and spot):
        return False
    return m.group(1) is None or int(m.group(1)) in SERVED_DEPTHS


def _reply(op: str, req_id: object, conn_id: int, spot: bool, error: str = "") -> str:
    body: dict[str, object] = {"success": not error,
                               "ret_msg": error or (op if spot else ""),
                               "conn_id": f"sim-{conn_id}", "op": op}
    if isinstance(req_id, str):
        body["req_id"] = req_id
    return _encode(body).decode()


def handle(message: str | bytes, subscribed: Collection[str], *, conn_id: int,
           spot: bool) -> ControlResult:
    """Answer one client message; ``subscribed`` is the connection's current topics."""
    try:
        req = msgspec.json.decode(message)
    except msgspec.DecodeError:
        return ControlResult(_reply("", None, conn_id, spot, "error:invalid json"))
    if not isinstance(req, dict):
        return ControlResult(_reply("", None, conn_id, spot, "error:invalid request"))
    op, req_id = req.get("op"), req.get("req_id")
    if op == "ping":  # linear echoes req_id, spot does not
        pong: dict[str, object] = {"success": True, "ret_msg": "pong",
                                   "conn_id": f"sim-{conn_id}", "op": "ping"}
        if not spot:
            pong["req_id"] = req_id if isinstance(req_id, str) else ""
        return ControlResult(_encode(pong).decode())
    if op not in ("subscribe", "unsubscribe"):
        return ControlResult(_reply(str(op)[:20], req_id, conn_id, spot,
                                    f"error:unknown op {str(op)[:20]}"))
    args = req.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        return ControlResult(_reply(op, req_id, conn_id, spot, "error:args must be topics"))
    if spot and len(args) > facts.SPOT.args_per_request:
        return ControlResult(_reply(op, req_id, conn_id, spot, "error:args size >10"))
    for topic in args:
        if not served(topic, spot):
            return ControlResult(_reply(op, req_id, conn_id, spot,
                                        f"error:handler not found,topic:{topic}"))
        if op == "subscribe" and topic in subscribed:
            return ControlResult(_reply(op, req_id, conn_id, spot,
                                        f"error:already subscribed,topic:{topic}"))
    names = tuple(dict.fromkeys(args))
    ok = _reply(op, req_id, conn_id, spot)
    if op == "subscribe":
        return ControlResult(ok, subscribe=names)
    return ControlResult(ok, unsubscribe=names)
