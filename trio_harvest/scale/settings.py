"""Validation and resolution of the scale-out settings for ``Config``.

Owns: an ``s3://`` data_dir (kept as ``data_url``; ``data_dir`` then names the local folder for
the dead letter, the journal and the locks), the S3 options, ``workers`` and ``shard``. Called
from ``Config.__post_init__``; raises ``ConfigError`` with one line. Pure: no I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..storage.location import as_s3_url, default_local_dir, parse_s3, validate_endpoint
from .shards import parse_shard

if TYPE_CHECKING:
    from ..config import Config

MAX_WORKERS = 64
MIN_LEASE_TTL = 2.0


def resolve(c: Config) -> None:
    url = as_s3_url(c.data_dir) or (c.data_url or None)
    if url is not None:
        loc = parse_s3(url)
        local = c.local_dir if c.local_dir is not None else default_local_dir(loc)
        if as_s3_url(local) is not None:
            raise ConfigError("local_dir: must be a local folder (the dead letter, the journal "
                              "and the locks stay on local disk)")
        object.__setattr__(c, "data_url", loc.url)
        object.__setattr__(c, "data_dir", Path(local))
        validate_endpoint(c.s3_endpoint, c.s3_allow_http)  # only a bucket uses the endpoint
    if c.deadletter_dir is not None and as_s3_url(c.deadletter_dir) is not None:
        raise ConfigError("deadletter_dir: the dead letter stays on local disk; give a local "
                          "folder (an s3:// data_dir keeps it under local_dir by default)")
    if not 1 <= c.workers <= MAX_WORKERS:
        raise ConfigError(f"workers: must be between 1 and {MAX_WORKERS}, got {c.workers}")
    if not c.lease_ttl >= MIN_LEASE_TTL:  # also rejects nan
        raise ConfigError(f"lease_ttl: must be at least {MIN_LEASE_TTL:g} seconds, got "
                          f"{c.lease_ttl:g}")
    if not c.worker_stable_after > 0:  # also rejects nan
        raise ConfigError("worker_stable_after: must be a positive number of seconds, got "
                          f"{c.worker_stable_after}")
    if not c.shard_weights.strip():
        raise ConfigError("shard_weights: give 'venue' (the 24 h ticker), 'off' (unweighted) or "
                          "a snapshot file")
    if c.shard:
        shard = parse_shard(c.shard)
        if c.workers > 1:
            raise ConfigError(f"--workers and --shard are exclusive: --workers {c.workers} runs "
                              "shards 0..N-1 itself; --shard I/N runs one of them")
        object.__setattr__(c, "shard", str(shard))
