"""Each symbol's load weight for the shard assignment, from the venue's 24 h ticker.

Owns the load model and its quantization, the weights from the venue's 24 h trade counts (the
venue's ``ticker_request``, read by its ``trade_counts``) and the snapshot format (the file a
supervisor hands its workers; snapshot.py shares one per day across hosts). Pure apart from
``read_snapshot`` / ``write_snapshot`` (a small local JSON file); the HTTP fetch is injected
(``fetch_weights`` takes a ``get``). Never decides owners: shards.py does, from these numbers.

The load model: a symbol costs a fixed part (its book stream arrives every 100 ms whatever the
activity: 864,000 messages a day) plus a part that grows with activity (trades, and the quote
updates that come with them); the 24 h trade ``count`` measures the latter. The weight is that
sum quantized to half-octave classes (a step of about 41 %), an integer from 16 up, so a
snapshot only changes where a symbol's activity really moved.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .. import venues
from ..venues.base import Venue

log = logging.getLogger("trio_harvest.shards")

FIXED_PER_DAY = 864_000  # book messages a day at 100 ms, whatever the activity
UNIT = 16  # the weight of a symbol with no activity (and of one the snapshot lacks)
MAX_CLASS = 40  # 2**20 times the floor: far beyond any real symbol


def quantize(count: int) -> int:
    """The weight of a symbol that traded ``count`` times in 24 h: ``UNIT * 2**(k/2)`` rounded,
    ``k`` the nearest half-octave of (fixed + count) / fixed."""
    load = (FIXED_PER_DAY + max(count, 0)) / FIXED_PER_DAY
    k = min(MAX_CLASS, round(2 * math.log2(load)))
    return _CLASSES[k]


_CLASSES = tuple(round(UNIT * 2 ** (k / 2)) for k in range(MAX_CLASS + 1))


def weights_from_ticker(body: bytes | str, symbols: Iterable[str] | None = None,
                        venue: Venue | None = None) -> dict[str, int]:
    """Weights from the venue's 24 h ticker answer, for ``symbols`` only when given.
    ``ValueError`` on anything else."""
    counts = (venue or venues.default()).trade_counts(body)
    wanted = None if symbols is None else set(symbols)
    return {s: quantize(n) for s, n in counts.items() if wanted is None or s in wanted}


def fetch_weights(get: Callable[[str], bytes], rest_url: str,
                  symbols: Iterable[str] | None = None,
                  venue: Venue | None = None) -> dict[str, int] | None:
    """The venue's weights via ``get(url) -> body``; ``None`` (and one log line) if the fetch or
    the answer fails: the caller then falls back to the unweighted assignment."""
    venue = venue or venues.default()
    url = rest_url.rstrip("/") + venue.ticker_request().path
    try:
        return weights_from_ticker(get(url), symbols, venue)
    except Exception as exc:  # any failure of the injected fetch means: no weights
        log.warning("shard weights: %s failed (%s: %s); assigning symbols unweighted "
                    "(rendezvous hashing)", url, type(exc).__name__, exc)
        return None


def encode(weights: Mapping[str, int]) -> bytes:
    """A snapshot's bytes: ``{"SYMBOL": weight, ...}``, sorted, so equal weights give equal bytes."""
    return json.dumps(dict(sorted(weights.items())), separators=(",", ":")).encode()


def decode(body: bytes | str) -> dict[str, int]:
    """A snapshot: positive integer weights by symbol. ``ValueError`` on anything else."""
    doc = json.loads(body)
    if not isinstance(doc, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
            for k, v in doc.items()):
        raise ValueError('expected {"SYMBOL": positive integer, ...}')
    return doc


def write_snapshot(path: Path, weights: Mapping[str, int]) -> None:
    """``weights`` at ``path``, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encode(weights))
    os.replace(tmp, path)


def read_snapshot(path: Path) -> dict[str, int]:
    """A snapshot file; ``ValueError``/``OSError`` if it is not one."""
    try:
        return decode(path.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
