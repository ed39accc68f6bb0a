"""The transport setting (TOML, environment, flag; a bad name is a one-line user mistake) and
the seam's factory; the behaviour of each transport is ``test_transport_conformance.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from trio_harvest.app import Harvester
from trio_harvest.cli.commands import build_parser, main
from trio_harvest.config import ConfigError, load_config
from trio_harvest.ingest.transport import DEFAULT_TRANSPORT, TRANSPORTS, MessageSource, connector
from trio_harvest.ingest.ws_websockets import WebsocketsSource

from ..cli.test_cli import assert_one_line_mistake
from ..conftest import make_config


def test_the_default_is_the_websockets_trio_client() -> None:
    assert DEFAULT_TRANSPORT == "websockets" == load_config().transport
    assert TRANSPORTS == ("websockets", "trio-websocket")


def test_transport_from_toml_environment_and_flag(tmp_path: Path) -> None:
    toml = tmp_path / "h.toml"
    toml.write_text('transport = "trio-websocket"\n')
    assert load_config(config_file=toml).transport == "trio-websocket"
    env = {"TRIO_HARVEST_TRANSPORT": "websockets"}
    assert load_config(env=env, config_file=toml).transport == "websockets"
    args = build_parser().parse_args(["run", "--transport", "trio-websocket"])
    assert load_config({"transport": args.transport}, env).transport == "trio-websocket"
    with pytest.raises(ConfigError, match="transport: 'aiohttp' is not one of websockets, "
                                          "trio-websocket"):
        load_config({"transport": "aiohttp"})


def test_a_bad_transport_flag_is_a_one_line_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--sim", "--transport", "wsproto"]) == 2
    assert_one_line_mistake(capsys.readouterr().err, "transport: 'wsproto' is not one of")


def test_connector_knows_only_the_transports() -> None:
    for name in TRANSPORTS:
        assert callable(connector(name, 1 << 20))
    with pytest.raises(ValueError, match="unknown transport 'tcp'"):
        connector("tcp", 1 << 20)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_harvester_runs_on_the_configured_transport(
    tmp_path: Path, transport: str
) -> None:
    cfg = make_config(tmp_path, sim=True, sim_rate=400.0, transport=transport,
                      symbols=("BTCUSDT",))
    h = Harvester(cfg)
    seen: list[type[MessageSource]] = []
    inner = h.repair.connector.inner

    @asynccontextmanager
    async def spy(url: str) -> AsyncIterator[MessageSource]:
        async with inner(url) as ws:
            seen.append(type(ws))
            yield ws

    h.repair.connector.inner = spy
    async with trio.open_nursery() as nursery:
        await nursery.start(h.run)
        while h.router.stats.frames < 100:
            await trio.sleep(0.05)
        h.request_stop("test over")
    assert seen and all((t is WebsocketsSource) == (transport == "websockets") for t in seen)
