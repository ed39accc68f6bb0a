"""Bybit's client messages and the server's replies to them.

Owns ``{"req_id":"N","op":"subscribe","args":[topic, …]}`` (and ``unsubscribe``) cut into
requests of at most ``Category.args_per_request`` topics (10 on spot), the plan's check that a
connection's args stay under 21,000 characters, the ping ``{"req_id":"pN","op":"ping"}`` and the
reading of replies: acks ``{"success":true,"op":"subscribe","req_id":"N",…}``, refusals
(``"success":false,"ret_msg":"error:handler not found,topic:…"``) and pongs. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .facts import ARGS_CHARS, Category

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
PING = json.dumps({"op": "ping"}, separators=(",", ":"))
_OPS = {"SUBSCRIBE": SUBSCRIBE, "UNSUBSCRIBE": UNSUBSCRIBE, SUBSCRIBE: SUBSCRIBE,
        UNSUBSCRIBE: UNSUBSCRIBE}


def request(op: str, topics: Sequence[str], request_id: int) -> str:
    """One request (``op`` ``subscribe``/``unsubscribe``, upper case accepted)."""
    return json.dumps({"req_id": str(request_id), "op": _OPS[op], "args": list(topics)},
                      separators=(",", ":"), ensure_ascii=False)


def batches(topics: Sequence[str], per_request: int) -> list[list[str]]:
    """``topics`` in order, cut into requests of at most ``per_request``."""
    n = max(1, per_request)
    return [list(topics[i : i + n]) for i in range(0, len(topics), n)]


def requests(cat: Category, op: str, topics: Sequence[str], first_id: int) -> list[str]:
    """Every request ``op`` needs for ``topics`` on ``cat`` (ids ``first_id``, ``first_id+1``…)."""
    return [request(op, b, first_id + i)
            for i, b in enumerate(batches(topics, cat.args_per_request))]


def args_chars(topics: Iterable[str]) -> int:
    """What a connection's args weigh against the 21,000-character cap (names and separators)."""
    return sum(len(t) + 3 for t in topics)  # the quotes and the comma of each arg


def fits(topics: Iterable[str], limit: int = ARGS_CHARS) -> bool:
    return args_chars(topics) <= limit


def topics_of(message: str) -> tuple[str, list[str]]:
    """``(op, args)`` of a request we sent (``("", [])`` for anything else)."""
    try:
        doc = json.loads(message)
    except ValueError:
        return "", []
    if not isinstance(doc, dict) or not isinstance(doc.get("args"), list):
        return "", []
    op = doc.get("op")
    return (op if isinstance(op, str) else ""), [a for a in doc["args"] if isinstance(a, str)]


def reply_to(frame: str | bytes) -> tuple[int, str] | None:
    """``(request id, error)`` of an ack or refusal (error "" for success; id -1 when the reply
    names none), ``(-1, "")`` for a pong; None for any other frame."""
    try:
        doc = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "topic" in doc:
        return None
    op = doc.get("op")
    if op in ("ping", "pong"):
        return -1, ""
    if op not in (SUBSCRIBE, UNSUBSCRIBE) or not isinstance(doc.get("success"), bool):
        return None
    raw = doc.get("req_id")
    try:
        rid = int(raw) if isinstance(raw, (str, int)) and str(raw) else -1
    except ValueError:
        rid = -1
    error = "" if doc["success"] else (str(doc.get("ret_msg")) or "refused")[:200]
    return rid, error
