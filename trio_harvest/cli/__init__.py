"""The command line: ``python -m trio_harvest`` (run, sim, recover, inspect)."""

from .commands import main

__all__ = ["main"]
