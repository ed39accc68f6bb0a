"""The operations subcommands of the command line: ``recover`` and ``inspect``, and the ``run``
ops flags (metrics endpoint, health interval, automatic recovery).

Owns their arguments and output (text for people, ``--json`` for tools: both shapes are stable
and documented in the README). Exit codes as everywhere: 0 ok, 1 something could not be done (a
dead-letter file that failed to recover), 2 a user mistake (e.g. a missing data dir, raised as
``ConfigError``). Never harvests; the work lives in ``recover.py`` and ``inventory.py``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import trio

from ..config import ENV_PREFIX, ConfigError, load_config
from ..storage.dlmove import adopt_legacy
from ..storage.partitions import DEADLETTER_DIR, LEGACY_DEADLETTER_DIR
from .report import add_filter_flags, filters
from .scale import add_s3_flags

EXIT_OK, EXIT_FAILED = 0, 1
DATA_DIR_ENV = ENV_PREFIX + "DATA_DIR"
RECOVER_CONCURRENCY = 4  # dead-letter batches recovered at once by the command (fsync-bound)


def add_run_flags(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group("operations")
    g.add_argument("--metrics-port", type=int, metavar="PORT", default=None,
                   help="serve the live page /, /metrics, /healthz and /status on this port (0 = "
                   "off, the default)")
    g.add_argument("--metrics-host", metavar="ADDR", default=None,
                   help="address of the ops endpoint (default 127.0.0.1)")
    g.add_argument("--metrics-per-symbol", action="store_const", const=True, default=None,
                   help="also export a series per lane and per stream (trio_harvest_symbol_*: "
                   "about 40 lines per symbol); default off: per venue, kind and connection only")
    g.add_argument("--health-interval", type=float, metavar="S", default=None,
                   help="seconds between health checks (default 5)")
    g.add_argument("--no-auto-recover", dest="auto_recover", action="store_const", const=False,
                   default=None, help="do not replay the dead letter automatically (on by default)")
    g.add_argument("--auto-recover-after", type=float, metavar="S", default=None,
                   help="replay the dead letter once writes have succeeded this long (default 60)")
    g.add_argument("--auto-recover-batch", type=int, metavar="N", default=None,
                   help="dead-letter files replayed per health interval, merged per kind and "
                   "symbol (default 1000)")
    g.add_argument("--progress-interval", type=float, metavar="S", default=None,
                   help="seconds between one-line progress reports; 0 = off (default 300)")
    g.add_argument("--summary-by-symbol", action="store_const", const=True, default=None,
                   help="end-of-run summary per symbol as well as per kind (default off; always "
                   "per symbol too with 4 symbols or fewer)")


def add_subcommands(sub: Any) -> None:
    rec = sub.add_parser(
        "recover",
        help="replay dead-letter files into their partitions",
        description="Read every dead-letter file, validate it, write its rows into the right "
        "partitions (atomically, under names derived from the file so a re-run never "
        "duplicates) and remove it. Bad lines are set aside in DEADLETTER/_rejected/. Safe to "
        "interrupt and run again, and safe while a harvester runs.",
    )
    add_dir_flags(rec)
    add_s3_flags(rec)
    rec.add_argument("--limit", type=int, metavar="N", default=None,
                     help="recover at most N files, oldest first (default all)")
    rec.add_argument("--json", action="store_true", help="print one JSON object")

    ins = sub.add_parser(
        "inspect",
        help="show what is on disk: a summary, or every partition with --partitions",
        description="By default a summary that fits a screen, from Parquet footers and the gaps "
        "kind: per kind the symbols, files, rows, bytes and time range; gaps by reason and the "
        "agg ids still unfilled; the worst symbols; the dead letter and the quarantine. With "
        "--partitions (or --json): per date/symbol/kind files, rows, first/last event time, "
        "bytes, for prices the holes in agg_id continuity, and temporary leftovers.",
    )
    add_dir_flags(ins)
    add_s3_flags(ins)
    add_filter_flags(ins)
    ins.add_argument("--partitions", action="store_true",
                     help="list every partition (reads the time and agg_id columns: slower)")
    ins.add_argument("--json", action="store_true",
                     help="print one JSON object: the per-partition inventory (with "
                     "--summary-only: the summary)")
    ins.add_argument("--summary-only", action="store_true",
                     help="with --json: the summary's JSON instead of the inventory's")


def add_dir_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="the dataset's root; else data_dir from --config or "
                   "TRIO_HARVEST_DATA_DIR (one of them is required)")
    p.add_argument("--deadletter-dir", metavar="DIR", default=None,
                   help="dead-letter folder (default the config's deadletter_dir, else "
                   "DATA_DIR/_deadletter)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="the TOML file the run used: the same data_dir and deadletter_dir "
                   "(environment and flags override it, as for run; default none)")


def _settings(args: argparse.Namespace) -> tuple[str, str | None, bool]:
    """(data dir, dead-letter dir or None, whether the dead-letter dir was given by a flag),
    from defaults < --config < environment < flags, as ``run`` reads them."""
    if args.data_dir is None and args.config is None and not os.environ.get(DATA_DIR_ENV):
        raise ConfigError("the following arguments are required: --data-dir (or --config)")
    if args.config is None and not any(k.startswith(ENV_PREFIX) for k in os.environ):
        return args.data_dir, args.deadletter_dir, args.deadletter_dir is not None
    cli = {"data_dir": args.data_dir, "deadletter_dir": args.deadletter_dir}
    cfg = load_config(cli, os.environ, Path(args.config) if args.config else None)
    dl = str(cfg.deadletter_dir) if cfg.deadletter_dir is not None else None
    return str(cfg.data_dir), dl, args.deadletter_dir is not None


def _existing_dir(raw: str, flag: str) -> Path:
    """``raw`` as a directory that exists, or ``ConfigError`` naming ``flag``."""
    if not raw:
        raise ConfigError(f"{flag}: '' is not a valid path")
    path = Path(raw).expanduser()
    if not path.exists():
        raise ConfigError(f"{flag} {path}: no such directory")
    if not path.is_dir():
        raise ConfigError(f"{flag} {path}: is not a directory")
    return path


def _dirs(args: argparse.Namespace, adopt: bool = False) -> tuple[Path, Path | None]:
    """The data dir and the dead-letter dir, or None for "no dead letter at all". A dead-letter
    dir given with --deadletter-dir must exist (a typo would otherwise report an empty backlog);
    the default DATA_DIR/_deadletter may be absent (nothing was ever dead-lettered). ``adopt``:
    first move a dead letter from its old place (DATA_DIR/deadletter) to the default one."""
    data_dir, dl_dir, flagged = _settings(args)
    data = _existing_dir(data_dir, "--data-dir" if args.data_dir is not None else "data_dir")
    if flagged and dl_dir is not None:
        return data, _existing_dir(dl_dir, "--deadletter-dir")
    dl = Path(dl_dir) if dl_dir is not None else data / DEADLETTER_DIR
    if adopt:
        adopt_legacy(data, dl)
    if dl_dir is not None and not dl.exists():
        return data, None  # set by the config: nothing was ever dead-lettered there
    if not dl.exists():
        return data, None
    if not dl.is_dir():
        what = "the config's deadletter_dir" if dl_dir is not None else \
            "the default DATA_DIR/_deadletter"
        raise ConfigError(f"dead-letter dir {dl} ({what}): is not a directory; give "
                          "--deadletter-dir")
    return data, dl


def _remote(args: argparse.Namespace, adopt: bool = False) -> tuple[Any, Path] | None:
    """The store and dead-letter dir (which may not exist) of an ``s3://`` data dir, else None."""
    from ..storage.location import (
        TRUTHY,
        S3Options,
        as_s3_url,
        default_local_dir,
        effective,
        parse_s3,
    )

    env = os.environ
    url = as_s3_url(args.data_dir) if args.data_dir is not None else None
    from_config = None
    if url is None and args.data_dir is None and args.config is not None:
        from_config = load_config({"deadletter_dir": args.deadletter_dir}, env, Path(args.config))
        url = from_config.data_url or None  # the run's bucket, from the same TOML
    if url is None:
        return None
    from ..storage.s3store import S3Store

    allow = args.s3_allow_http or env.get("TRIO_HARVEST_S3_ALLOW_HTTP", "").lower() in (
        TRUTHY) or bool(from_config and from_config.s3_allow_http)
    opts = effective(S3Options(args.s3_endpoint or env.get("TRIO_HARVEST_S3_ENDPOINT", "")
                               or (from_config.s3_endpoint if from_config else ""),
                               args.s3_region or env.get("TRIO_HARVEST_S3_REGION", "")
                               or (from_config.s3_region if from_config else ""), allow), env)
    loc = parse_s3(url, "--data-dir")
    store = S3Store(loc, opts)
    try:
        store.probe()
    except OSError as exc:
        raise ConfigError(f"--data-dir {url}: cannot reach the bucket ({exc})") from None
    if args.deadletter_dir is not None:
        return store, _existing_dir(args.deadletter_dir, "--deadletter-dir")
    local = default_local_dir(loc)
    if adopt:
        adopt_legacy(local, local / DEADLETTER_DIR)
    return store, local / DEADLETTER_DIR


