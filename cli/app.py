"""The ``qualflow`` command line (typer + rich).

Heavy libraries are imported inside the commands that use them, so ``qualflow --help`` answers at once.
Any :class:`~pipeline.errors.QualflowError` prints one line and exits with code 2 (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import importlib
import sys

from cli.common import app, fail
from pipeline.errors import QualflowError

__all__ = ["app", "main"]

# Importing a command module registers its commands; this order is the order of `qualflow --help`.
COMMAND_MODULES = (
    "project_commands",
    "suggest_commands",
    "analysis_commands",
    "run_commands",
    "exchange_commands",
    "db_commands",
    "round_commands",
)
for _name in COMMAND_MODULES:
    importlib.import_module(f"cli.{_name}")


#: The exit status of a Unix tool whose reader went away (killed by SIGPIPE: 128 + 13).
CLOSED_PIPE_STATUS = 141


def stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (``| head`` read enough)."""
    import select

    if not hasattr(select, "poll"):  # Windows: no poll on pipes
        return False
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno() if sys.__stdout__ else 1, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def stop_quietly_on_closed_pipe() -> None:
    """Output to a closed pipe (``qualflow evaluate | head``): nothing on stderr and the status of a
    Unix tool stopped by SIGPIPE (141), not click's and rich's exit 1. Standard output is pointed at
    /dev/null so that Python's flush at exit finds nothing to complain about."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    os.close(devnull)
    sys.exit(CLOSED_PIPE_STATUS)


def main() -> None:
    """Console-script entry point: telemetry off, one-line errors with exit code 2, quiet on a closed
    pipe (exit code 141)."""
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    debug = "--debug" in sys.argv
    try:
        app(prog_name="qualflow")
    except SystemExit as exc:
        # click turns a write to a closed pipe (EPIPE) into a silent exit 1: say it like Unix tools do
        if exc.code == 1 and stdout_reader_gone():
            stop_quietly_on_closed_pipe()
        raise
    except BrokenPipeError:
        if debug or not stdout_reader_gone():
            raise
        stop_quietly_on_closed_pipe()
    except QualflowError as exc:
        if debug:
            raise
        fail(str(exc))
    except OSError as exc:  # a file or folder that cannot be read or written
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        fail(f"{where}{exc.strerror or exc}; check the path and its permissions")
    except ImportError as exc:
        if debug:
            raise
        fail(f"{exc}; install the missing package (e.g. `pip install psycopg[binary]` for PostgreSQL)")
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if debug or not isinstance(exc, SQLAlchemyError):
            raise
        fail(
            f"database error: {str(exc).splitlines()[0]}; check database_url in qualflow.toml (--debug for details)"
        )


if __name__ == "__main__":
    main()
