"""Errors that cross module boundaries. ``ConfigError`` is a user mistake: the command line shows
its one-line message on stderr and exits with code 2, never a traceback."""


class ConfigError(ValueError):
    """A user mistake in configuration or input: one readable line, exit code 2."""
