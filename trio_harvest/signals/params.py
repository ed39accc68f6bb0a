"""Signal parameters: windows, weights, thresholds and grace, with defaults and validation.

Owns the ``[signals]`` configuration table (``SignalParams.from_mapping``) and the Parquet
key-value metadata that makes derived data reproducible (``SignalParams.metadata``). Pure: never
does I/O (the package version comes from installed metadata), never imports trio.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as _importlib_metadata
from typing import Any

from ..errors import ConfigError
from ..hints import did_you_mean
from ..kinds import OFI_LEVELS_MAX, PREVIEW_KINDS
from ..venues import QUOTE_SOURCE

META_PREFIX = "trio_harvest."
OFI_FORMULA = (
    "best level: Cont-Kukanov-Stoikov 2014 e_n summed; "
    "multi-level: Xu-Gould-Howison 2019 per-level e_n summed over levels 1..ofi_levels"
)


@dataclass(frozen=True, slots=True)
class SignalParams:
    """Every tunable of the signal engine and the feature table (defaults: docs/signals.md).

    Times are in whole seconds unless the name says ``_ms``.
    """

    # feature table / tail window
    grace_ms: int = 500  # a second is emitted once the clock passes its end plus this
    tail_s: int = 60  # history kept in the tail window besides the seconds not yet emitted
    max_lag_s: int = 300  # unemitted seconds kept at most (if the features task falls behind)
    # OFI
    ofi_levels: int = 10  # M for multi-level OFI (capped by the depth levels subscribed)
    # fusion: F = w_ofi*clip(z(OFI_N)) + w_cvd*clip(z(dCVD_N))
    fusion_window_s: int = 10  # N
    z_window_s: int = 600  # W: rolling window of 1-second values for z-scores
    z_min_periods: int = 30  # fewer past values than this: z is null
    z_clip: float = 5.0
    w_ofi: float = 0.5
    w_cvd: float = 0.5
    # events
    spike_z: float = 3.0  # OFI spike: |z(OFI_1s)| >= spike_z
    spike_cooldown_s: int = 30
    divergence_window_s: int = 120  # price/CVD divergence look-back (60-300 s)
    divergence_cooldown_s: int = 60
    large_trade_floor: float = 100_000.0  # notional, quote currency
    large_trade_quantile: float = 0.999  # rolling percentile of trade notional
    large_trade_window_s: int = 60  # <= tail_s: the percentile is taken over the tail window

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"signals.{f.name}: must be a whole number, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value)
            ):
                raise ConfigError(f"signals.{f.name}: must be a finite number, got {value!r}")
        for name in ("tail_s", "max_lag_s", "fusion_window_s", "z_window_s",
                     "spike_cooldown_s", "divergence_window_s", "divergence_cooldown_s",
                     "large_trade_window_s"):
            _at_least(name, getattr(self, name), 1)
        _at_least("grace_ms", self.grace_ms, 0)
        _at_least("z_min_periods", self.z_min_periods, 2)
        if not 1 <= self.ofi_levels <= OFI_LEVELS_MAX:
            raise ConfigError(
                f"signals.ofi_levels: must be between 1 and {OFI_LEVELS_MAX}, got {self.ofi_levels}"
            )
        if self.z_min_periods > self.z_window_s:
            raise ConfigError(
                f"signals.z_min_periods: must be at most z_window_s ({self.z_window_s}), "
                f"got {self.z_min_periods}"
            )
        for name in ("z_clip", "spike_z"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"signals.{name}: must be positive, got {getattr(self, name)}")
        if self.large_trade_floor < 0:
            raise ConfigError(
                f"signals.large_trade_floor: must be zero or more, got {self.large_trade_floor}"
            )
        if not 0 < self.large_trade_quantile < 1:
            raise ConfigError(
                "signals.large_trade_quantile: must be between 0 and 1 (exclusive), "
                f"got {self.large_trade_quantile}"
            )
        if self.large_trade_window_s > self.tail_s:
            raise ConfigError(
                f"signals.large_trade_window_s: must be at most tail_s ({self.tail_s}), "
                f"got {self.large_trade_window_s}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SignalParams:
        """Build from a TOML ``[signals]`` table; keys may use ``-`` or ``_``.

        An unknown key or a bad value raises ``ConfigError`` with one readable line.
        """
        if not isinstance(data, Mapping):
            raise ConfigError("signals: expected a table of settings")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            name = str(key).replace("-", "_")
            if name not in kinds:
                raise ConfigError(f"signals: unknown setting {key!r}{did_you_mean(name, kinds)}")
            values[name] = _coerce(name, raw, integer=kinds[name] == "int")
        return cls(**values)

    def as_dict(self) -> dict[str, int | float]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def metadata(self, kind: str, ofi_source: str) -> dict[str, str]:
        """Parquet key-value metadata for a file of derived ``kind``: every parameter, the OFI
        source and formula, and the package version. Keys are ``trio_harvest.*``; values are
        JSON scalars rendered as text. Made once per (parameters, kind, source): every file
        rotation writes asks for it, so each call returns a copy of the one made before."""
        return dict(_metadata(self, kind, ofi_source))

    def _metadata(self, kind: str, ofi_source: str) -> dict[str, str]:
        if kind not in PREVIEW_KINDS:
            raise ValueError(f"metadata is for derived kinds ({', '.join(PREVIEW_KINDS)}), "
                             f"not {kind!r}")
        out = {
            f"{META_PREFIX}version": package_version(),
            f"{META_PREFIX}kind": kind,
            f"{META_PREFIX}signals.ofi_source": ofi_source,
            f"{META_PREFIX}signals.ofi_formula": OFI_FORMULA,
        }
        for name, value in self.as_dict().items():
            out[f"{META_PREFIX}signals.{name}"] = json.dumps(value)
        return out


@functools.lru_cache(maxsize=64)
def _metadata(params: SignalParams, kind: str, ofi_source: str) -> dict[str, str]:
    return params._metadata(kind, ofi_source)


def ofi_source_label(*, book_ticker: bool, depth_levels: int, ofi_levels: int) -> str:
    """Says where OFI comes from, for metadata: event-by-event from quotes, or
    snapshot-to-snapshot from depth."""
    levels = min(depth_levels, ofi_levels)
    l1 = f"{QUOTE_SOURCE}(event-by-event)" if book_ticker else "depth(snapshot-to-snapshot)"
    return f"l1={l1};ml=depth(snapshot-to-snapshot,levels=1..{levels})"


@functools.cache
def package_version() -> str:
    try:
        return _importlib_metadata.version("trio_harvest")
    except _importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"signals.{name}: must be at least {low}, got {value}")


def _coerce(name: str, raw: Any, *, integer: bool) -> int | float:
    word = "whole number" if integer else "number"
    value: Any = raw
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"signals.{name}: {raw!r} is not a {word}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"signals.{name}: {raw!r} is not a {word}")
    if not math.isfinite(value):
        raise ConfigError(f"signals.{name}: {raw!r} is not a finite {word}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"signals.{name}: {raw!r} is not a {word}")
        return int(value)
    return float(value)
