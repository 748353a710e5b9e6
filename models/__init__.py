"""Suggesters: models that propose codebook codes for segments.

Every suggester follows scikit-learn's estimator contract (see :mod:`models.base`). Pick one by name::

    make_suggester("evidence", codes=["a", "b"], code_embeddings=E)

``"auto"`` (the ``[suggester] name`` default) is :func:`default_suggester`: ``evidence`` for a
multi-label codebook, ``linear`` for an exclusive one.

Importing this package imports numpy only; scikit-learn is imported inside ``fit``.
"""

from __future__ import annotations

from typing import Any

from models.base import BaseSuggester, previous_rows, top_k_above_threshold
from models.blend import BlendSuggester
from models.evidence import EvidenceSuggester
from models.linear import LinearSuggester
from models.neighbors import NeighborsSuggester
from models.prototype import PrototypeSuggester, embed_prototypes, prototype_inputs
from pipeline.domain import Codebook
from pipeline.embed.base import Embedder
from pipeline.errors import InputError

SUGGESTERS: dict[str, type[BaseSuggester]] = {
    "blend": BlendSuggester,
    "evidence": EvidenceSuggester,
    "linear": LinearSuggester,
    "neighbors": NeighborsSuggester,
    "prototype": PrototypeSuggester,
}
DEFAULT_SUGGESTER = "evidence"
"""The default for a multi-label codebook (what ``qualflow models list`` marks)."""
EXCLUSIVE_DEFAULT_SUGGESTER = "linear"
"""The default for a mutually exclusive codebook (``exclusive = true``): on AnnoMI evidence fusion
scores below the linear classifier (κ 0.66 vs 0.69 therapist, 0.26 vs 0.34 client)."""
EXCLUSIVE_DEFAULT_PARAMS: dict[str, Any] = {
    "tfidf": True,
    "context_weight": 1.0,
    "context_tfidf_weight": 1.0,
    "context2_tfidf_weight": 1.0,
    "char_tfidf_weight": 0.5,
    "class_weight": "balanced",
    "C": 0.5,
    "sequence": True,
}
"""The linear suggester's parameters for an exclusive codebook, unless ``[suggester] params`` say
otherwise: embedding + previous turn's embedding + word and character TF-IDF of the segment + word
TF-IDF of the previous turn and of the turn before it, balanced classes, C 0.5 (the best
mean κ of the configurations tried by 5-fold CV grouped by transcript on AnnoMI's 126 training
transcripts; docs/benchmarks.md, "Suggesters on AnnoMI"); ``sequence``: ``fit`` decides on its own
out-of-fold κ whether to decode the codes along each source (:mod:`models.sequence`)."""
AUTO = "auto"
OPERATING_POINT_PARAMS = ("min_coverage", "target_precision", "source_floor")
"""``[suggester]`` settings passed to the suggesters that have them and dropped for the others."""


def default_suggester(exclusive: bool = False) -> str:
    """The one place the default is chosen: ``evidence`` (multi-label) or ``linear`` (exclusive).

    >>> default_suggester(), default_suggester(exclusive=True)
    ('evidence', 'linear')
    """
    return EXCLUSIVE_DEFAULT_SUGGESTER if exclusive else DEFAULT_SUGGESTER


def auto_candidates(exclusive: bool = False) -> tuple[str, ...]:
    """What ``train`` chooses among for ``[suggester] name = "auto"`` (``select = "cv"``): the rule's
    choice (:func:`default_suggester`) first, then the other product suggester for that codebook shape
    (both take ``exclusive``).

    >>> auto_candidates(), auto_candidates(exclusive=True)
    (('evidence', 'linear'), ('linear', 'evidence'))
    """
    first = default_suggester(exclusive)
    return (first, *(n for n in (DEFAULT_SUGGESTER, EXCLUSIVE_DEFAULT_SUGGESTER) if n != first))


