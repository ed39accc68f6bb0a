"""Where the dataset lives: a local path or ``s3://bucket/prefix``, and what must stay local.

Owns the parsing of a data location and the S3 connection options derived from the settings and
the standard AWS environment variables. Pure: no I/O, no client is built here (that is
``backends.py``), and no setting is validated anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

S3_SCHEME = "s3://"
# A local folder per bucket/prefix, relative to the working directory like the default ./data:
# the dead letter, the journal and the shard locks of an s3:// data_dir live there.
DEFAULT_LOCAL_ROOT = Path("trio_harvest-local")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing slash; "" for the bucket's root

    @property
    def url(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{S3_SCHEME}{self.bucket}"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel


def as_s3_url(raw: object) -> str | None:
    """``s3://bucket/prefix`` if ``raw`` names one, else None. A ``Path`` built from such a URL
    has lost one slash (``s3:/bucket/prefix``); it is recognised and repaired, so a data_dir
    coerced to a path by the config layers still means the bucket."""
    text = str(raw)
    if text.startswith(S3_SCHEME):
        return text
    if isinstance(raw, Path) and text.startswith("s3:/"):
        return S3_SCHEME + text[len("s3:/"):]
    return None


def parse_s3(url: str, what: str = "data_dir") -> S3Location:
    """``S3Location`` of ``s3://bucket[/prefix]``, or ``ConfigError`` with one line."""
    if not url.startswith(S3_SCHEME):
        raise ConfigError(f"{what}: {url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url[len(S3_SCHEME):].partition("/")
    if not _BUCKET_RE.match(bucket):
        raise ConfigError(f"{what}: {bucket!r} in {url!r} is not a valid bucket name "
                          "(3-63 characters: lowercase letters, digits, dots, hyphens)")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"{what}: {url!r} has an empty, '.' or '..' path segment")
    return S3Location(bucket, prefix)


def default_local_dir(loc: S3Location) -> Path:
    """Local disk for what never goes to the bucket (dead letter, journal, shard locks)."""
    return DEFAULT_LOCAL_ROOT / loc.bucket / loc.prefix if loc.prefix else DEFAULT_LOCAL_ROOT / loc.bucket


@dataclass(frozen=True, slots=True)
class S3Options:
    """Connection settings beyond the URL; empty strings defer to the AWS environment
    (``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), which the client reads itself."""

    endpoint: str = ""
    region: str = ""
    allow_http: bool = False

    @classmethod
    def of(cls, config: Any) -> S3Options:
        return cls(config.s3_endpoint, config.s3_region, config.s3_allow_http)

    def store_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.endpoint:
            kw["endpoint"] = self.endpoint
        if self.region:
            kw["region"] = self.region
        return kw

    def polars(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """``storage_options`` for Polars (``scan_parquet(url, storage_options=…)``): the same
        endpoint, region and credentials the harvester writes with."""
        import os

        env = dict(os.environ) if env is None else env
        out: dict[str, str] = {}
        endpoint = self.endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", "")
        if endpoint:
            out["aws_endpoint_url"] = endpoint
        region = self.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", "")
        if region:
            out["aws_region"] = region
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if env.get(var):
                out[var.lower()] = env[var]
        if self.allow_http:
            out["aws_allow_http"] = "true"
        return out


TRUTHY = ("1", "true", "yes", "on", "y")


def aws_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The S3 settings the standard AWS variables give, as obstore and the AWS tools read them:
    ``AWS_ENDPOINT_URL_S3`` (else ``AWS_ENDPOINT_URL``), ``AWS_REGION`` (else
    ``AWS_DEFAULT_REGION``) and ``AWS_ALLOW_HTTP``. Credentials are left to the client."""
    out: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3", "").strip() or env.get("AWS_ENDPOINT_URL", "").strip()
    if endpoint:
        out["s3_endpoint"] = endpoint
    region = env.get("AWS_REGION", "").strip() or env.get("AWS_DEFAULT_REGION", "").strip()
    if region:
        out["s3_region"] = region
    if env.get("AWS_ALLOW_HTTP", "").strip():
        out["s3_allow_http"] = env["AWS_ALLOW_HTTP"].strip().lower() in TRUTHY
    return out


def effective(options: S3Options, env: Mapping[str, str]) -> S3Options:
    """``options`` with what they leave empty taken from the AWS variables (what the client
    would read itself), checked: a plain-http endpoint needs permission (``ConfigError``)."""
    std = aws_env(env)
    out = S3Options(options.endpoint or std.get("s3_endpoint", ""),
                    options.region or std.get("s3_region", ""),
                    options.allow_http or bool(std.get("s3_allow_http", False)))
    validate_endpoint(out.endpoint, out.allow_http)
    return out


def validate_endpoint(endpoint: str, allow_http: bool) -> None:
    if not endpoint:
        return
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"s3_endpoint: {endpoint!r} must start with http:// or https://")
    if endpoint.startswith("http://") and not allow_http:
        raise ConfigError(f"s3_endpoint: {endpoint!r} is plain http; allow it explicitly with "
                          "--s3-allow-http or AWS_ALLOW_HTTP=true (s3_allow_http = true), e.g. "
                          "for a local MinIO")
