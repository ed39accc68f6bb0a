"""``python -m trio_harvest``: hands over to the command line.

A Ctrl-C that lands while the command line is still being imported (before ``main`` can catch
it) ends with the same one line as one that lands later: never a traceback; one that lands
while the interpreter shuts down is ignored. Output piped into a reader that stops early
(``inspect … | head``) ends quietly, as it does for any Unix tool.

When the command has returned, every file it wrote is closed and durable (a run's final flush
and its journal are done before ``main`` returns), so the process ends at once: the logs and
standard streams are flushed, then ``os._exit``. Tearing down a whole-market heap object by
object, which is all a normal interpreter exit would add, took over a second, and a stop must
end within its grace.
"""

import logging
import os
import signal
import sys

INTERRUPTED = 130
BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its reader stopped


def _main() -> int:
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:
        print("trio_harvest: interrupted", file=sys.stderr)
        code = INTERRUPTED
    except BrokenPipeError:  # the reader is gone: nothing more to say, and no flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = BROKEN_PIPE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is over: a late Ctrl-C changes nothing
    return code


def _exit_now(code: int) -> None:
    """Flush what the user may still read (logs, stdout, stderr), then end the process."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a stream already closed
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit_now(_main())