def default_params(name: str, exclusive: bool = False) -> dict[str, Any]:
    """The parameters suggester ``name`` gets by default (explicit params override them): for the
    linear suggester on an exclusive codebook :data:`EXCLUSIVE_DEFAULT_PARAMS`; on a multi-label one no
    context (``context_weight=0``: the previous turn is not measured there yet; set it in
    ``[suggester] params`` to try); none for the others.

    >>> default_params("linear", exclusive=True)["context_tfidf_weight"], default_params("linear")
    (1.0, {'context_weight': 0.0})
    """
    if name == EXCLUSIVE_DEFAULT_SUGGESTER:
        return dict(EXCLUSIVE_DEFAULT_PARAMS) if exclusive else {"context_weight": 0.0}
    return {}


def resolve_suggester(name: str | None, params: dict[str, Any] | None = None) -> str:
    """``name``, or for ``None`` / ``"auto"`` the default for the codebook's kind (``params["exclusive"]``).

    >>> resolve_suggester("auto", {"exclusive": True}), resolve_suggester(None), resolve_suggester("blend")
    ('linear', 'evidence', 'blend')
    """
    if name is None or name == AUTO:
        return default_suggester(bool((params or {}).get("exclusive", False)))
    return name


def make_suggester(
    name: str, *, codebook: Codebook | None = None, embedder: Embedder | None = None, **params: Any
) -> BaseSuggester:
    """A new, unfitted suggester of the registered kind ``name`` (``"auto"``: :func:`resolve_suggester`).

    With a ``codebook``, its codable codes are the suggester's ``codes``, a suggester that reads
    the codes' definitions (``uses_code_embeddings``) gets their prototype vectors from ``embedder``
    (a code without a description is described by its parents' names, see :func:`prototype_inputs`),
    and one with a ``parents`` parameter gets the hierarchy (every code of the codebook, codable or not
    -> its parent's name). ``params`` override
    these; :data:`OPERATING_POINT_PARAMS` go only to the suggesters that take them; what ``params``
    leave out comes from :func:`default_params` (the tuned linear model of an exclusive codebook).

    >>> make_suggester("lnear", codes=["a"])
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: Unknown suggester 'lnear'; choose one of ['auto', 'blend', 'evidence', 'linear', 'neighbors', 'prototype']
    """
    name = resolve_suggester(name, params)
    if name not in SUGGESTERS:
        raise InputError(f"Unknown suggester {name!r}; choose one of {sorted([AUTO, *SUGGESTERS])}")
    cls = SUGGESTERS[name]
    params = {**default_params(name, bool(params.get("exclusive", False))), **params}
    accepted = set(cls._get_param_names())
    for key in OPERATING_POINT_PARAMS:
        if key not in accepted:
            params.pop(key, None)
    if codebook is not None:
        codable = Codebook(codes=[c for c in codebook.codes if c.is_codable], name=codebook.name)
        params.setdefault("codes", [c.name for c in codable.codes])
        if cls.uses_code_embeddings and "code_embeddings" not in params:
            if embedder is None:
                raise InputError(f"the {name!r} suggester reads the codes' definitions: it needs an embedder")
            params["code_embeddings"] = embed_prototypes(prototype_inputs(codable, codebook), embedder)
        if "parents" in accepted:
            # every code's parent, uncodable ones too: a category's theme is its own parent's
            params.setdefault("parents", {c.name: c.parent for c in codebook.codes})
    return cls(**params)


__all__ = [
    "AUTO",
    "DEFAULT_SUGGESTER",
    "EXCLUSIVE_DEFAULT_PARAMS",
    "EXCLUSIVE_DEFAULT_SUGGESTER",
    "OPERATING_POINT_PARAMS",
    "SUGGESTERS",
    "BaseSuggester",
    "BlendSuggester",
    "EvidenceSuggester",
    "LinearSuggester",
    "NeighborsSuggester",
    "PrototypeSuggester",
    "auto_candidates",
    "default_params",
    "default_suggester",
    "make_suggester",
    "previous_rows",
    "prototype_inputs",
    "resolve_suggester",
    "top_k_above_threshold",
]
