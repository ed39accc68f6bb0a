"""Bybit v5 frames made from the documented examples (reference/venues.md, section 4), in the
capture format of ``shared/fixtures`` (line 1 ``<url> <-> <unix s>``, then ``<recv s>: <frame>``;
REST ``<url> -> <recv s>: <body>``). No real Bybit capture exists beside the project, so these are
the documented shapes with a consistent book behind them: ``orderbook.N`` starts with a snapshot
(linear BTCUSDT ``u=53935309`` as in the docs' example), deltas step ``u`` by 1, sizes ``"0"``
delete, ``orderbook.1`` carries its own ``u`` and the same ``cts`` as the book message it mirrors,
trades carry linear UUIDs or spot numeric ids, control replies (acks, pongs) sit in between.

``python -m tests.venues.bybit_frames`` rewrites ``tests/venues/frames/``.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

FRAMES = Path(__file__).parent / "frames"
T0 = 1672304486865  # the docs' trade time


def _dump(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _lv(levels: dict[float, float], bid: bool, n: int) -> list[tuple[float, float]]:
    return sorted(levels.items(), key=lambda kv: -kv[0] if bid else kv[0])[:n]


def _fmt(p: float, q: float) -> list[str]:
    return [f"{p:.2f}", f"{q:.3f}"]


def capture(category: str) -> tuple[list[str], list[str]]:
    """(websocket lines, REST lines) of one category."""
    rng = random.Random(17 if category == "linear" else 18)
    url = f"wss://stream.bybit.com/v5/public/{category}"
    ws = [f"{url} <-> {T0 / 1000:.3f}"]
    rest: list[str] = []
    now = T0
    ws_frames: list[str] = []
    spot = category == "spot"
    for rid in (1, 2):
        ack = {"success": True, "ret_msg": "subscribe" if spot else "", "conn_id": "cid-1",
               "req_id": str(rid), "op": "subscribe"}
        ws_frames.append(_dump(ack))
    setup: dict[str, tuple[float, int, int, int]] = {"BTCUSDT": (16578.5, 200, 53935309, 72212457),
             "ETHUSDT": (1190.25, 50, 11223344, 9988776)}
    books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    ids: dict[str, list[int]] = {}  # symbol -> [book u, orderbook.1 u]
    for sym, (mid, _depth, u0, u1) in setup.items():
        books[sym] = ({round(mid - 0.5 * (i + 1), 2): round(rng.uniform(0.01, 3), 3)
                       for i in range(30)},
                      {round(mid + 0.5 * (i + 1), 2): round(rng.uniform(0.01, 3), 3)
                       for i in range(30)})
        ids[sym] = [u0, u1]
    trade_id = 2290000001190010739
    rest_done = False
    for step in range(60):
        now += rng.randint(5, 40)
        sym = "BTCUSDT" if step % 2 == 0 else "ETHUSDT"
        bids, asks = books[sym]
        mid, depth = setup[sym][0], setup[sym][1]
        u, u1 = ids[sym]
        cts = now - 2
        if step < 2:  # each book's first message: the snapshot
            kind = "snapshot"
            b = [_fmt(p, q) for p, q in _lv(bids, True, depth)]
            a = [_fmt(p, q) for p, q in _lv(asks, False, depth)]
        else:
            u += 1
            kind = "delta"
            b, a = [], []
            for side, out, sign in ((bids, b, -1), (asks, a, 1)):
                for _ in range(rng.randint(1, 3)):
                    price = round(mid + sign * 0.5 * rng.randint(1, 12), 2)
                    if rng.random() < 0.3 and price in side:
                        del side[price]
                        out.append(_fmt(price, 0))
                    else:
                        side[price] = round(rng.uniform(0.01, 3), 3)
                        out.append(_fmt(price, side[price]))
        data = {"s": sym, "b": b, "a": a, "u": u, "seq": 7961638724 + step}
        if spot:  # key order differs between categories: nothing parses by position
            data = {"s": sym, "a": a, "b": b, "u": u, "seq": 7961638724 + step}
        ws_frames.append(_dump({"topic": f"orderbook.{depth}.{sym}", "type": kind, "ts": now,
                                "data": data, "cts": cts}))
        ids[sym][0] = u
        best_b, best_a = _lv(bids, True, 1), _lv(asks, False, 1)
        u1 += 1
        ids[sym][1] = u1
        ws_frames.append(_dump({"topic": f"orderbook.1.{sym}", "type": "snapshot", "ts": now + 1,
                                "data": {"s": sym, "b": [_fmt(*best_b[0])],
                                         "a": [_fmt(*best_a[0])], "u": u1,
                                         "seq": 7961638724 + step}, "cts": cts}))
        if sym == "BTCUSDT" and step == 20 and not rest_done:
            rest_done = True
            body = {"retCode": 0, "retMsg": "OK", "result": {
                "s": sym, "b": [_fmt(p, q) for p, q in _lv(bids, True, 1000)],
                "a": [_fmt(p, q) for p, q in _lv(asks, False, 1000)], "ts": now, "u": u,
                "seq": 7961638724 + step, "cts": cts}, "retExtInfo": {}, "time": now}
            rest.append(f"https://api.bybit.com/v5/market/orderbook?category={category}"
                        f"&symbol={sym}&limit=1000 -> {now / 1000:.3f}: {_dump(body)}")
        if step % 3 == 0:
            trades = []
            for _ in range(rng.randint(1, 3)):
                trade_id += 1
                price = mid + rng.choice((-0.5, 0.5))
                t = {"T": now - 3, "s": sym, "S": rng.choice(("Buy", "Sell")),
                     "v": f"{rng.uniform(0.001, 1):.3f}", "p": f"{price:.2f}",
                     "i": str(trade_id) if spot else str(uuid.UUID(int=rng.getrandbits(128))),
                     "BT": False, "RPI": False, "seq": 1783284617 + step}
                if not spot:
                    t["L"] = "PlusTick"
                trades.append(t)
            ws_frames.append(_dump({"topic": f"publicTrade.{sym}", "type": "snapshot",
                                    "ts": now, "data": trades}))
        if step == 30:
            pong = {"success": True, "ret_msg": "pong", "conn_id": "cid-1", "op": "ping"}
            if not spot:
                pong["req_id"] = ""
            ws_frames.append(_dump(pong))
    recv = T0
    for frame in ws_frames:
        recv += 7
        ws.append(f"{recv / 1000:.3f}: {frame}")
    return ws, [*rest, ""]


def main() -> None:
    FRAMES.mkdir(exist_ok=True)
    for category in ("linear", "spot"):
        ws, rest = capture(category)
        (FRAMES / f"bybit_{category}_ws.txt").write_text("\n".join(ws) + "\n")
        (FRAMES / f"bybit_{category}_rest.txt").write_text("\n".join(rest) + "\n")


if __name__ == "__main__":
    main()
