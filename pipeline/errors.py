"""One small exception hierarchy rooted in :class:`QualflowError`.

The CLI turns any :class:`QualflowError` into one line on stderr and exit code 2.
"""

from __future__ import annotations


class QualflowError(Exception):
    """Base class of every error qualflow reports to a user (exit code 2)."""


class InputError(QualflowError):
    """Bad user input: a file, a line or a value that cannot be used.

    The message names the file (and the line or value) and says how to fix it.
    """


class ConfigError(QualflowError):
    """A project or configuration problem (missing project, bad ``qualflow.toml``)."""


class NotFoundError(QualflowError):
    """A named thing (source, code, coder, model) does not exist."""
