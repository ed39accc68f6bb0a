"""``python -m trio_harvest``: hands over to the command line.

A Ctrl-C that lands while the command line is still being imported (before ``main`` can catch
it) ends with the same one line as one that lands later: never a traceback; one that lands
while the interpreter shuts down is ignored.
"""

import signal
import sys

INTERRUPTED = 130


def _main() -> int:
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:
        print("trio_harvest: interrupted", file=sys.stderr)
        code = INTERRUPTED
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is over: a late Ctrl-C changes nothing
    return code


if __name__ == "__main__":
    sys.exit(_main())
