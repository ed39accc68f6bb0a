"""The frozen, validated configuration and the layers it is built from.

Owns: field defaults, parsing of every layer (defaults < TOML file < environment < CLI flags) and
validation. A user mistake is raised as ``ConfigError`` with one readable line, never as a bare
``ValueError`` or ``KeyError`` from deep inside. Pure: reading the TOML file is the only I/O, and
checking that the data directory is writable lives in ``preflight.py``, not here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import venues
from .channels import resolve as resolve_channels
from .coerce import coerce_from, parse_watermarks
from .errors import ConfigError
from .hints import did_you_mean
from .ingest.tls import TrustError
from .ingest.tls import check as check_ca_file
from .ingest.transport import DEFAULT_TRANSPORT, TRANSPORTS
from .journal import settings as journal_settings
from .kinds import ALL_KINDS, DEFAULT_WATERMARKS
from .ops.settings import check_ops_settings
from .scale.settings import resolve as resolve_scale
from .signals.params import SignalParams
from .storage.location import aws_env
from .storage.partitions import DEADLETTER_DIR
from .symbols import SYMBOL_RE, check_symbols, is_pattern
from .venuetables import PER_VENUE, VenueTable, parse_tables

__all__ = ["SYMBOL_RE", "Config", "ConfigError", "build_config", "load_config"]


ENV_PREFIX = "TRIO_HARVEST_"
DEPTH_LEVELS = (5, 10, 20)
DEPTH_SPEEDS = ("100ms", "250ms", "500ms")
BOOK_MODES = ("partial", "diff")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The simulator tops out near 100 000 msg/s on one core; above that it only starves the trio loop
# it shares with the harvester (``run --sim``): nothing gets harvested and Ctrl-C is not served.
MAX_SIM_RATE = 100_000.0
SIM_EXCLUSIVE = ("--sim runs its own simulator; to harvest from a separate `python -m trio_harvest "
                 "sim`, give --ws-url and --rest-url without --sim")


@dataclass(frozen=True, slots=True)
class Config:
    # what to harvest, and from where
    venue: str = venues.DEFAULT  # the registered venue (venues/__init__.py) harvested
    # names, patterns ('*USDT') or ALL; without any in any layer the venue's ``default_symbols``
    symbols: tuple[str, ...] = venues.default().default_symbols
    listing_interval: float = 600.0  # with patterns or ALL: poll the venue's listing this often
    ws_url: str = ""  # "": the venue's ``default_ws_url``
    rest_url: str = ""  # "": the venue's ``default_rest_url``
    depth_levels: int = 20
    depth_speed: str = "100ms"
    book: str = "partial"
    book_ticker: bool = True
    # what is harvested (channels.py): "" = every channel the venue and --book offer
    channels: str = ""
    open_interest_interval: float = 60.0  # derivatives: poll each symbol's open interest
    streams_per_connection: int = 200
    max_message_bytes: int = 4 * 1024 * 1024
    # where and how it is written
    data_dir: Path = Path("data")
    deadletter_dir: Path | None = None
    rotate_sec: float = 60.0
    min_file_rows: int = 10_000
    max_file_age: float = 180.0
    # rows held by all lanes together, estimated (8 bytes a value); over it the biggest lanes
    # are written first (pipeline/rotation.py); 0 = no bound but max_file_age and watermarks
    max_buffered_mb: float = 160.0
    write_timeout: float = 30.0
    save_concurrency: int = 2
    deadletter_timeout: float = 30.0
    max_stuck_writes: int = 8
    buffer_high: int | None = None
    watermarks: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: dict(DEFAULT_WATERMARKS)
    )
    # time
    shutdown_grace: float = 10.0
    stall_timeout: float = 30.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    duration: float | None = None
    # continue agg-id continuity from the dataset after a restart (backfill what was missed)
    resume: bool = True
    # the built-in simulator
    sim: bool = False
    sim_rate: float | None = None  # total msg/s; None: 20 per symbol (sim/calibration.py)
    sim_seed: int = 1
    sim_faults: str = ""  # e.g. "disconnect=5,garbage=0.01" (see sim/faultplan.py); "" = exact
    # adversity: REST backfill of trades and the 24 h connection handover
    backfill: bool = True
    backfill_weight: int = 1200  # REST request weight per minute for backfill (Binance: 2400/IP)
    backfill_delay: float = 1.0  # a break waits this long (late frames may close it) before REST
    ws_lifetime: float = 86400.0  # the exchange closes connections this old (Binance: 24 h)
    handover_lead: float = 300.0  # open the replacement this long before that
    handover_overlap: float = 5.0  # read the old one at most this long after the new one opened
    # operations
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    metrics_per_symbol: bool = False  # /metrics: the symbol_* families too (series per symbol)
    log_level: str = "INFO"
    log_format: str = "text"
    # derived signals (TOML table [signals]; see signals/params.py)
    signals: SignalParams = field(default_factory=SignalParams)
    health_interval: float = 5.0
    auto_recover: bool = True
    auto_recover_after: float = 60.0
    auto_recover_batch: int = 1000  # dead-letter files per round (merged per kind and symbol)
    # operator experience: the progress line and the end-of-run summary
    progress_interval: float = 300.0  # seconds between progress lines; 0 = off
    summary_by_symbol: bool = False  # the summary per symbol too (always with 4 symbols or fewer)
    # compaction: background merging into hourly files, and a closed day into one file per
    # partition (storage/compact.py, storage/compactrules.py)
    auto_compact: bool = True
    compact_older_than: float = 600.0
    compact_target_rows: int = 1_000_000
    compact_interval: float = 60.0  # seconds between background compaction rounds
    compact_delete_after: float = 0.0  # a merge's sources stay this long for running reads
    # transport: the websocket client library, see ingest/transport.py
    transport: str = DEFAULT_TRANSPORT
    # CA certificates (a PEM file) trusted for wss:// and https:// besides the system's
    ca_file: str = ""
    # scale-out: object storage, workers per host, shards (scale/settings.py checks)
    data_url: str = ""  # s3://bucket/prefix; set from an s3:// data_dir (data_dir: local_dir)
    local_dir: Path | None = None  # local disk of an s3:// data_dir (dead letter, journal, locks)
    s3_endpoint: str = ""  # "" = AWS_ENDPOINT_URL or the region's endpoint
    s3_region: str = ""  # "" = AWS_REGION / AWS_DEFAULT_REGION
    s3_allow_http: bool = False  # plain-http endpoints (a local MinIO) only when allowed
    workers: int = 1  # harvester processes on this host, each a shard
    shard: str = ""  # "I/N": harvest shard I of N (rendezvous hashing of the symbols)
    lease_ttl: float = 90.0  # s3:// --shard: the shard lease's life; writes stop at half of it
    worker_stable_after: float = 60.0  # a worker up this long restarts after the first backoff
    shard_weights: str = "venue"  # "venue" (24 h ticker), "off", or a snapshot file (scale/weights.py)

    # durability: the write-ahead journal of raw frames and the raw archive
    journal: bool = True
    journal_dir: Path | None = None  # default <data_dir>/_journal
    journal_fsync_ms: int = 200
    journal_max_bytes: int = 2 * 1024**3
    journal_segment_bytes: int = 64 * 1024**2
    journal_segment_s: float = 60.0
    journal_compress: bool = True  # each group commit one zstd block (level 1): ~3x fewer bytes
    raw_dir: Path | None = None  # off; sealed segments are kept here, zstd-compressed
    # not a setting: the names and patterns ``symbols`` had before the listing resolved them
    # (ops/universe.py); empty for a fixed list of names. A run with it follows the listing.
    universe: tuple[str, ...] = ()
    # the ``[venues.<name>]`` tables of the TOML file (venuetables.py): one run harvests each
    # venue on its own connections (``venue_configs``); () = the one venue above
    venue_tables: tuple[VenueTable, ...] = ()

    def __post_init__(self) -> None:
        venue = venue_of(self.venue)
        if not self.ws_url:
            object.__setattr__(self, "ws_url", venue.default_ws_url)
        if not self.rest_url:
            object.__setattr__(self, "rest_url", venue.default_rest_url)
        modes = getattr(venue, "book_modes", None)  # a venue whose books come one way only
        if modes and self.book not in modes:
            object.__setattr__(self, "book", modes[0])
        _validate(self)
        resolve_scale(self)  # first: an s3:// data_dir becomes a local dir (journal's home)
        journal_settings.validate(self)
        if self.venue_tables:  # --shard / --workers split its (venue, symbol) pairs
            venue_configs(self)  # each venue's own settings are valid (its symbols, URLs)

    @property
    def harvested(self) -> frozenset[str]:
        """The channels this run harvests (``channels`` checked against the venue)."""
        return resolve_channels(self.channels, venue_of(self.venue), self.book)

    @property
    def deadletter_path(self) -> Path:
        if self.deadletter_dir is not None:
            return self.deadletter_dir
        return self.data_dir / DEADLETTER_DIR

    def high(self, kind: str) -> int:
        return self.watermarks[kind][0]

    def emergency(self, kind: str) -> int:
        return self.watermarks[kind][1]


INTERNAL = ("universe", "venue_tables")
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Config) if f.name not in INTERNAL)
_HINTS = typing.get_type_hints(Config)


def venue_of(name: str) -> venues.Venue:
    """The adapter of the configured venue; ``ConfigError`` naming the known ones."""
    try:
        return venues.get(name)
    except venues.UnknownVenue as exc:
        raise ConfigError(f"venue: {exc}") from None


def venue_configs(c: Config) -> list[Config]:
    """One ``Config`` per venue a run harvests: ``c`` itself without venue tables; with them,
    ``c`` made that venue's (its symbols, URLs and book; its own journal directory
    ``<journal>/<venue>`` and raw archive ``<raw_dir>/<venue>``, since a journal has one owner;
    a shard's journal is ``<journal>/shard-I-of-N/<venue>``). The dataset-wide duties go to the
    first venue (``with_duties``). ``ConfigError`` names the venue table at fault."""
    if not c.venue_tables:
        return [c]
    out: list[Config] = []
    base_journal = journal_settings.journal_path(c)
    for t in c.venue_tables:
        try:
            out.append(dataclasses.replace(
                c, venue=t.name, venue_tables=(),
                symbols=t.symbols or venue_of(t.name).default_symbols,
                ws_url=t.ws_url, rest_url=t.rest_url, book=t.book or c.book,
                channels=t.channels or c.channels,
                max_buffered_mb=c.max_buffered_mb / len(c.venue_tables),  # one process's
                journal_dir=base_journal / t.name,
                raw_dir=None if c.raw_dir is None else c.raw_dir / t.name,
                metrics_port=0, auto_recover=False, auto_compact=False))
        except ConfigError as exc:
            raise ConfigError(f"[venues.{t.name}]: {exc}") from None
    return with_duties(out, c)


def with_duties(units: Sequence[Config], c: Config) -> list[Config]:
    """``units`` with the dataset-wide duties of run ``c`` (the metrics endpoint, auto-recovery
    of the dead letter, background compaction) given to the first and to no other."""
    return [dataclasses.replace(u, metrics_port=c.metrics_port if i == 0 else 0,
                                auto_recover=c.auto_recover and i == 0,
                                auto_compact=c.auto_compact and i == 0)
            for i, u in enumerate(units)]


def _validate(c: Config) -> None:
    venue = venues.get(c.venue)
    syntax = venue.valid_symbol
    if c.universe:  # resolved from the listing: a shard's share may be empty for now
        check_symbols(c.universe, venue_syntax=syntax)
        if c.symbols:
            check_symbols(c.symbols, venue_syntax=syntax)
    else:
        check_symbols(c.symbols, venue_syntax=syntax)
    wrong = [s for s in c.symbols if not is_pattern(s) and not venue.valid_symbol(s)]
    if wrong:
        raise ConfigError(f"symbols: {wrong[0]!r} is not a {c.venue} symbol (e.g. "
                          f"{', '.join(venue.default_symbols)})")
    for name in ("ws_url",):
        url = getattr(c, name)
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"{name}: {url!r} must start with ws:// or wss://")
    if not c.rest_url.startswith(("http://", "https://")):
        raise ConfigError(f"rest_url: {c.rest_url!r} must start with http:// or https://")
    _choice("depth_levels", c.depth_levels, DEPTH_LEVELS)
    _choice("depth_speed", c.depth_speed, DEPTH_SPEEDS)
    _choice("book", c.book, BOOK_MODES)
    c.harvested  # noqa: B018  (ConfigError for channels the venue or --book do not offer)
    _positive("open_interest_interval", c.open_interest_interval)
    _choice("log_format", c.log_format, LOG_FORMATS)
    _choice("log_level", c.log_level, LOG_LEVELS)
    _choice("transport", c.transport, TRANSPORTS)
    if c.ca_file:
        try:
            check_ca_file(c.ca_file)
        except TrustError as exc:
            raise ConfigError(str(exc)) from None
    for name in ("rotate_sec", "write_timeout", "shutdown_grace", "stall_timeout",
                 "backoff_initial", "backoff_max", "deadletter_timeout", "max_file_age"):
        _positive(name, getattr(c, name))
    if c.duration is not None:
        _positive("duration", c.duration)
    if c.backoff_max < c.backoff_initial:
        raise ConfigError("backoff_max must be at least backoff_initial")
    for name in ("save_concurrency", "streams_per_connection", "max_message_bytes",
                 "max_stuck_writes", "min_file_rows"):
        if getattr(c, name) < 1:
            raise ConfigError(f"{name}: must be at least 1, got {getattr(c, name)}")
    if not (isinstance(c.max_buffered_mb, int | float) and not isinstance(c.max_buffered_mb, bool)
            and 0 <= c.max_buffered_mb < float("inf")):
        raise ConfigError(f"max_buffered_mb: must be a number of MB >= 0 (0 = no bound), got "
                          f"{c.max_buffered_mb!r}")
    if c.buffer_high is not None and c.buffer_high < 1:
        raise ConfigError(f"buffer_high: must be at least 1, got {c.buffer_high}")
    if not 0 <= c.metrics_port <= 65535:
        raise ConfigError(f"metrics_port: {c.metrics_port} is not a port (0 = off)")
    _positive("health_interval", c.health_interval)
    _positive("listing_interval", c.listing_interval)
    for name in ("backfill_delay", "ws_lifetime", "handover_lead", "handover_overlap"):
        _positive(name, getattr(c, name))
    if c.handover_lead >= c.ws_lifetime:
        raise ConfigError("handover_lead must be shorter than ws_lifetime")
    if c.backfill_weight < 20:
        raise ConfigError(f"backfill_weight: at least 20 (one trades request), got {c.backfill_weight}")
    rate = c.sim_rate  # None: the simulator's per-symbol default (sim/calibration.py)
    if rate is not None and not (isinstance(rate, int | float) and 0 < rate <= MAX_SIM_RATE):
        raise ConfigError(f"sim_rate: must be a positive number of messages per second, at most "
                          f"{MAX_SIM_RATE:,.0f} (the simulator cannot go faster), got {c.sim_rate!r}")
    if c.sim_faults and not c.sim:
        raise ConfigError("--sim-faults needs --sim (sim_faults needs sim = true): faults are "
                          "injected by the built-in simulator, never into a real exchange")
    if c.sim and c.ws_url != venue.default_ws_url:
        raise ConfigError(f"--sim and --ws-url are exclusive: {SIM_EXCLUSIVE}")
    if c.sim and c.rest_url != venue.default_rest_url:
        raise ConfigError(f"--sim and --rest-url are exclusive: {SIM_EXCLUSIVE}")
    if c.sim_faults:
        from .sim.faultplan import FaultSpecError, parse_faults

        try:
            parse_faults(c.sim_faults)
        except FaultSpecError as exc:
            raise ConfigError(f"sim_faults: {exc}") from None
    _positive("auto_recover_after", c.auto_recover_after)
    if c.auto_recover_batch < 1:
        raise ConfigError(f"auto_recover_batch: must be at least 1, got {c.auto_recover_batch}")
    from .storage.compactrules import check_settings  # compaction's own rules
    if (problem := check_settings(c.compact_older_than, c.compact_target_rows,
                                  c.compact_delete_after)) is not None:
        raise ConfigError(problem)
    _positive("compact_interval", c.compact_interval)
    check_ops_settings(c.progress_interval)
    for kind in ALL_KINDS:
        if kind not in c.watermarks:
            raise ConfigError(f"watermarks: no watermarks for kind {kind!r}")
    for kind, (high, emergency) in c.watermarks.items():
        if kind not in ALL_KINDS:
            raise ConfigError(f"watermarks: unknown kind {kind!r} (known: {', '.join(ALL_KINDS)})")
        if high < 1 or emergency < high:
            raise ConfigError(
                f"watermarks.{kind}: need 1 <= high <= emergency, got high={high} "
                f"emergency={emergency}"
            )


def _choice(name: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(str, allowed))}")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}: must be a positive number of seconds, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Layers


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return data


def layer_from_toml(data: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name == "watermarks":
            out["watermarks"] = parse_watermarks(raw, where)
            continue
        if name == "venues":  # [venues.<name>] tables: several venues in one run
            out["venue_tables"] = parse_tables(raw, where)
            continue
        if name == "signals":
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{where}signals: expected a table of signal parameters")
            try:
                out["signals"] = SignalParams.from_mapping(raw)
            except ConfigError as exc:
                raise ConfigError(f"{where}{exc}") from None
            continue
        if name not in FIELD_NAMES:
            raise ConfigError(f"{where}unknown setting {key!r}{did_you_mean(name, FIELD_NAMES)}")
        if name == "channels" and isinstance(raw, list):  # channels = ["trades", "quotes"]
            raw = ",".join(map(str, raw))
        out[name] = coerce_from(_HINTS, f"{where}{key}: ", name, raw)
    return out


def layer_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out.update(aws_env(env))  # the standard AWS variables, below our own TRIO_HARVEST_S3_*
    legacy = {"BUFFER_HIGH": "buffer_high", "SAVE_CONCURRENCY": "save_concurrency"}
    for var, name in legacy.items():
        if env.get(var, "").strip():
            out[name] = coerce_from(_HINTS, f"environment {var}: ", name, env[var])
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        name = var[len(ENV_PREFIX):].lower()
        if name in ("watermarks", "signals") or name not in FIELD_NAMES:
            near = did_you_mean(var, [ENV_PREFIX + f.upper() for f in FIELD_NAMES])
            raise ConfigError(f"environment {var}: unknown setting {name!r}{near}")
        out[name] = coerce_from(_HINTS, f"environment {var}: ", name, value)
    return out


def layer_from_cli(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flags the user actually gave (value not None), already typed by argparse or as strings."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if raw is None:
            continue
        if name not in FIELD_NAMES:
            raise ConfigError(f"--{name.replace('_', '-')}: unknown setting")
        out[name] = coerce_from(_HINTS, f"--{name.replace('_', '-')}: ", name, raw)
    return out


def build_config(*layers: Mapping[str, Any]) -> Config:
    """Merge layers in rising priority. ``buffer_high`` in a layer resets every kind's watermarks
    (emergency = 2x high) before that layer's own ``watermarks`` table applies."""
    merged: dict[str, Any] = {}
    watermarks = dict(DEFAULT_WATERMARKS)
    for layer in layers:
        if layer.get("buffer_high") is not None:
            high = int(layer["buffer_high"])
            watermarks = {kind: (high, 2 * high) for kind in ALL_KINDS}
        if "watermarks" in layer:
            watermarks.update(layer["watermarks"])
        merged.update({k: v for k, v in layer.items() if k != "watermarks"})
    merged["watermarks"] = watermarks
    if merged.get("venue_tables"):
        given = [name for name in PER_VENUE if name in merged]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"[venues.<name>] tables and {flag} ({given[0]}) are exclusive: "
                              f"give {given[0]} inside each venue's table, or drop the tables "
                              "to harvest one venue")
    if "symbols" not in merged and "universe" not in merged:  # the venue's own default names
        merged["symbols"] = venue_of(merged.get("venue", venues.DEFAULT)).default_symbols
    return Config(**merged)


