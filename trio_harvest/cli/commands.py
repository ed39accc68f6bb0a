"""The command line: ``python -m trio_harvest [run|sim] …``.

Owns argument parsing, turning user mistakes into one line on stderr and exit code 2, internal
failures into exit code 1 (with the traceback in the log), and a clean stop into exit code 0.
Never contains harvesting logic: it builds a ``Config`` and hands over.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from .. import __version__
from ..config import MAX_SIM_RATE, ConfigError, load_config
from ..hints import did_you_mean
from ..ops.logs import setup_logging
from ..scale import parent
from ..sim.calibration import DEFAULT_TOTAL_MIN, SYMBOL_RATE, sim_rate
from ..venues import DEFAULT as DEFAULT_VENUE
from ..venues import QUOTE_SOURCE, VENUES
from . import adversity as adversity_cli
from . import compact as compact_cli
from . import journal as journal_cli
from . import ops as ops_cli
from . import report as report_cli
from . import scale as scale_cli

log = logging.getLogger("trio_harvest.cli")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
EXIT_NO_DATA = 3  # the run ended without ever receiving a frame (endpoint unreachable, …)
EXIT_CODES = ("exit codes: 0 a clean stop (also after SIGINT/SIGTERM); 1 an internal failure; 2 a "
              "user mistake; 3 the run ended without ever receiving a frame (nothing harvested: "
              "endpoint unreachable, DNS, a firewall); 130 interrupted before the harvester ran")
SUBCOMMANDS = ("run", "sim", "recover", "inspect", "report", "compact", "replay")


PREFIX = "trio_harvest: error:"  # every user mistake, from every subcommand, starts so


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one clear line, exit 2
        m = re.search(r"invalid choice: '([^']*)'", message)
        if m is not None and "did you mean" not in message:
            message += did_you_mean(m.group(1), SUBCOMMANDS)
        self.exit(EXIT_USAGE, f"{PREFIX} {message} (see {self.prog} --help)\n")


def _flag(p: argparse._ActionsContainer, *names: str, **kw: Any) -> None:
    kw.setdefault("default", None)
    p.add_argument(*names, **kw)


def _urls(attr: str) -> str:
    return ", ".join(f"{getattr(v, attr)} on {name}" for name, v in VENUES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m trio_harvest",
        description="Harvest exchange market data (Binance USD-M and COIN-M futures, Binance "
        "Spot: trades and order books) into Hive-partitioned Parquet. Without a subcommand, "
        "'run' is assumed.",
    )
    parser.add_argument("--version", action="version", version=f"trio_harvest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="harvest (the default)",
        description="Harvest streams into Parquet until SIGINT/SIGTERM or --duration. "
        "Settings come from defaults < --config TOML < environment (TRIO_HARVEST_<SETTING>, "
        "BUFFER_HIGH, SAVE_CONCURRENCY) < these flags. Each flag's help gives its default.",
        epilog=EXIT_CODES,
    )
    g = run.add_argument_group("source")
    _flag(g, "--sim", action="store_const", const=True,
          help="harvest from the built-in exchange simulator (offline) instead of Binance "
          "(default off; excludes --ws-url and --rest-url)")
    _flag(g, "--symbols", metavar="LIST",
          help="comma-separated symbols, 'all' or patterns such as '*USDT' or 'BTC*' (mixed "
          "with names); all and patterns are resolved from the venue's listing (trading "
          "symbols only) and followed while running (default the venue's two largest: "
          "BTCUSDT,ETHUSDT; BTCUSD_PERP,ETHUSD_PERP on binance-coinm)")
    _flag(g, "--listing-interval", type=float, metavar="S",
          help="with 'all' or patterns: poll the listing every S seconds; new symbols are "
          "subscribed, delisted ones closed with a 'delisted' gap row; with --shard or "
          "--workers also the grid on which symbols move between shards, handed over at one "
          "boundary (a 'handover' gap row, not a loss) (default 600)")
    _flag(g, "--venue", metavar="NAME",
          help=f"the venue harvested: {', '.join(VENUES)} (default {DEFAULT_VENUE}); with "
          "--sim the simulator speaks its wire. Symbols, --ws-url and --rest-url are that "
          "venue's")
    _flag(g, "--ws-url", metavar="URL",
          help="websocket base URL of the venue; its stream paths are appended (default the "
          f"venue's: {_urls('default_ws_url')})")
    _flag(g, "--rest-url", metavar="URL",
          help=f"REST base URL of the venue (default the venue's: {_urls('default_rest_url')})")
    _flag(g, "--depth-levels", type=int, metavar="N", help="book levels: 5, 10 or 20 (default 20)")
    _flag(g, "--depth-speed", metavar="S", help="depth cadence: 100ms, 250ms, 500ms (default 100ms)")
    _flag(g, "--book", metavar="MODE", help="partial (top-N snapshots, default) or diff")
    _flag(g, "--no-book-ticker", dest="book_ticker", action="store_const", const=False,
          help=f"do not subscribe to {QUOTE_SOURCE} (subscribed by default)")
    _flag(g, "--channels", metavar="LIST",
          help="what is harvested, comma-separated: trades, book, quotes, book_updates (with "
          "--book diff), derivatives (mark/index price, funding, open interest) and "
          "liquidations (futures venues only) (default every one the venue and --book "
          "offer: trades,book,quotes,derivatives,liquidations, plus book_updates with --book "
          "diff; a spot venue has no derivatives or liquidations)")
    _flag(g, "--open-interest-interval", type=float, metavar="S",
          help="with derivatives: poll each symbol's open interest over REST every S seconds "
          "(weight 1 each, from the backfill weight budget; Binance futures only: OKX sends "
          "open interest on a channel) (default 60)")
    _flag(g, "--sim-rate", type=float, metavar="MSGS",
          help=f"simulator: total messages per second, at most {MAX_SIM_RATE:,.0f} (default "
          f"{SYMBOL_RATE:g} per symbol, at least {DEFAULT_TOTAL_MIN:g} in all)")
    _flag(g, "--sim-seed", type=int, metavar="N", help="simulator: random seed (default 1)")
    _flag(g, "--streams-per-connection", type=int, metavar="N",
          help="streams per websocket connection (default 200, Binance's limit)")
    _flag(g, "--max-message-bytes", type=int, metavar="N",
          help="largest websocket message accepted (default 4194304 = 4 MiB)")
    _flag(g, "--transport", metavar="NAME",
          help="websocket client: websockets (default) or trio-websocket")
    _flag(g, "--ca-file", metavar="PEM",
          help="CA certificates trusted for wss:// and https:// besides the system's (a "
               "TLS-intercepting proxy's, a private gateway's); default: the system's only")

    g = run.add_argument_group("storage")
    _flag(g, "--data-dir", metavar="DIR", help="where Parquet partitions go (default ./data)")
    _flag(g, "--deadletter-dir", metavar="DIR",
          help="where failed batches go (default DATA_DIR/_deadletter)")
    _flag(g, "--rotate-sec", type=float, metavar="S",
          help="rotation timer: every S seconds, flush lanes that are due (default 60)")
    _flag(g, "--min-file-rows", type=int, metavar="N",
          help="a timer rotation flushes a lane once it holds N rows… (default 10000)")
    _flag(g, "--max-file-age", type=float, metavar="S",
          help="…or once its last flush is S seconds old (default 180)")
    _flag(g, "--max-buffered-mb", type=float, metavar="MB",
          help="rows held in memory by all lanes together, estimated at 8 bytes a value; over "
          "it the lanes holding the most are written first, so busy lanes write files of about "
          "equal size and quiet ones wait for --max-file-age (default 160; 0 = no bound; with "
          "--workers N each worker gets MB/N)")
    _flag(g, "--write-timeout", type=float, metavar="S", help="per-partition write timeout (default 30)")
    _flag(g, "--save-concurrency", type=int, metavar="N", help="parallel writes (default 2)")
    _flag(g, "--buffer-high", type=int, metavar="N",
          help="high watermark for every kind, emergency = 2x (default per kind, see docs/configuration.md)")
    _flag(g, "--deadletter-timeout", type=float, metavar="S",
          help="timeout of one dead-letter write (default 30)")
    _flag(g, "--max-stuck-writes", type=int, metavar="N",
          help="hung writes to one store before no new write starts there (default 8)")

    g = run.add_argument_group("run")
    _flag(g, "--duration", type=float, metavar="S",
          help="stop cleanly after S seconds (default: run until SIGINT/SIGTERM)")
    _flag(g, "--shutdown-grace", type=float, metavar="S",
          help="time allowed for the final flush (default 10)")
    _flag(g, "--stall-timeout", type=float, metavar="S",
          help="reconnect when a connection is silent this long (default 30)")
    _flag(g, "--backoff-initial", type=float, metavar="S",
          help="first reconnect delay; doubles per failure, with full jitter (default 0.5)")
    _flag(g, "--backoff-max", type=float, metavar="S",
          help="longest reconnect delay (default 30)")
    _flag(g, "--config", metavar="FILE",
          help="TOML file with settings (same names, snake_case; default none); its "
          "[venues.<name>] tables (symbols, optional ws_url, rest_url, book) harvest several "
          "venues in one run, each on its own connections (then without --venue/--symbols)")
    _flag(g, "--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    _flag(g, "--log-format", metavar="FMT", help="text (default) or json")
    _flag(g, "--summary-json", action="store_const", const=True,
          help="print the end-of-run summary as one JSON object instead of a table (default "
          "a table)")
    ops_cli.add_run_flags(run)
    adversity_cli.add_run_flags(run)
    compact_cli.add_run_flags(run)
    scale_cli.add_run_flags(run)
    journal_cli.add_run_flags(run)

    sim = sub.add_parser(
        "sim",
        help="run the exchange simulator as a server",
        description="Serve a seeded, Binance-compatible market-data websocket (and its REST "
        "endpoints, on the same port) on loopback. Harvest from it with `run --ws-url "
        "ws://127.0.0.1:PORT --rest-url http://127.0.0.1:PORT` (without --sim).",
    )
    sim.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                     help="address to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=9443, metavar="PORT",
                     help="port for websocket and REST; 0 = any free port (default 9443)")
    sim.add_argument("--venue", default="binance-usdm", metavar="NAME",
                     help="the venue whose wire format to speak: binance-usdm, binance-spot or "
                     "binance-coinm (paths, payload fields, REST paths and weights, server "
                     "pings: docs/simulator.md) (default binance-usdm)")
    sim.add_argument("--symbols", default=None, metavar="LIST",
                     help="comma-separated symbols to list; 'all' lists the venue's catalogue "
                     "of 8 (default BTCUSDT,ETHUSDT; on binance-coinm BTCUSD_PERP,ETHUSD_PERP "
                     "and BTC's current quarterly)")
    sim.add_argument("--rate", type=float, default=None, metavar="MSGS",
                     help=f"total messages per second, at most {MAX_SIM_RATE:,.0f} (default "
                     f"{SYMBOL_RATE:g} per symbol, at least {DEFAULT_TOTAL_MIN:g} in all)")
    sim.add_argument("--seed", type=int, default=1, metavar="N", help="random seed (default 1)")
    sim.add_argument("--duration", type=float, default=None, metavar="S",
                     help="stop after S seconds (default: serve until SIGINT/SIGTERM)")
    adversity_cli.add_sim_flags(sim)
    ops_cli.add_subcommands(sub)
    report_cli.add_subcommand(sub)
    compact_cli.add_subcommand(sub)
    journal_cli.add_subcommand(sub)
    return parser


def _normalize_argv(argv: list[str]) -> list[str]:
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return ["run", *argv]
    return argv


RUN_ONLY = {"config", "summary_json", "command", "raw_argv", "stop_on_eof"}


def _parse(argv: list[str]) -> argparse.Namespace:
    """``parse_args``, but an unknown flag is reported by its subcommand, with the nearest flag
    it knows: ``unrecognized arguments: --duraton (did you mean --duration?)``."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = _subparser(parser, args.command) or parser
        flags = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
        hint = next((h for h in (did_you_mean(x.split("=", 1)[0], flags).replace("'", "")
                                 for x in extra if x.startswith("-")) if h), "")
        sub.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]  # type: ignore[no-any-return]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = _normalize_argv(list(sys.argv[1:] if argv is None else argv))
    args = _parse(argv)
    try:
        if args.command == "sim":
            return _sim(args)
        if args.command == "recover":
            return ops_cli.run_recover(args)
        if args.command == "inspect":
            return ops_cli.run_inspect(args)
        if args.command == "report":
            return report_cli.run_report(args)
        if args.command == "replay":
            return journal_cli.run_replay(args)
        if args.command == "compact":
            return compact_cli.run_compact(args)
        args.raw_argv = argv  # what a supervisor (--workers N) passes on to its workers
        return _run(args)
    except ConfigError as exc:
        print(f"{PREFIX} {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _interrupted()
    except BaseExceptionGroup as group:  # a Ctrl-C that reached a task inside a nursery
        if group.split(KeyboardInterrupt)[1] is not None:
            raise
        return _interrupted()


def _interrupted() -> int:
    print("trio_harvest: interrupted", file=sys.stderr)
    return 130


def _run(args: argparse.Namespace) -> int:
    from ..app import Harvester
    from ..ops.gcpolicy import tuned
    from ..ops.universe import resolve_universe
    from .preflight import preflight
    from .summary import summarize

    cli = {k: v for k, v in vars(args).items() if k not in RUN_ONLY}
    config = load_config(cli, os.environ, Path(args.config) if args.config else None)
    setup_logging(config.log_level, config.log_format)
    if config.venue_tables:  # [venues.<name>] tables: several venues in one process
        return _run_venues(args, config)
    config = resolve_universe(config)  # --symbols all / patterns: from the venue's listing
    if config.workers > 1:  # a supervisor of N shard processes
        preflight(config)  # one line for the host, not one per worker
        return scale_cli.supervise(config, getattr(args, "raw_argv", ()), args.summary_json)
    config, shard = scale_cli.this_shard(config)
    if args.stop_on_eof:
        parent.check_stdin_is_pipe()
    preflight(config)
    harvester = Harvester(config, handle_signals=True,
                          shard_weights=scale_cli.day_weights(config) if config.shard else None)
    try:
        with scale_cli.locked(config, shard, lambda: harvester.stop_from_thread(
                "the shard lease was taken by another process")):  # a second process: exit 2
            with tuned():  # fewer cycle collections (see ops/gcpolicy.py)
                trio.run(scale_cli.harvest, harvester, args.stop_on_eof)
    except ConfigError:  # e.g. the metrics port is in use: a user mistake, exit 2
        raise
    except Exception:
        log.exception("internal failure; buffered rows were sent to the dead letter")
        _print_summary(summarize(harvester, _backlog(config), args.config), args.summary_json)
        return EXIT_INTERNAL
    summary = summarize(harvester, _backlog(config), args.config)
    _print_summary(summary, args.summary_json)
    return EXIT_NO_DATA if summary.frames == 0 else EXIT_OK


def _run_venues(args: argparse.Namespace, config: Any) -> int:
    """One process harvesting every ``[venues.<name>]`` table (multivenue.py)."""
    from ..config import venue_configs
    from ..multivenue import MultiHarvester
    from ..ops.gcpolicy import tuned
    from ..ops.universe import resolve_universe
    from . import venueshards
    from .preflight import preflight
    from .venues import summarize_venues

    configs = [resolve_universe(c) for c in venue_configs(config)]
    if config.workers > 1:  # a supervisor of N processes, each its (venue, symbol) pairs
        preflight(config)
        return venueshards.supervise(config, configs, getattr(args, "raw_argv", ()),
                                     args.summary_json)
    configs, shard = venueshards.this_share(config, configs)
    if args.stop_on_eof:
        parent.check_stdin_is_pipe()
    preflight(config)
    multi = MultiHarvester(configs, handle_signals=True,
                           unit_kw=venueshards.unit_kw if config.shard else None)
    code = EXIT_OK
    try:
        with scale_cli.locked(config, shard, lambda: multi.stop_from_thread(
                f"the {'shard' if config.shard else 'data dir'}'s lease was taken by another "
                "process")), tuned():
            trio.run(scale_cli.harvest, multi, args.stop_on_eof)
    except ConfigError:
        raise
    except Exception:
        log.exception("internal failure; buffered rows were sent to the dead letter")
        code = EXIT_INTERNAL
    summary = summarize_venues(multi.units, _backlog(config), args.config)
    _print_summary(summary, args.summary_json)
    if code == EXIT_OK and summary.frames == 0:
        code = EXIT_NO_DATA
    return code


def _backlog(config: Any) -> Any:
    """The dead letter after the run (None if it cannot be read: the summary says nothing)."""
    from ..storage.backlog import scan_backlog

    try:
        return scan_backlog(config.deadletter_path)
    except OSError:
        return None


def _print_summary(summary: Any, as_json: bool | None) -> None:
    import json

    print(json.dumps(summary.as_dict()) if as_json else summary.render(), flush=True)


def _sim(args: argparse.Namespace) -> int:
    from ..sim.listing import initial_listing
    from ..sim.server import SimConfig, sim_main
    from ..sim.venue import default_symbols, profile
    from ..symbols import check_symbols, is_universe
    from ..venues import get as adapter

    try:
        venue = profile(args.venue)
    except ValueError as exc:
        raise ConfigError(f"--venue: {exc}") from None
    if args.symbols is None:
        symbols = default_symbols(venue.name, time.time_ns() // 1_000_000)
    else:
        symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    check_symbols(symbols, "--symbols", adapter(venue.name).valid_symbol)
    if is_universe(symbols):  # all or a pattern: the simulator's catalogue (and names given)
        symbols = initial_listing(symbols, venue.catalogue)
    rate = sim_rate(args.rate, len(symbols))
    if not 0 < rate <= MAX_SIM_RATE:  # also rejects nan
        raise ConfigError(f"--rate: must be positive and at most {MAX_SIM_RATE:,.0f} messages per "
                          f"second (the simulator cannot go faster), got {rate:g}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: {args.port} is not a port")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f"--duration: must be a positive number of seconds, got {args.duration:g}")
    plan = adversity_cli.sim_plan(args)
    _check_listen(args.host, args.port)
    setup_logging("INFO", "text")
    config = SimConfig(symbols=symbols, rate=rate, seed=args.seed, host=args.host,
                       port=args.port, faults=plan, venue=venue.name)
    return sim_main(config, args.duration)


def _check_listen(host: str, port: int) -> None:
    """``ConfigError`` if ``host:port`` cannot be listened on (in use, not a local address), so
    the mistake reads like every other; binds the same way the simulator will, then lets go."""

    async def probe() -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        for listener in listeners:
            await listener.aclose()

    try:
        trio.run(probe)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} (--host, --port): "
                          f"{exc.strerror or exc}") from None
