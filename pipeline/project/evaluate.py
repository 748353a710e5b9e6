"""`qualflow evaluate`: how well a suggester agrees with the project's coders, by grouped cross-validation.

Only sources with at least one human coding take part; folds never split a source (interview), so the
figures say how the suggester does on an interview it has not seen. The decisions scored are the review
queue's: each fold's model suggests for its held-out sources with ``suggest_from_proba(P, top_k,
groups=<sources>)``, as :func:`pipeline.project.suggest.rank_codes` does (the evidence suggester's
per-source gate and category rule included).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from pipeline.errors import InputError
from pipeline.labels import Suggestions, label_matrix
from pipeline.project.core import Project
from pipeline.project.corpus import embed_context, embed_texts, load_corpus, window_vectors
from pipeline.project.embedding import project_embedder
from pipeline.project.suggest import build_suggester
from pipeline.store.queries import hand_coded_sources
from pipeline.store.schema import CoderRow, CodingRow


def out_of_fold(
    make: Callable[[], Any],
    X: npt.NDArray[np.float32],
    Y: npt.NDArray[np.int8],
    groups: Sequence[str],
    k: int,
    folds: int,
    side: dict[str, Any],
    *,
    codes: Sequence[str],
    exclusive: bool,
) -> tuple[npt.NDArray[np.float64], Suggestions, dict[str, Any]]:
    """The queue's decisions out of fold (:func:`~pipeline.evaluate.grouped_cv_suggestions`, ``folds``
    folds grouped by source, ``side`` the row-aligned side information) and their metrics
    (:func:`~pipeline.evaluate.evaluate_predictions`): what `qualflow evaluate` reports and what `train`
    chooses the ``auto`` suggester by. Returns ``(P, picks, metrics)``."""
    from pipeline.evaluate import evaluate_predictions, grouped_cv_suggestions

    P, picks = grouped_cv_suggestions(make, X, Y, groups, k, n_splits=folds, **side)
    return P, picks, evaluate_predictions(P, picks, Y, k=k, codes=list(codes), exclusive=exclusive)


def evaluate_project(
    project: Project,
    *,
    suggester: str | None = None,
    folds: int = 5,
    embedder: Any = None,
) -> dict[str, Any]:
    """Out-of-fold metrics of ``suggester`` (micro/macro F1, hit@k, coverage, calibration, κ per coder)."""
    from pipeline.evaluate import evaluate_predictions, operating_points

    name = suggester or project.config.suggester.name
    emb = embedder or project_embedder(project)
    with project.store.transaction() as session:
        corpus = load_corpus(session, project)
        # hand-coded sources whole, sources known only through the queue where someone decided
        keep = corpus.labelled_rows()
        n_groups = len({corpus.source_ids[i] for i in keep})
        if folds < 2:
            raise InputError(f"--folds {folds}: cross-validation needs at least 2 folds")
        if n_groups < 2:
            raise InputError(
                f"evaluation needs human codings on at least 2 sources (found {n_groups}); "
                "import or make more codings first"
            )
        spans = [corpus.spans[i] for i in keep]
        coder_mats: dict[str, np.ndarray] = {}
        rows = session.execute(
            select(CodingRow.source_id, CodingRow.start, CodingRow.end, CodingRow.code, CoderRow.name)
            .join(CoderRow, CodingRow.coder_id == CoderRow.id)
            # the coders' own codings: accepted suggestions would compare the model with itself
            .where(CodingRow.active, CoderRow.kind == "human", CodingRow.origin != "model-accepted")
        ).all()
        by_hand = hand_coded_sources(session, codes=corpus.codes)
        for coder in sorted({r[4] for r in rows}):
            mine = [(r[0], r[1], r[2], r[3]) for r in rows if r[4] == coder]
            # a coder is compared only on the sources they coded by hand, not where they recoded one
            # suggestion
            covered = {corpus.source_ids[i] for i in keep if corpus.source_names[i] in by_hand.get(coder, ())}
            M = label_matrix(spans, mine, [], corpus.codes)
            # a coder is compared only on the sources they coded
            mask = np.array([s[0] in covered for s in spans])
            coder_mats[coder] = np.where(mask[:, None], M, -2).astype(np.int8)
    texts = [corpus.texts[i] for i in keep]
    groups = [corpus.source_names[i] for i in keep]
    Y = corpus.Y[keep]
    X = embed_texts(emb, texts)

    def make() -> Any:
        return build_suggester(name, corpus.codebook, emb, params=project.config.suggester.params)

    from models import resolve_suggester
    from models.base import side_inputs

    probe = make()
    prev_texts = [corpus.prev_texts[i] for i in keep] if corpus.prev_texts else None
    X_prev = embed_context(emb, prev_texts or [""] * len(keep)) if probe.wants_context() else None
    prev2_texts = [corpus.prev2_texts[i] for i in keep] if corpus.prev2_texts else None
    positions = [corpus.positions[i] for i in keep] if corpus.positions else []
    X_window = window_vectors(X, positions) if probe.wants_window() else None
    exclusive = bool(probe.exclusive)  # one code per segment: scored on the argmax
    side = side_inputs(
        probe, texts=texts, X_prev=X_prev, prev_texts=prev_texts, prev2_texts=prev2_texts, X_window=X_window
    )
    k = project.config.suggester.top_k
    P, picks, metrics = out_of_fold(
        make, X, Y, groups, k, min(folds, n_groups), side, codes=corpus.codes, exclusive=exclusive
    )
    per_coder = {}
    for coder, M in coder_mats.items():
        rows_ok = (M != -2).all(axis=1)
        if rows_ok.any():
            m = evaluate_predictions(
                P[rows_ok],
                [picks[i] for i in np.flatnonzero(rows_ok)],
                np.clip(Y[rows_ok], -1, 1),
                k=k,
                coder_matrices={coder: M[rows_ok]},
                codes=corpus.codes,
                exclusive=exclusive,
            )
            per_coder[coder] = m.get(f"kappa_vs_{coder}")
    for coder, kappa in per_coder.items():
        metrics[f"kappa_vs_{coder}"] = kappa
    # the queue's operating point, then what another common threshold would buy, out of fold
    metrics["operating_points"] = operating_points(P, Y, picks=picks)
    metrics["suggester"] = name
    # "auto" is evaluated as the suggester it stands for (the rule's choice): JSON readers get both names
    metrics["resolved_suggester"] = resolve_suggester(name, project.config.suggester.params)
    metrics["n_sources"] = n_groups
    return metrics
