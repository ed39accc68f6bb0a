"""trio_harvest: a market-data harvester for crypto exchanges, on trio.

Websocket streams are decoded into rows, buffered in bounded lanes and written as Hive-partitioned
Parquet. See ARCHITECTURE.md in the shared folder and the README for the contracts.

Importing the package does nothing else (``__version__`` is looked up when asked for), so
``python -m trio_harvest`` reaches its Ctrl-C handling at once.
"""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    if name != "__version__":
        raise AttributeError(f"module 'trio_harvest' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trio_harvest")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