def local_dirs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The data dir and dead-letter dir of a command that reads local datasets only."""
    if args.data_dir is not None and args.data_dir.startswith("s3://"):
        raise ConfigError(f"--data-dir {args.data_dir}: {args.command} reads a local dataset "
                          "only (inspect reads s3://)")
    return _dirs(args)


def deadletter_dirs(args: argparse.Namespace, data: Path) -> list[Path]:
    """Every dead-letter folder of the dataset that exists: the configured one, and the old
    default one (``deadletter/``) if it is still there."""
    _, dl = _dirs(args)
    out = [dl] if dl is not None else []
    default = data / LEGACY_DEADLETTER_DIR
    if default.is_dir() and default not in out:
        out.append(default)
    return out


def _unreadable(exc: OSError) -> Exception:
    """The one line for data that cannot be read; a closed pipe on our own output (``| head``)
    is not that, and goes on to end the command quietly."""
    if isinstance(exc, BrokenPipeError):
        return exc
    return ConfigError(f"cannot read {exc.filename or 'the data'}: {exc.strerror or exc}")


def run_recover(args: argparse.Namespace) -> int:
    from ..storage.recover import Recoverer, RecoveryReport

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: must be at least 1, got {args.limit}")
    remote = _remote(args, adopt=True)
    if remote is not None:
        store, rdl = remote
        if not rdl.is_dir():
            _print(RecoveryReport().as_dict() if args.json else "nothing to recover: no dead "
                   "letter on this host for that bucket (give --deadletter-dir)", args.json)
            return EXIT_OK
        try:
            report = trio.run(Recoverer(store.location, rdl, concurrency=RECOVER_CONCURRENCY,
                                        s3=store.options).recover_all, args.limit)
        except OSError as exc:
            raise _unreadable(exc) from None
        _print(report.as_dict() if args.json else report.render(), args.json)
        return EXIT_FAILED if report.failed else EXIT_OK
    data, dl = _dirs(args, adopt=True)
    if dl is None:
        if args.json:
            _print(RecoveryReport().as_dict(), True)
        else:
            where = _settings(args)[1] or data / DEADLETTER_DIR
            _print(f"nothing to recover: {where} does not exist", False)
        return EXIT_OK
    try:
        report = trio.run(Recoverer(data, dl, concurrency=RECOVER_CONCURRENCY).recover_all,
                          args.limit)
    except OSError as exc:  # e.g. the dead letter cannot be listed (permissions)
        raise _unreadable(exc) from None
    _print(report.as_dict() if args.json else report.render(), args.json)
    return EXIT_FAILED if report.failed else EXIT_OK


def run_inspect(args: argparse.Namespace) -> int:
    from ..storage.inventory import inspect_dataset

    remote = _remote(args)
    if remote is not None:
        from ..storage.remote_inventory import inspect_store

        store, rdl = remote
        f = filters(args, None)
        try:
            remote_inv = inspect_store(store, rdl, f.keeps if f.active else None)
        except OSError as exc:
            raise _unreadable(exc) from None
        _print(remote_inv.as_dict() if args.json else remote_inv.render(), args.json)
        return EXIT_OK
    data, dl = _dirs(args)
    f = filters(args, data)
    try:
        if (args.json and not args.summary_only) or args.partitions:
            inv = inspect_dataset(data, dl if dl is not None else data / DEADLETTER_DIR,
                                  f.keeps if f.active else None)
            _print(inv.as_dict() if args.json else inv.render(), args.json)
            return EXIT_OK
        from ..report.gather import gather
        from ..report.summary import render, summarize

        doc = summarize(gather(data, deadletter_dirs(args, data), f.symbols, f.start_ms,
                               f.end_ms, f.venue), f.start_ms, f.end_ms)
        # the venue(s) the summary covers: the one asked for, else every venue= folder held
        # (a partition of before venues, date=… at the top, is binance-usdm's)
        held = {p.name.removeprefix("venue=") for p in data.glob("venue=*")}
        if held and any(data.glob("date=*")):
            held.add(doc["venue"])
        doc["venue"] = f.venue or ", ".join(sorted(held)) or doc["venue"]
    except OSError as exc:  # e.g. a folder that cannot be listed (permissions)
        raise _unreadable(exc) from None
    _print(doc if args.json else render(doc, str(data), f.describe()), args.json)
    return EXIT_OK


def _print(out: Any, as_json: bool) -> None:
    print(json.dumps(out, indent=1) if as_json else out, flush=True)
