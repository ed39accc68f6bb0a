"""The simulator's okx-swap contract on OKX's wire: each second's mark price goes out on
``mark-price`` and ``index-tickers`` (by the index's name), funding and open interest on their
own schedule, liquidations on the instType channel; the harvester's decoder reads every frame
back (sizes in contracts, times ctVal on its side), and a socket acks the index and the
instType subscriptions as OKX does."""

from __future__ import annotations

import json

from trio_harvest.sim.derivs import Derivatives, next_funding_ms
from trio_harvest.sim.events import ForceOrder, MarkPrice
from trio_harvest.sim.okx_control import handle_okx, request_budget
from trio_harvest.sim.okx_wire import FUNDING_EVERY_S, OI_EVERY_S, OkxSymbolWire
from trio_harvest.sim.venue import profile
from trio_harvest.venues.okx.adapter import OkxSwap

SWAP = profile("okx-swap")
T0 = 1_700_000_000_000


def test_the_okx_swap_profile_runs_the_contract_model_and_spot_does_not() -> None:
    assert SWAP.futures and not profile("okx-spot").futures


def test_a_mark_price_event_goes_out_on_its_channels_and_reads_back() -> None:
    spec = SWAP.spec("BTC-USDT-SWAP")
    wire = OkxSymbolWire(spec, contracts=True)
    venue = OkxSwap()
    venue.scales["BTC-USDT-SWAP"] = 0.01
    both = T0 - T0 % (FUNDING_EVERY_S * OI_EVERY_S * 1000)  # a second of both schedules
    ev = MarkPrice("BTC-USDT-SWAP", both, 100_010.5, 100_000.25, 100_000.25, 0.0001,
                   next_funding_ms(both), 1234)
    names = [name for name, _, _ in wire.targets(ev)]
    assert names == ["mark-price:BTC-USDT-SWAP", "index-tickers:BTC-USDT",
                     "funding-rate:BTC-USDT-SWAP", "open-interest:BTC-USDT-SWAP"]
    got = {}
    for name, slot, _ in wire.targets(ev):
        env = venue.decode(wire.encode(ev, slot))
        assert env.stream.partition(":")[0] == name.partition(":")[0]
        got[env.data.source] = env.data
        assert env.data.symbol == "BTC-USDT-SWAP" and env.data.event_ms == both
    assert got["mark-price"].mark_price == 100_010.5
    assert got["index-tickers"].index_price == 100_000.25
    assert got["funding-rate"].funding_rate == 0.0001
    assert got["funding-rate"].next_funding_ms == next_funding_ms(both)
    assert got["open-interest"].open_interest == 12.34  # 1234 contracts of 0.01 BTC
    quiet = MarkPrice(ev.symbol, both + 1000, 1.0, 1.0, 1.0, 0.0001, next_funding_ms(both), 1)
    assert [n for n, _, _ in wire.targets(quiet)] == names[:2]  # funding, OI not this second


def test_a_liquidation_goes_out_by_inst_type_and_reads_back() -> None:
    spec = SWAP.spec("ETH-USDT-SWAP")
    wire = OkxSymbolWire(spec, contracts=True)
    f = ForceOrder("ETH-USDT-SWAP", True, 350_012, 350_000, 7, T0 - 2, T0)
    assert [n for n, _, _ in wire.targets(f)] == ["liquidation-orders:SWAP"]
    venue = OkxSwap()
    venue.liquidated.add("ETH-USDT-SWAP")
    q = venue.decode(wire.encode(f)).data
    assert (q.symbol, q.side, q.qty, q.trade_ms) == ("ETH-USDT-SWAP", "buy", 7.0, T0 - 2)
    assert q.price == float(wire.price(350_012))


def test_the_model_gives_okx_swaps_funding_open_interest_and_liquidations() -> None:
    model = Derivatives(seed=5)
    specs = [SWAP.spec("BTC-USDT-SWAP")]
    events = []
    for step in range(0, 40_000, 100):
        events += model.step(T0 + step, specs, [])
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert marks and all(m.funding_rate is not None and m.open_interest > 0 for m in marks)
    assert all(m.next_funding_ms % (8 * 3_600_000) == 0 for m in marks)
    assert any(isinstance(e, ForceOrder) for e in events)


def test_a_socket_acks_the_index_and_the_inst_type_subscription() -> None:
    msg = json.dumps({"id": "2", "op": "subscribe", "args": [
        {"channel": "index-tickers", "instId": "BTC-USDT"},
        {"channel": "liquidation-orders", "instType": "SWAP"},
        {"channel": "liquidation-orders", "instType": "FUTURES"}]})
    answer = handle_okx(msg, "c1", request_budget(), 0.0, lambda i: i == "BTC-USDT-SWAP")
    assert answer.subscribe == ("index-tickers:BTC-USDT", "liquidation-orders:SWAP")
    replies = [json.loads(r) for r in answer.replies]
    assert replies[1]["arg"] == {"channel": "liquidation-orders", "instType": "SWAP"}
    assert replies[2]["code"] == "60018" and answer.refused
