"""Raw setting values (a TOML value, an environment string, a flag) into typed ``Config``
fields, and the ``watermarks`` table.

Owns the coercion rules and their one-line errors (``ConfigError``, never a bare ``ValueError``).
Pure: no I/O, and no knowledge of which layer a value came from beyond the ``where`` prefix the
caller gives.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .kinds import ALL_KINDS


def coerce(hints: Mapping[str, Any], name: str, raw: Any) -> Any:
    """``raw`` as the type of field ``name`` (``hints``: the fields' type hints)."""
    hint = hints[name]
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    if optional and (raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none"))):
        return None
    try:
        if hint is bool:
            return to_bool(raw)
        if hint is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if hint is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if hint is str:
            if not isinstance(raw, str):
                raise ValueError
            return raw.upper() if name == "log_level" else raw
        if hint is Path:
            if not isinstance(raw, str | Path) or not str(raw):
                raise ValueError
            return Path(raw).expanduser()
        if typing.get_origin(hint) is tuple:  # symbols
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(s).strip().upper() for s in items if str(s).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"{raw!r} is not a valid {_type_word(hint)}") from None
    raise ConfigError("cannot be set this way")


def coerce_from(hints: Mapping[str, Any], where: str, name: str, raw: Any) -> Any:
    """``coerce`` with the layer's location in front of any error. ``where`` names the setting
    as the user wrote it ("config file h.toml: rotate_sec: ", "environment TRIO_HARVEST_X: ",
    "--rotate-sec: "), so the message reads "--data-dir: '' is not a valid path"."""
    try:
        return coerce(hints, name, raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def _type_word(hint: Any) -> str:
    return {bool: "true/false", int: "whole number", float: "number", str: "string",
            Path: "path"}.get(hint, "value")


def to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def parse_watermarks(raw: Any, where: str) -> dict[str, tuple[int, int]]:
    """``{kind = high}`` or ``{kind = {high = H, emergency = E}}``; emergency defaults to 2x high."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}watermarks: expected a table of kind = high")
    out: dict[str, tuple[int, int]] = {}
    for kind, value in raw.items():
        if kind not in ALL_KINDS:
            raise ConfigError(f"{where}watermarks: unknown kind {kind!r} (known: {', '.join(ALL_KINDS)})")
        if isinstance(value, Mapping):
            unknown = set(value) - {"high", "emergency"}
            if unknown or "high" not in value:
                raise ConfigError(f"{where}watermarks.{kind}: expected keys high and emergency")
            high = value["high"]
            emergency = value.get("emergency", 2 * high if isinstance(high, int) else None)
        else:
            high, emergency = value, (2 * value if isinstance(value, int) else None)
        if not (isinstance(high, int) and isinstance(emergency, int)) or isinstance(high, bool):
            raise ConfigError(f"{where}watermarks.{kind}: watermarks are whole numbers of records")
        out[kind] = (high, emergency)
    return out
