"""Derived signals (OFI, CVD, fusion, events) computed from decoded records.

Owns the pure, incremental per-symbol signal state. Must never import trio or do I/O: records
come in by method call and preview rows go out through an injected ``emit`` callable.
"""

from __future__ import annotations

from .engine import SignalEngine
from .params import SignalParams

__all__ = ["SignalEngine", "SignalParams"]
