"""Keyword / pattern autocoding in the style of NVivo's text search: a baseline, not a model.

A researcher writes, per code, a few regular expressions; a segment whose text matches gets the code.
Nothing is learned from the codings except, in exclusive mode, the fallback code (the most frequent
one) for segments that match no pattern. It needs ``texts=``; it is not in ``models.SUGGESTERS``
(the registered suggesters work on embeddings alone) but follows the same contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.base import BaseSuggester
from pipeline.errors import InputError


class KeywordSuggester(BaseSuggester):
    """Score = 1 when any of a code's patterns matches (case-insensitive), else 0.

    Parameters
    ----------
    codes : list of str
    patterns : mapping of code name to list of regular expressions
        Codes without patterns are never suggested (except as the exclusive fallback).
    exclusive : bool, default False
        One code per segment: the code whose patterns match most often (ties: the earlier code in
        ``codes``); with no match, the most frequent code in the training data (``fallback_``).
    """

    def __init__(
        self,
        codes: Sequence[str],
        patterns: Mapping[str, Sequence[str]] | None = None,
        exclusive: bool = False,
    ) -> None:
        self.codes = codes
        self.patterns = patterns
        self.exclusive = exclusive

    def fit(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike,
        *,
        groups: Any = None,
        texts: Sequence[str] | None = None,
        X_prev: Any = None,
    ) -> KeywordSuggester:
        """Compile the patterns; in exclusive mode remember the most frequent code."""
        Xa, Ya = self._check_fit_input(X, Y, groups=groups, texts=texts, X_prev=X_prev)
        codes = list(self.codes)
        pats = dict(self.patterns or {})
        unknown = sorted(set(pats) - set(codes))
        if unknown:
            raise InputError(f"KeywordSuggester: patterns for unknown codes {unknown}; codes are {codes}")
        try:
            self.compiled_ = [[re.compile(p, re.IGNORECASE) for p in pats.get(c, [])] for c in codes]
        except re.error as exc:
            raise InputError(f"KeywordSuggester: bad regular expression {exc.pattern!r}: {exc}") from exc
        self.fallback_ = int((Ya == 1).sum(axis=0).argmax())
        self.classes_ = np.array(codes)
        self.n_features_in_ = Xa.shape[1]
        self.thresholds_ = np.full(len(codes), 0.5)
        return self

    def predict_proba(
        self, X: npt.ArrayLike, *, texts: Sequence[str] | None = None, X_prev: Any = None
    ) -> npt.NDArray[np.float64]:
        """Match indicators (multi-label) or a one-hot choice (exclusive), shape (n_segments, n_codes)."""
        Xa = self._check_predict_input(X, texts=texts, X_prev=X_prev)
        if texts is None:
            raise InputError("KeywordSuggester needs texts= (one string per segment)")
        counts = np.array(
            [[sum(1 for p in pats if p.search(t)) for pats in self.compiled_] for t in texts],
            dtype=np.float64,
        ).reshape(Xa.shape[0], len(self.compiled_))
        if not self.exclusive:
            return (counts > 0).astype(np.float64)
        best = np.where(counts.max(axis=1) > 0, counts.argmax(axis=1), self.fallback_)
        P = np.zeros_like(counts)
        P[np.arange(len(best)), best] = 1.0
        return P
