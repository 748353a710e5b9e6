"""Suggesters: models that propose codebook codes for segments.

Every suggester follows scikit-learn's estimator contract (see :mod:`models.base`). Pick one by name::

    make_suggester("blend", codes=["a", "b"], code_embeddings=E)

Importing this package imports numpy only; scikit-learn is imported inside ``fit``.
"""

from __future__ import annotations

from typing import Any

from models.base import BaseSuggester, previous_rows, top_k_above_threshold
from models.blend import BlendSuggester
from models.linear import LinearSuggester
from models.neighbors import NeighborsSuggester
from models.prototype import PrototypeSuggester, embed_prototypes, prototype_inputs
from pipeline.domain import Codebook
from pipeline.embed.base import Embedder
from pipeline.errors import InputError

SUGGESTERS: dict[str, type[BaseSuggester]] = {
    "blend": BlendSuggester,
    "linear": LinearSuggester,
    "neighbors": NeighborsSuggester,
    "prototype": PrototypeSuggester,
}
DEFAULT_SUGGESTER = "blend"


def make_suggester(
    name: str, *, codebook: Codebook | None = None, embedder: Embedder | None = None, **params: Any
) -> BaseSuggester:
    """A new, unfitted suggester of the registered kind ``name``.

    With a ``codebook``, its codable codes are the suggester's ``codes``, and a suggester that reads
    the codes' definitions (``uses_code_embeddings``) gets their prototype vectors from ``embedder``.
    ``params`` override both.

    >>> make_suggester("lnear", codes=["a"])
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: Unknown suggester 'lnear'; choose one of ['blend', 'linear', 'neighbors', 'prototype']
    """
    if name not in SUGGESTERS:
        raise InputError(f"Unknown suggester {name!r}; choose one of {sorted(SUGGESTERS)}")
    cls = SUGGESTERS[name]
    if codebook is not None:
        codable = Codebook(codes=[c for c in codebook.codes if c.is_codable], name=codebook.name)
        params.setdefault("codes", [c.name for c in codable.codes])
        if cls.uses_code_embeddings and "code_embeddings" not in params:
            if embedder is None:
                raise InputError(f"the {name!r} suggester reads the codes' definitions: it needs an embedder")
            params["code_embeddings"] = embed_prototypes(prototype_inputs(codable), embedder)
    return cls(**params)


__all__ = [
    "DEFAULT_SUGGESTER",
    "SUGGESTERS",
    "BaseSuggester",
    "BlendSuggester",
    "LinearSuggester",
    "NeighborsSuggester",
    "PrototypeSuggester",
    "make_suggester",
    "previous_rows",
    "prototype_inputs",
    "top_k_above_threshold",
]
