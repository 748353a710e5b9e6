"""One small exception hierarchy rooted in :class:`QualflowError`.

The CLI turns any :class:`QualflowError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class QualflowError(Exception):
    """Base class of every error qualflow reports to a user (exit code 2).

    Its text is always one line: a message that quotes a multi-line value from the input (a YAML
    parser's report, a CSV cell with a line break) has its lines joined with `` | ``.

    >>> str(InputError("a.yaml: not valid YAML (bad character\\n  in <unicode string>, position 3)"))
    'a.yaml: not valid YAML (bad character | in <unicode string>, position 3)'
    """

    def __str__(self) -> str:
        text = super().__str__()
        if "\n" not in text and "\r" not in text:
            return text
        return " | ".join(part.strip() for part in text.splitlines() if part.strip())


class InputError(QualflowError):
    """Bad user input: a file, a line or a value that cannot be used.

    The message names the file (and the line or value) and says how to fix it.
    """


class ConfigError(QualflowError):
    """A project or configuration problem (missing project, bad ``qualflow.toml``)."""


class NotFoundError(QualflowError):
    """A named thing (source, code, coder, model) does not exist."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``.

    Closest: the best :func:`difflib.get_close_matches` ignoring case, else the first choice that
    starts with ``value`` (or that ``value`` starts with).

    >>> did_you_mean("trust", ["fear", "trust-building"])
    " (did you mean 'trust-building'?)"
    >>> did_you_mean("Fera", ["fear"])
    " (did you mean 'fear'?)"
    >>> did_you_mean("zzz", ["fear"])
    ''
    """
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    low = value.strip().lower()
    close = difflib.get_close_matches(low, list(by_lower), n=1, cutoff=0.6)
    if not close and low:
        close = [c for c in by_lower if c.startswith(low) or low.startswith(c)][:1]
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""
