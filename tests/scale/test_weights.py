"""Load-weighted shards (pure): the weights from the 24 h ticker, the bounded-load rendezvous
assignment (balance, stability under listing changes, agreement), and the simulator's ticker."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import msgspec
import pytest

from trio_harvest.scale.shards import SLACK_PERCENT, Shard, assign, assignment, owner, symbols_of
from trio_harvest.scale.weights import (
    UNIT,
    fetch_weights,
    quantize,
    read_snapshot,
    weights_from_ticker,
    write_snapshot,
)
from trio_harvest.sim.activity import activity

MAJORS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT"]
TAIL = [f"T{i:03d}USDT" for i in range(494)]
VENUE = MAJORS + TAIL  # 500 symbols, skewed like the real venue


def venue_weights(symbols: list[str]) -> dict[str, int]:
    return {s: quantize(activity(s).count) for s in symbols}


def loads(owners: dict[str, int], weights: dict[str, int], n: int) -> list[int]:
    out = [0] * n
    for s, i in owners.items():
        out[i] += weights.get(s, UNIT)
    return out


def test_quantize_is_a_monotone_class_of_the_daily_load() -> None:
    assert quantize(0) == UNIT and quantize(-5) == UNIT
    values = [quantize(c) for c in (0, 10_000, 100_000, 1_000_000, 5_000_000, 50_000_000)]
    assert values == sorted(values) and len(set(values)) >= 4
    assert quantize(4_500_000) == quantize(4_400_000)  # nearby figures land in one class
    assert quantize(10**12) == quantize(10**15)  # capped


def test_the_six_majors_no_longer_share_one_of_two_shards() -> None:
    weights = venue_weights(MAJORS)
    assert {owner(s, 2) for s in MAJORS} == {0}  # unweighted: all on shard 0, one worker busy
    owners = assignment(MAJORS, weights, 2)
    first, second = loads(owners, weights, 2)
    assert set(owners.values()) == {0, 1}
    assert max(first, second) <= 1.1 * (first + second) / 2, (first, second)


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_a_whole_venue_is_balanced_within_the_slack(n: int) -> None:
    weights = venue_weights(VENUE)
    owners = assignment(VENUE, weights, n)
    assert sorted(owners) == sorted(VENUE)
    per = loads(owners, weights, n)
    mean = sum(per) / n
    assert max(per) <= mean * (1 + SLACK_PERCENT / 100), per
    unweighted = loads(assignment(VENUE, None, n), weights, n)
    assert max(per) <= max(unweighted), (per, unweighted)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_one_listing_change_moves_few_other_symbols(n: int) -> None:
    weights = venue_weights(VENUE)
    before = assignment(VENUE, weights, n)
    rnd = random.Random(n)
    moved: list[int] = []
    for trial in range(40):
        if trial % 2:  # a new listing, light or heavy
            new = f"NEW{trial}USDT"
            w = dict(weights) | {new: rnd.choice([UNIT, quantize(300_000), quantize(3_000_000)])}
            after = assignment([*VENUE, new], w, n)
        else:  # a delisting
            gone = rnd.choice(VENUE)
            w = {s: v for s, v in weights.items() if s != gone}
            after = assignment([s for s in VENUE if s != gone], w, n)
        moved.append(sum(1 for s, i in after.items() if s in before and before[s] != i))
    assert max(moved) <= 8 and sum(moved) / len(moved) <= 2.0, moved


def test_every_shard_computes_the_same_owners_whatever_the_order_it_lists_them() -> None:
    weights = venue_weights(VENUE)
    shuffled = VENUE[:]
    random.Random(7).shuffle(shuffled)
    assert assignment(VENUE, weights, 4) == assignment(shuffled, dict(reversed(weights.items())), 4)
    parts = [symbols_of(shuffled, Shard(i, 4), weights) for i in range(4)]
    assert sorted(s for p in parts for s in p) == sorted(VENUE)
    assert [list(g) for g in assign(VENUE, 4, weights)] == \
        [[s for s in VENUE if s in p] for p in parts]


def test_without_weights_it_is_plain_rendezvous_and_a_missing_weight_is_light() -> None:
    assert assignment(VENUE, None, 4) == {s: owner(s, 4) for s in VENUE}
    weights = venue_weights(VENUE)
    new = assignment([*VENUE, "FRESHUSDT"], weights, 4)
    assert new == assignment([*VENUE, "FRESHUSDT"], weights | {"FRESHUSDT": UNIT}, 4)


def test_weights_from_the_ticker_and_a_failed_fetch(caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps([{"symbol": "BTCUSDT", "count": 4_500_000, "quoteVolume": "1.0"},
                       {"symbol": "ZZZUSDT", "count": 10}])
    assert weights_from_ticker(body, ["BTCUSDT"]) == {"BTCUSDT": quantize(4_500_000)}
    assert set(weights_from_ticker(body)) == {"BTCUSDT", "ZZZUSDT"}
    with pytest.raises(ValueError):
        weights_from_ticker(b'{"code": -1, "msg": "x"}')

    def broken(url: str) -> bytes:
        raise OSError(f"connection refused: {url}")

    with caplog.at_level(logging.WARNING, "trio_harvest.shards"):
        assert fetch_weights(broken, "http://venue/", MAJORS) is None
    assert len(caplog.records) == 1 and "unweighted" in caplog.records[0].getMessage()
    assert fetch_weights(lambda url: body.encode(), "http://venue", ["BTCUSDT"]) == \
        {"BTCUSDT": quantize(4_500_000)}


def test_a_snapshot_file_round_trips_and_junk_is_refused(tmp_path: Path) -> None:
    weights = venue_weights(MAJORS)
    write_snapshot(tmp_path / "w" / "weights.json", weights)
    assert read_snapshot(tmp_path / "w" / "weights.json") == weights
    (tmp_path / "bad.json").write_text('{"BTCUSDT": -1}')
    with pytest.raises(ValueError):
        read_snapshot(tmp_path / "bad.json")


def test_the_simulator_serves_a_skewed_24h_ticker() -> None:
    from trio_harvest.sim.market import Market
    from trio_harvest.sim.rest import RestApi

    market = Market(["BTCUSDT", "ETHUSDT", "T001USDT"], rate=None, seed=1)
    api = RestApi(market, lambda: 1_700_000_000_000)
    reply = api.handle("GET", "/fapi/v1/ticker/24hr")
    assert reply.status == 200 and ("X-MBX-USED-WEIGHT-1M", "40") in reply.headers
    rows = {r["symbol"]: r for r in msgspec.json.decode(reply.body)}
    assert set(rows) == {"BTCUSDT", "ETHUSDT", "T001USDT"}
    assert rows["BTCUSDT"]["count"] > rows["ETHUSDT"]["count"] > 10 * rows["T001USDT"]["count"]
    assert float(rows["BTCUSDT"]["quoteVolume"]) > float(rows["T001USDT"]["quoteVolume"])
    one = api.handle("GET", "/fapi/v1/ticker/24hr?symbol=ETHUSDT")
    assert msgspec.json.decode(one.body)["symbol"] == "ETHUSDT"
    assert api.handle("GET", "/fapi/v1/ticker/24hr?symbol=NOPEUSDT").status == 400
    assert weights_from_ticker(reply.body) == venue_weights(list(rows))


def test_a_shard_uses_the_snapshot_it_is_given_and_falls_back_when_the_venue_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    from trio_harvest.cli.scale import shard_weights, this_shard
    from trio_harvest.config import ConfigError, build_config

    symbols = tuple(VENUE[:60])
    weights = venue_weights(list(symbols))
    write_snapshot(tmp_path / "weights.json", weights)
    for i in range(3):
        cfg = build_config({"symbols": symbols, "shard": f"{i}/3",
                            "shard_weights": str(tmp_path / "weights.json")})
        assert this_shard(cfg)[0].symbols == assign(symbols, 3, weights)[i]
    with pytest.raises(ConfigError, match="shard_weights: cannot use"):
        shard_weights(build_config({"shard_weights": str(tmp_path / "missing.json")}))
    down = build_config({"symbols": symbols, "rest_url": "http://127.0.0.1:1",
                         "data_dir": tmp_path / "data"})
    with caplog.at_level(logging.WARNING, "trio_harvest.shards"):
        assert shard_weights(down) is None
    assert [r.getMessage() for r in caplog.records if "unweighted" in r.getMessage()]
    assert shard_weights(build_config({"shard_weights": "off"})) is None
    assert shard_weights(build_config({"sim": True, "symbols": ("BTCUSDT",)})) == \
        {"BTCUSDT": quantize(activity("BTCUSDT").count)}
