"""Hot-path functions compiled once from generated source, with their loops written out.

Owns one helper: compile a small function whose source is generated for one size (a book's
depth), as ``collections.namedtuple`` and ``dataclasses`` do for their methods. Used where a
per-message loop over a short, fixed-size sequence costs more in iteration than in work. The
source is built from integers only (never from input data). Pure: no I/O, no state.
"""

from __future__ import annotations

from typing import Any


def compiled(name: str, lines: list[str], scope: dict[str, Any]) -> Any:
    """The function ``name`` defined by the source ``lines``, compiled with the globals
    ``scope`` (the names its body uses)."""
    namespace = dict(scope)
    exec("\n".join(lines), namespace)  # the source is ours: built from sizes, not from data
    return namespace[name]
