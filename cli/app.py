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


def main() -> None:
    """Console-script entry point: telemetry off, one-line errors with exit code 2."""
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    debug = "--debug" in sys.argv
    try:
        app(prog_name="qualflow")
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
