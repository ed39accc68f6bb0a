"""Validation of the operator-experience settings (progress line, summary detail).

Owns the rules for those ``Config`` fields, so that ``config.py`` stays small. Pure; takes the
values, never the ``Config`` (no import circle), raises ``ConfigError`` with one line.
"""

from __future__ import annotations

import math

from ..errors import ConfigError


def check_ops_settings(progress_interval: float) -> None:
    if not (isinstance(progress_interval, int | float) and math.isfinite(progress_interval)
            and progress_interval >= 0):
        raise ConfigError(f"progress_interval: must be a number of seconds (0 = off), got "
                          f"{progress_interval!r}")