def load_config(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Config:
    toml: dict[str, Any] = {}
    if config_file is not None:
        toml = layer_from_toml(read_toml(config_file), where=f"config file {config_file}: ")
    from_env, from_cli = layer_from_env(env or {}), layer_from_cli(cli or {})
    try:
        return build_config(toml, from_env, from_cli)
    except ConfigError as exc:
        if config_file is None:
            raise
        raise ConfigError(_blame(str(exc), config_file, toml, from_env, from_cli)) from None


_LEADING_SETTING = re.compile(r"^([a-z_]+)(?:\.[a-z_]+)?(?::| must )")


def _blame(message: str, config_file: Path, *layers: Mapping[str, Any]) -> str:
    """Say where a failed validation's value came from when a config file took part: the file
    (prefix) if the setting the message starts with was last set there; nothing more if a later
    layer (the environment, a flag) set it; otherwise (a rule between settings) every source."""
    toml, env, cli = layers
    m = _LEADING_SETTING.match(message)
    if m is not None:
        name = m.group(1)
        keys = {"watermarks", "buffer_high"} if name == "watermarks" else {name}
        if any(k in cli or k in env for k in keys):
            return message
        if any(k in toml for k in keys):
            return f"config file {config_file}: {message}"
    return f"{message} (settings from config file {config_file}, the environment and flags)"
