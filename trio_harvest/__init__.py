"""trio_harvest: a market-data harvester for crypto exchanges, on trio.

Websocket streams are decoded into rows, buffered in bounded lanes and written as Hive-partitioned
Parquet. See ARCHITECTURE.md in the shared folder and the README for the contracts.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trio_harvest")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
