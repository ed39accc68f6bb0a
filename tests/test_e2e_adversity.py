"""The real Binance capture in ``shared/fixtures``, with corrupt frames of
every class mixed in, replayed by a websocket server on loopback into the real app (real
transport, real router, real disk). Every real trade and book update lands in Parquet exactly
once; every corrupt frame is rejected, quarantined or unexpected, and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from trio_harvest.app import Harvester

from .conftest import make_config

WEEK = 7 * 86_400_000


def _capture(fixtures_dir: Path) -> list[dict[str, Any]]:
    lines = (fixtures_dir / "binance_usdm_ws_2021-07-22.txt").read_text().splitlines()[1:]
    out = []
    for line in lines:
        doc = json.loads(line.partition(": ")[2])
        if doc["data"]["e"] in ("aggTrade", "bookTicker", "depthUpdate"):
            if doc["data"]["e"] == "depthUpdate":  # replayed as the partial-depth stream
                doc["stream"] = doc["stream"].replace("@depth@", "@depth20@")
            out.append(doc)
    return out


def _copy(doc: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"stream": data.pop("stream", doc["stream"]), "data": {**doc["data"], **data}}


def _corrupt(real: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The capture with corrupt frames inserted, each right before a real frame it imitates."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    n_bad = 0
    trades = books = 0
    for doc in real:
        d, e, sym = doc["data"], doc["data"]["e"], doc["data"]["s"]
        bad: list[dict[str, Any]] = []
        first = (sym, e) not in seen
        seen.add((sym, e))
        if e == "aggTrade":
            trades += 1
            if first:  # class 1: a lone id far ahead as the very first frame of the stream
                bad.append(_copy(doc, a=d["a"] + 3_000_000))
            elif trades % 7 == 0:
                bad += [
                    _copy(doc, a=d["a"] + 40),  # class 1: mid-stream, within the jump bound
                    _copy(doc, a=d["a"] + 10**12),  # ... and beyond it
                    _copy(doc, f=2**63),  # class 2: beyond int64
                    _copy(doc, p="nan"), _copy(doc, q="-1"), _copy(doc, T=0),
                    _copy(doc, E=d["E"] + 3 * WEEK, T=d["T"] + 3 * WEEK),  # class 4
                    _copy(doc, stream=f"{sym.lower()}@aggTrade{trades}"),  # class 9
                ]
        elif e == "bookTicker":
            books += 1
            if first:
                bad.append(_copy(doc, u=d["u"] + 10**13))
            elif books % 25 == 0:
                bad += [_copy(doc, u=d["u"] + 10**12), _copy(doc, b="inf"),
                        _copy(doc, E=d["E"] + 3 * WEEK, T=d["T"] + 3 * WEEK),
                        _copy(doc, stream=f"{sym.lower()}@bookTicker{books}", u=d["u"] + 1)]
        elif books % 25 == 3:  # depth: class 8's NaN level, and a time far behind
            bad += [_copy(doc, b=[["nan", "1"]]), _copy(doc, E=d["E"] - 3 * WEEK)]
        out += bad
        n_bad += len(bad)
        out.append(doc)
    return out, n_bad


async def test_real_capture_with_corrupt_frames_lands_exactly_once(
        tmp_path: Path, fixtures_dir: Path) -> None:
    real = _capture(fixtures_dir)
    frames, n_bad = _corrupt(real)
    texts = [(f["stream"], json.dumps(f)) for f in frames]
    symbols = tuple(sorted({f["data"]["s"] for f in real}))

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        wanted = set(request.path.split("streams=", 1)[1].split("/"))
        route = "market" if "/market/" in request.path else "public"
        try:
            for stream, text in texts:
                # streams nobody subscribed to reach every connection of the right route
                unknown = stream not in {f"{s.lower()}@{k}" for s in symbols
                                         for k in ("aggTrade", "bookTicker", "depth20@100ms")}
                on_route = ("aggTrade" in stream) == (route == "market")
                if stream in wanted or (unknown and on_route):
                    await ws.send_message(text)
            await trio.sleep_forever()
        except ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        cfg = make_config(tmp_path, symbols=symbols, ws_url=f"ws://127.0.0.1:{server.port}",
                          backfill=False, resume=False, auto_recover=False, rotate_sec=0.5,
                          min_file_rows=1)
        h = Harvester(cfg)
        await nursery.start(h.run)
        with trio.fail_after(20):
            while h.router.stats.frames < len(frames):
                await trio.sleep(0.05)
        h.request_stop("test over")
        with trio.fail_after(20):
            await h.stop_state.requested.wait()
            while h.stopped_at is None:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    data = cfg.data_dir
    prices = pl.scan_parquet(str(data / "**" / "kind=prices" / "*.parquet"),
                             hive_partitioning=True).collect()
    want = sorted((f["data"]["s"], f["data"]["a"]) for f in real if f["data"]["e"] == "aggTrade")
    assert sorted(zip(prices["symbol"], prices["agg_id"], strict=True)) == want
    book = pl.scan_parquet(str(data / "**" / "kind=orderbook" / "*.parquet"),
                           hive_partitioning=True).collect()
    got = sorted(zip(book["symbol"], book["source"], book["update_id"], strict=True))
    want_books = sorted({(f["data"]["s"], "depth20", f["data"]["u"]) for f in real
                         if f["data"]["e"] == "depthUpdate"})
    assert got == want_books
    quotes = pl.scan_parquet(str(data / "**" / "kind=quotes" / "*.parquet"),
                             hive_partitioning=True).collect()
    got_quotes = sorted(zip(quotes["symbol"], quotes["update_id"], strict=True))
    assert got_quotes == sorted({(f["data"]["s"], f["data"]["u"]) for f in real
                                 if f["data"]["e"] == "bookTicker"})
    # nothing the corrupt frames carried reached a lane; each one was counted
    st, rep = h.router.stats, h.repair.stats
    caught = (st.rejected + st.unexpected + rep.trade_quarantined + rep.book_quarantined
              + rep.trade_implausible)
    assert caught == n_bad, (st, rep)
    ts = prices["ts_ms"].dt.epoch("ms")  # a UTC timestamp in the file
    assert max(ts) < min(ts) + 3_600_000  # no time from the future
    gaps = data.glob("**/kind=gaps/*.parquet")
    assert not [g for g in gaps if "agg-id" in pl.read_parquet(g)["reason"].to_list()]
    assert h.rotation.stats.kind("prices").rows_lost == 0
