"""Small wording helpers for messages people read: "did you mean" suggestions and plurals.

Owns nothing but text: pure, no I/O. Never decides whether something is an error; it only words
what the caller already decided.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str], *, prefix: str = "") -> str:
    """`` (did you mean 'rotate_sec'?)`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {prefix + close[0]!r}?)" if close else ""


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,465 files`` (counts are whole numbers, with separators)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
