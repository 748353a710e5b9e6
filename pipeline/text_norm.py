"""Tiny helpers for hashing-style tokenisation (the full normalisation lives in :mod:`pipeline.text`)."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)


def normalize_for_hash(text: str) -> str:
    """Lower-case, NFC, punctuation to spaces: the word stream the hashing embedder sees.

    >>> normalize_for_hash("Budget, SHORTAGE!")
    'budget  shortage '
    """
    return _PUNCT.sub(" ", unicodedata.normalize("NFC", text).lower())
