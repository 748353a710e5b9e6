"""Deductive suggestions on a project: build and fit a suggester, rank the codebook's codes per segment,
and queue the suggestions for review (one transaction per call); list and export the queue.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pipeline.domain import DECIDED_STATES, Codebook, SuggestionState, sha256_text
from pipeline.errors import InputError
from pipeline.fileio import csv_dict_writer, write_atomic
from pipeline.project.core import Project
from pipeline.project.corpus import (
    Corpus,
    codable_codes,
    embed_context,
    embed_texts,
    load_corpus,
    window_vectors,
)
from pipeline.project.embedding import project_embedder
from pipeline.store.schema import (
    CandidateRow,
    CoderDecisionRow,
    CoderRow,
    DecisionRow,
    ModelVersionRow,
    SegmentRow,
    SourceRow,
    SuggestionRow,
)

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.config import SuggesterConfig
    from pipeline.embed.base import Embedder
    from pipeline.project.finetune import TunedEncoder


def review_priority(
    scores: npt.NDArray[np.floating], thresholds: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """How much a coder's decision on a suggestion helps the model: high near the threshold.

    ``1 - |score - threshold| / max(threshold, 1 - threshold)``, in [0, 1].

    >>> review_priority(np.array([0.5, 0.9, 0.1]), np.array([0.5, 0.5, 0.5])).round(2).tolist()
    [1.0, 0.2, 0.2]
    """
    t = np.asarray(thresholds, dtype=np.float64)
    span = np.maximum(t, 1 - t)
    return np.clip(1 - np.abs(np.asarray(scores, dtype=np.float64) - t) / span, 0.0, 1.0)


def build_suggester(
    name: str,
    codebook: Codebook,
    embedder: Embedder,
    *,
    params: dict[str, Any] | None = None,
) -> BaseSuggester:
    """An unfitted suggester ``name`` for the codable codes of ``codebook``."""
    from models import make_suggester

    if not codable_codes(codebook):
        raise InputError("the codebook has no codable codes; mark some codes `codable: true`")
    return make_suggester(name, codebook=codebook, embedder=embedder, **(params or {}))


def context_of(model: BaseSuggester, corpus: Corpus, embedder: Embedder) -> npt.NDArray[np.float32] | None:
    """``X_prev`` for ``corpus`` (:func:`~pipeline.project.corpus.embed_context`) when ``model``
    reads the previous turn, else ``None`` (nothing is embedded)."""
    if not model.wants_context():
        return None
    return embed_context(embedder, corpus.prev_texts or [""] * len(corpus.texts))


def window_of(
    model: BaseSuggester, corpus: Corpus, X: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32] | None:
    """``X_window`` for ``corpus`` (:func:`~pipeline.project.corpus.window_vectors`, from its segments'
    vectors ``X``) when ``model`` reads the segments' windows, else ``None``."""
    if not model.wants_window():
        return None
    return window_vectors(X, corpus.positions)


def fit_suggester(
    model: BaseSuggester,
    X: npt.NDArray[np.float32],
    corpus: Corpus,
    X_prev: npt.NDArray[np.float32] | None = None,
    X_window: npt.NDArray[np.float32] | None = None,
) -> BaseSuggester:
    """Fit ``model`` on ``corpus`` (vectors ``X``; ``X_prev`` from :func:`context_of`, with the previous
    turns' texts, for a model that reads the context; ``X_window`` from :func:`window_of`)."""
    from models.base import side_inputs

    side = side_inputs(
        model,
        texts=corpus.texts,
        X_prev=X_prev,
        prev_texts=corpus.prev_texts or None,
        prev2_texts=corpus.prev2_texts or None,
        X_window=X_window,
    )
    return model.fit(X, corpus.Y, groups=corpus.groups, **side)


@dataclass
class SuggestReport:
    """What one :func:`suggest` (or one queueing) did. ``suggestions``: rows stored, of which
    ``covered`` (a code humans already gave the segment: kept for agreement, not queued) and
    ``duplicate`` (decided by a coder for another model version) are not in the queue; ``unchanged``:
    nothing was fitted, ``model_label``'s inputs are the same, and ``pending`` of its suggestions
    still await review."""

    model_label: str
    segments: int
    suggestions: int
    skipped_existing: int
    abstained: int
    encoder: TunedEncoder | None = None  # the fine-tuned encoder it suggested with (``fine_tune``)
    covered: int = 0
    duplicate: int = 0
    unchanged: bool = False
    pending: int = 0
    alike: int = 0  # segments silenced: scored all alike in a language no coded segment is in

    @property
    def queued(self) -> int:
        """New suggestions put in the coders' queue (state ``pending``)."""
        return self.suggestions - self.covered - self.duplicate

    def line(self) -> str:
        """One line for the user.

        >>> SuggestReport("local-evidence@1", 396, 1195, 0, 12, covered=718).line()
        'local-evidence@1: 477 queued for review, 718 already coded by a human (state covered); 396 segments, 12 abstained, 0 already queued'
        >>> SuggestReport("local-evidence@1", 396, 0, 0, 0, unchanged=True, pending=477).line()
        'nothing changed since local-evidence@1 (codebook, codings, segments, embedding model, settings, versions); 477 suggestions pending review (--force refits anyway)'
        """
        if self.unchanged:
            return (
                f"nothing changed since {self.model_label} (codebook, codings, segments, embedding model, "
                f"settings, versions); {self.pending} suggestions pending review (--force refits anyway)"
            )
        decided = f", {self.duplicate} already decided by a coder (state duplicate)" if self.duplicate else ""
        alike = (
            f"; {self.alike} of the abstentions in a language no coded segment is in (the model scores "
            "them all alike: code a few of them and suggest again)"
            if self.alike
            else ""
        )
        return (
            f"{self.model_label}: {self.queued} queued for review, {self.covered} already coded by a human "
            f"(state covered){decided}; {self.segments} segments, {self.abstained} abstained, "
            f"{self.skipped_existing} already queued{alike}"
        )


def register_model_version(
    session: Session,
    *,
    name: str,
    suggester: str,
    params: dict[str, Any],
    embedding: str,
    codebook_version_id: int,
    version: str | None = None,
    mlflow_run_id: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersionRow:
    """Record a model version (next integer version for ``name`` unless given); idempotent by (name, version)."""
    if version is None:
        n = session.scalar(
            select(func.count()).select_from(ModelVersionRow).where(ModelVersionRow.name == name)
        )
        version = str((n or 0) + 1)
    row = session.scalar(
        select(ModelVersionRow).where(ModelVersionRow.name == name, ModelVersionRow.version == version)
    )
    if row is None:
        row = ModelVersionRow(
            name=name,
            version=version,
            suggester=suggester,
            params=jsonable(params),
            embedding=embedding,
            codebook_version_id=codebook_version_id,
            mlflow_run_id=mlflow_run_id,
            metrics=jsonable(metrics or {}),
        )
        session.add(row)
        session.flush()
        session.add(CoderRow(name=f"model:{row.label}", kind="model", role="coder")) if session.scalar(
            select(CoderRow).where(CoderRow.name == f"model:{row.label}")
        ) is None else None
        session.flush()
    return row


def jsonable(obj: Any) -> Any:
    """Parameters and metrics as JSON-safe values (arrays summarised, objects by repr)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return f"ndarray{obj.shape}"
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


@dataclass(frozen=True)
class Ranking:
    """A model's scores for a corpus: probabilities, shape (n_segments, n_codes), and per segment its
    top-k picks as (code column, score) pairs, best first (empty: the model abstains)."""

    P: npt.NDArray[np.floating]
    picks: list[list[tuple[int, float]]]
    alike: list[bool] | None = None
    """Per segment, whether it was silenced as scored alike with the rest of its embedding block
    (:func:`rank_codes` ``blocks``); ``None``: no segment was."""

    def subset(self, rows: Sequence[int]) -> Ranking:
        alike = None if self.alike is None else [self.alike[i] for i in rows]
        return Ranking(self.P[list(rows)], [self.picks[i] for i in rows], alike)

    @property
    def n_alike(self) -> int:
        return 0 if self.alike is None else sum(self.alike)


def embedding_blocks(embedder: Any, texts: Sequence[str]) -> list[int] | None:
    """Per text, the block of the vector space its model writes in (0: the project's model; another:
    a language routed to its own model or to the character n-gram fallback), or ``None`` when the
    embedder has one block (:class:`pipeline.embed.languages.LanguageRoutedEmbedder`)."""
    block_index = getattr(embedder, "block_index", None)
    if block_index is None:
        return None
    return [int(block_index(t)) for t in texts]


def rank_codes(
    model: BaseSuggester,
    X: npt.NDArray[np.float32],
    texts: Sequence[str],
    k: int,
    *,
    X_prev: npt.NDArray[np.float32] | None = None,
    prev_texts: Sequence[str] | None = None,
    prev2_texts: Sequence[str] | None = None,
    X_window: npt.NDArray[np.float32] | None = None,
    groups: Sequence[Any] | None = None,
    blocks: Sequence[int] | None = None,
) -> Ranking:
    """Score every segment (rows of ``X``, with their ``texts``; the previous turns' vectors ``X_prev``
    and texts ``prev_texts`` for a model that reads them; the windows' vectors ``X_window`` for one that
    reads those) and pick its top-``k`` codes; ``groups``, the source of each segment (rows of a source
    in reading order), lets a suggester gate per source (the evidence suggester's ``source_share_``)
    and decode codes along each source (the exclusive linear one's ``sequence_``, :mod:`models.sequence`).

    ``blocks`` (:func:`embedding_blocks`): the segments of a language embedded by another model than
    the project's (a block other than 0) that the model scores all alike (to float32 precision) get no
    suggestion: it has learned nothing there (no coded segment in that language), and the same codes
    on every segment would be noise presented as suggestions (:attr:`Ranking.alike`)."""
    from models.base import side_inputs

    if not len(texts):
        return Ranking(np.zeros((0, len(model.classes_))), [])
    side = side_inputs(
        model,
        texts=texts,
        X_prev=X_prev,
        prev_texts=prev_texts,
        prev2_texts=prev2_texts,
        X_window=X_window,
        groups=groups,
    )
    P = model.predict_proba(X, **side)
    if groups is None:
        picks = model.suggest_from_proba(P, k)
    else:
        picks = model.suggest_from_proba(P, k, groups=list(groups))
    alike = None
    if blocks is not None:
        which = np.asarray(blocks)
        for b in np.unique(which[which != 0]):
            rows = np.flatnonzero(which == b)
            Pb = np.asarray(P[rows], dtype=np.float64)
            if len(rows) >= 2 and float(np.ptp(Pb, axis=0).max(initial=0.0)) <= 1e-6:  # float32 noise
                alike = alike or [False] * len(texts)
                for i in rows:
                    picks[i] = []
                    alike[i] = True
    return Ranking(P, picks, alike)


def store_suggestions(
    session: Session,
    *,
    model: BaseSuggester,
    model_row: ModelVersionRow,
    corpus: Corpus,
    X: npt.NDArray[np.float32],
    k: int,
    X_prev: npt.NDArray[np.float32] | None = None,
    X_window: npt.NDArray[np.float32] | None = None,
    merge: bool = True,
    max_passage_segments: int = 5,
    cover: bool = True,
    blocks: Sequence[int] | None = None,
) -> SuggestReport:
    """Suggest top-``k`` codes for every corpus segment and queue them (idempotent per model version;
    ``merge``: passages, ``cover``: see :func:`queue_suggestions`; ``blocks``: :func:`rank_codes`)."""
    ranking = rank_codes(
        model,
        X,
        corpus.texts,
        k,
        X_prev=X_prev,
        prev_texts=corpus.prev_texts or None,
        prev2_texts=corpus.prev2_texts or None,
        X_window=X_window,
        groups=corpus.groups,
        blocks=blocks,
    )
    return queue_suggestions(
        session,
        model=model,
        model_row=model_row,
        corpus=corpus,
        ranking=ranking,
        merge=merge,
        max_passage_segments=max_passage_segments,
        cover=cover,
    )


def queue_suggestions(
    session: Session,
    *,
    model: BaseSuggester,
    model_row: ModelVersionRow,
    corpus: Corpus,
    ranking: Ranking,
    merge: bool = True,
    max_passage_segments: int = 5,
    cover: bool = True,
) -> SuggestReport:
    """Queue ``ranking`` (of ``model`` on ``corpus``) as suggestions; idempotent per model version.

    ``cover``: a (segment, code) a human already coded is stored ``covered``, out of the queue. Off under
    ``[review] policy = "independent"``, where one coder's coding must not hide the suggestion from the
    others, who decide for themselves (the coder who coded it sees it too; accepting it makes no second
    coding).

    With ``merge`` (``[suggester] merge_passages``), adjacent segments of one turn whose rank-1 code
    agrees become one suggestion on the passage (:func:`pipeline.passages.merge_passages`, at most
    ``max_passage_segments`` segments): its ``segment_id`` is the passage's first segment, its
    ``start``/``end`` the passage's (first segment's start, last segment's end), its score the members'
    maximum. Only segments whose rank-1 code would be queued for review are merged: a segment humans
    already coded with that code, or where this model version or a coder's decision already covers it,
    keeps a per-segment suggestion as before.

    A (segment, code) already suggested by this model version is skipped; one a human coded is stored
    as ``covered``; one a coder decided for another model version is ``duplicate``; another version's
    pending one is ``superseded`` by the new one. "Already suggested" and "decided" count every segment a
    stored suggestion spans (an older passage covers each of its segments); a new passage supersedes
    every other version's pending suggestion of its code on any of its segments. The run is the newest
    opinion on every segment of ``corpus``: another version's pending suggestions of other codes there
    are superseded as well (stale, and on an exclusive codebook contradicting the new one), unless a
    coder already decided them under ``[review] policy = "independent"``.
    """
    from pipeline.passages import merge_passages

    classes = list(model.classes_)
    # only the codable codes of the current codebook are queued: a model trained on an older codebook
    # version (the process flow's champion) may still rank codes the codebook has dropped
    allowed = set(corpus.codes)
    ranked = [[(ci, sc) for ci, sc in row if classes[ci] in allowed] for row in ranking.picks]
    src_ids = sorted({sp[0] for sp in corpus.spans})
    members = corpus.rows_spanned
    existing: set[tuple[int, str]] = set()
    for seg_id, src_id, start, end, code in session.execute(
        select(
            SuggestionRow.segment_id,
            SuggestionRow.source_id,
            SuggestionRow.start,
            SuggestionRow.end,
            SuggestionRow.code,
        ).where(
            SuggestionRow.source_id.in_(src_ids),
            SuggestionRow.model_version_id == model_row.id,
            SuggestionRow.kind == "deductive",
        )
    ):
        existing.update((i, code) for i in members(seg_id, src_id, start, end))
    # the same (segment, code) from another model version: a newer pending suggestion replaces an older
    # pending one; one a coder already decided is recorded for this model but not queued again
    other_pending: dict[tuple[int, str], list[SuggestionRow]] = {}
    decided: set[tuple[int, str]] = set()
    for row in session.scalars(
        select(SuggestionRow).where(
            SuggestionRow.source_id.in_(src_ids),
            SuggestionRow.kind == "deductive",
            SuggestionRow.model_version_id != model_row.id,
            SuggestionRow.state.in_((SuggestionState.PENDING, *DECIDED_STATES)),
        )
    ):
        for i in members(row.segment_id, row.source_id, row.start, row.end):
            if row.state == SuggestionState.PENDING:
                other_pending.setdefault((i, row.code), []).append(row)
            else:
                decided.add((i, row.code))
    # under `[review] policy = "independent"` a suggestion coders answered stays pending (each coder's
    # own decision is a CoderDecisionRow): it is decided, never superseded by a new version's same code
    waiting = sorted({row.id for rows_ in other_pending.values() for row in rows_})
    answered: set[int] = set()
    for k in range(0, len(waiting), 500):  # bounded IN lists (SQLite's variable limit)
        answered.update(
            session.scalars(
                select(CoderDecisionRow.suggestion_id).where(
                    CoderDecisionRow.suggestion_id.in_(waiting[k : k + 500]),
                    CoderDecisionRow.state != SuggestionState.PENDING,
                )
            )
        )
    if answered:
        for pair, rows_ in list(other_pending.items()):
            if any(row.id in answered for row in rows_):
                decided.add(pair)
            other_pending[pair] = [row for row in rows_ if row.id not in answered]
    thresholds = np.asarray(model.thresholds_, dtype=np.float64)
    # the model's column of a code -> the code's column of corpus.Y (a champion trained on another
    # codebook version orders its codes otherwise, and may know codes the codebook dropped)
    ycol = {ci: corpus.codes.index(c) for ci, c in enumerate(classes) if c in allowed}

    def coded(i: int, ci: int) -> bool:
        """Whether humans already gave segment ``i`` the model's code ``ci``."""
        return ci in ycol and corpus.Y[i, ycol[ci]] == 1

    def fresh(i: int, ci: int) -> bool:
        """Whether segment ``i``'s code ``ci`` would be queued for review (only those are merged)."""
        pair = (i, classes[ci])
        return (not cover or not coded(i, ci)) and pair not in existing and pair not in decided

    positions = corpus.positions if merge else []
    picks = merge_passages(ranked, positions, max_segments=max_passage_segments, mergeable=fresh)
    n_new = n_skip = n_covered = n_duplicate = 0
    n_abstain = sum(1 for p in ranked if not p)
    rows: list[dict[str, Any]] = []
    for pick in picks:
        ci, first = pick.code, pick.rows[0]
        code = classes[ci]
        if (first, code) in existing:
            n_skip += 1
            continue
        state = SuggestionState.PENDING
        if cover and len(pick.rows) == 1 and coded(first, ci):
            # a code humans already gave this segment is kept (the model counts as a coder in
            # agreement) but not queued for review
            state = SuggestionState.COVERED
            n_covered += 1
        elif len(pick.rows) == 1 and (first, code) in decided:
            state = SuggestionState.DUPLICATE
            n_duplicate += 1
        else:
            for i in pick.rows:
                for old in other_pending.pop((i, code), ()):
                    old.state = SuggestionState.SUPERSEDED
        src_id, start, _ = corpus.spans[first]
        end = corpus.spans[pick.rows[-1]][2]
        # the priority of the score the code was suggested with (the passage's best member; a lifted
        # category's summed score, not its raw one)
        priority = review_priority(np.array([pick.score]), thresholds[ci : ci + 1])[0]
        rows.append(
            {
                "source_id": src_id,
                "segment_id": corpus.segment_ids[first],
                "start": start,
                "end": end,
                "code": code,
                "score": float(pick.score),
                "rank": pick.rank,
                "kind": "deductive",
                "model_version_id": model_row.id,
                "codebook_version_id": corpus.codebook_version_id,
                "priority": float(priority),
                "state": state,
            }
        )
        n_new += 1
    # a `qualflow suggest` run is the newest opinion on every segment it scored: an earlier `suggest`
    # run's pending suggestion of any other code there is stale too (after a switch to an exclusive
    # codebook it would contradict the new one). Only between local (`suggest`) versions: the process
    # flow's champion or cold-start prototype never clears a queue a fitted model made. One a coder has
    # already answered under the independent policy stays, with its decisions.
    if model_row.name.startswith(LOCAL_PREFIX):
        local = set(
            session.scalars(select(ModelVersionRow.id).where(ModelVersionRow.name.like(f"{LOCAL_PREFIX}%")))
        )
        stale = {
            row.id: row
            for olds in other_pending.values()
            for row in olds
            if row.state == SuggestionState.PENDING and row.model_version_id in local
        }
        for row in stale.values():  # the independently answered ones left other_pending above
            row.state = SuggestionState.SUPERSEDED
    session.flush()  # superseded states first
    if rows:  # one executemany, not an ORM object per row: a batch queues thousands
        session.execute(insert(SuggestionRow), rows)
    return SuggestReport(
        model_row.label,
        len(corpus.segment_ids),
        n_new,
        n_skip,
        n_abstain,
        covered=n_covered,
        duplicate=n_duplicate,
        alike=ranking.n_alike,
    )


#: The name prefix of the model versions `qualflow suggest` fits (``local-evidence`` ...).
LOCAL_PREFIX = "local-"

#: The key in a local model version's ``metrics`` holding :func:`inputs_hash` (a string: the report
#: shows numbers only). Local models have no evaluation metrics of their own.
INPUTS_KEY = "inputs_hash"


def code_versions() -> dict[str, str]:
    """The versions of what fits a model besides its data and settings: qualflow and the libraries
    whose upgrade can change a fitted model (a no-op check must not skip a retrain after an upgrade).

    >>> sorted(code_versions())
    ['numpy', 'qualflow', 'scikit-learn']
    """
    from importlib.metadata import PackageNotFoundError, version

    from pipeline import __version__

    out = {"qualflow": __version__}
    for dist in ("numpy", "scikit-learn"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            out[dist] = "absent"
    return out


def inputs_hash(
    corpus: Corpus,
    *,
    suggester: str,
    config: SuggesterConfig,
    embedding: str,
    fine_tune: bool,
    sources: Sequence[str] | None,
) -> str:
    """A hash of everything :func:`suggest`'s model and queue depend on: the codebook version, every
    segment (id, span, text) with its labels (codings and decisions: the same hash as the fine-tuned
    encoder's, :func:`pipeline.project.finetune.encoder_key`), the base embedding model, the
    suggester, its ``[suggester]`` settings, ``fine_tune``, the ``sources`` suggested for and the
    :func:`code_versions` it runs on."""
    import json
    from dataclasses import asdict

    from pipeline.project.finetune import encoder_key

    minutes = config.fine_tune_minutes if fine_tune else 0.0
    data = encoder_key(embedding, corpus, list(range(len(corpus.texts))), minutes)
    spans = sha256_text(
        "\n".join(
            f"{seg}|{src}|{a}|{b}" for seg, (src, a, b) in zip(corpus.segment_ids, corpus.spans, strict=True)
        )
    )
    return sha256_text(
        json.dumps(
            {
                "codebook_version": corpus.codebook_version_id,
                "data": data,
                "segments": spans,
                "suggester": suggester,
                # the effective fine_tune (and its minutes, in ``data``) count, not how it was asked for
                "settings": jsonable(
                    {k: v for k, v in asdict(config).items() if k not in ("fine_tune", "fine_tune_minutes")}
                ),
                "fine_tune": fine_tune,
                "sources": sorted(sources) if sources else None,
                "versions": code_versions(),
            },
            sort_keys=True,
        )
    )


def unchanged_since(session: Session, name: str, key: str) -> SuggestReport | None:
    """The report of a no-op when the last version of model ``name`` was fitted on inputs ``key``."""
    last = session.scalar(
        select(ModelVersionRow)
        .where(ModelVersionRow.name == name)
        .order_by(ModelVersionRow.id.desc())
        .limit(1)
    )
    if last is None or (last.metrics or {}).get(INPUTS_KEY) != key:
        return None
    # another model version since (another suggester, the process flow) may have superseded its queue
    if session.scalar(select(ModelVersionRow.id).where(ModelVersionRow.id > last.id).limit(1)) is not None:
        return None
    pending = session.scalar(
        select(func.count())
        .select_from(SuggestionRow)
        .where(SuggestionRow.model_version_id == last.id, SuggestionRow.state == SuggestionState.PENDING)
    )
    return SuggestReport(last.label, 0, 0, 0, 0, unchanged=True, pending=int(pending or 0))


def suggest(
    project: Project,
    *,
    suggester: str | None = None,
    sources: Sequence[str] | None = None,
    embedder: Embedder | None = None,
    fine_tune: bool | None = None,
    force: bool = False,
) -> SuggestReport:
    """Fit ``suggester`` (default from qualflow.toml) on the project's codings and queue suggestions.

    One transaction; the model version is recorded as ``local-<suggester>@N`` (``auto`` resolved:
    ``evidence``, or ``linear`` for an exclusive codebook). When nothing it depends on changed since
    that model's last version (:func:`inputs_hash`), nothing is fitted or stored and the report says
    ``unchanged``; ``force`` fits a new version anyway.

    ``fine_tune`` (default: ``[suggester] fine_tune``, unless an ``embedder`` is given): first fine-tune
    the project's encoder on the labelled segments within ``[suggester] fine_tune_minutes``, or reuse
    the one fine-tuned on the same codings (:mod:`pipeline.project.finetune`), and embed with it (ONNX
    in an ``onnx:`` project); the report's ``encoder`` says which.
    """
    from models import resolve_suggester

    cfg = project.config.suggester
    name = resolve_suggester(suggester or cfg.name, cfg.params)
    if fine_tune is None:
        fine_tune = cfg.fine_tune and embedder is None
    base = embedder or project_embedder(project)

    def key_of(corpus: Corpus) -> str:
        return inputs_hash(
            corpus,
            suggester=name,
            config=cfg,
            embedding=base.fingerprint,
            fine_tune=fine_tune,
            sources=sources,
        )

    if not force:
        with project.store.transaction() as session:
            same = unchanged_since(session, f"{LOCAL_PREFIX}{name}", key_of(load_corpus(session, project)))
        if same is not None:
            return same
    tuned = fine_tuned_encoder(project) if fine_tune else None
    emb = project_embedder(project, base_spec=tuned.spec) if tuned else base
    with project.store.transaction() as session:
        every = load_corpus(session, project)
        train = every.labelled()  # the uncoded interviews are what to suggest for, not negatives
        X_train = embed_texts(emb, train.texts)
        model = build_suggester(name, train.codebook, emb, params=cfg.params)
        Xp_train = context_of(model, train, emb)
        Xw_train = window_of(model, train, X_train)
        fit_suggester(model, X_train, train, Xp_train, Xw_train)
        target = load_corpus(session, project, sources=sources) if sources else every
        X = X_train if target is train else embed_texts(emb, target.texts)
        X_prev = Xp_train if target is train else context_of(model, target, emb)
        X_window = Xw_train if target is train else window_of(model, target, X)
        row = register_model_version(
            session,
            name=f"{LOCAL_PREFIX}{name}",
            suggester=name,
            params=model.get_params(),
            embedding=emb.fingerprint,
            codebook_version_id=train.codebook_version_id,
            metrics={INPUTS_KEY: key_of(every)},  # what it was fitted on, as this transaction read it
        )
        report = store_suggestions(
            session,
            model=model,
            model_row=row,
            corpus=target,
            X=X,
            k=cfg.top_k,
            X_prev=X_prev,
            X_window=X_window,
            merge=cfg.merge_passages,
            max_passage_segments=cfg.max_passage_segments,
            cover=project.config.review.policy != "independent",
            blocks=embedding_blocks(emb, target.texts),
        )
    report.encoder = tuned
    return report


def fine_tuned_encoder(project: Project) -> TunedEncoder:
    """The project's encoder fine-tuned on its labelled segments (or the one made from the same codings)."""
    from pipeline.project.finetune import fine_tune_project_encoder

    with project.store.transaction() as session:
        corpus = load_corpus(session, project)
    return fine_tune_project_encoder(project, corpus, project.config.suggester.fine_tune_minutes)


SUGGESTION_COLUMNS = (
    "source",
    "segment",
    "start",
    "end",
    "code",
    "score",
    "rank",
    "model",
    "kind",
    "state",
    "decided_by",
    "decided_at",
)


def _deciders(session: Session, ids: list[int], decided: dict[int, str]) -> dict[int, tuple[str, str]]:
    """Per suggestion id, ``(decided_by, decided_at)`` of the export.

    ``decided``: the ids whose shared state is decided (first wins), with that state: the coder the
    suggestion names and the time of the applied decision that set the state. Any other id: the
    coders' own decisions of independent review (``coder_decisions`` rows not ``pending``), as
    ``coder:action`` and their times, in coder-name order, joined by ``;``.
    """
    out: dict[int, tuple[str, str]] = {}
    if not ids:
        return out

    def at(value: datetime | None) -> str:
        return value.isoformat(timespec="seconds") if value is not None else ""

    wanted = set(ids)
    shared = [i for i in ids if i in decided]
    if shared:
        q = (
            select(
                DecisionRow.suggestion_id, DecisionRow.resulting_state, DecisionRow.created_at, CoderRow.name
            )
            .join(CoderRow, DecisionRow.coder_id == CoderRow.id)
            .where(DecisionRow.applied, DecisionRow.action != "undo")
            .order_by(DecisionRow.id)
        )
        for sid, resulting, when, name in session.execute(q):
            if sid in decided and resulting == decided[sid]:
                out[sid] = (name, at(when))  # the last one that set the current state wins
    q2 = (
        select(CoderDecisionRow.suggestion_id, CoderRow.name, DecisionRow.action, DecisionRow.created_at)
        .join(CoderRow, CoderDecisionRow.coder_id == CoderRow.id)
        .outerjoin(DecisionRow, CoderDecisionRow.decision_id == DecisionRow.id)
        .where(CoderDecisionRow.state != SuggestionState.PENDING)
        .order_by(CoderDecisionRow.suggestion_id, CoderRow.name)
    )
    own: dict[int, list[tuple[str, str]]] = {}
    for sid, name, action, when in session.execute(q2):
        if sid in wanted and sid not in decided:
            own.setdefault(sid, []).append((f"{name}:{action}", at(when)))
    for sid, pairs in own.items():
        out[sid] = (";".join(p for p, _ in pairs), ";".join(w for _, w in pairs))
    return out


def suggestion_rows(session: Session, *, state: str | None = SuggestionState.PENDING) -> list[dict[str, Any]]:
    """Suggestions as rows of the suggestions CSV data contract (ARCHITECTURE.md and docs/formats.md)."""
    q = (
        select(SuggestionRow, SourceRow.name, SegmentRow.idx, ModelVersionRow, CandidateRow.label)
        .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
        .join(SegmentRow, SuggestionRow.segment_id == SegmentRow.id)
        .join(ModelVersionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
        .outerjoin(CandidateRow, SuggestionRow.candidate_id == CandidateRow.id)
        .where(SourceRow.is_current)
        .order_by(SourceRow.ingest_order, SuggestionRow.start, SuggestionRow.rank)
    )
    if state is not None:
        q = q.where(SuggestionRow.state == state)
    found = list(session.execute(q))
    decided = {s.id: s.state for s, *_ in found if s.state in DECIDED_STATES}
    who = _deciders(session, [s.id for s, *_ in found], decided)
    out = []
    for s, sname, seg_idx, mv, clabel in found:
        decided_by, decided_at = who.get(s.id, ("", ""))
        out.append(
            {
                "source": sname,
                "segment": seg_idx,
                "start": s.start,
                "end": s.end,
                "code": clabel if s.kind == "inductive" and clabel else s.code,
                "score": round(float(s.score), 4),
                "rank": s.rank,
                "model": mv.label,
                "kind": s.kind,
                "state": s.state,
                "decided_by": decided_by,
                "decided_at": decided_at,
            }
        )
    return out


EXPORT_STATES: tuple[str, ...] = (*(s.value for s in SuggestionState), "all")
"""What ``suggestions export --state`` accepts: a :class:`~pipeline.domain.SuggestionState` or ``all``."""


def export_suggestions(project: Project, path: Path, *, state: str = SuggestionState.PENDING) -> int:
    """Write the suggestions in ``state`` (or ``all``) as CSV (:data:`SUGGESTION_COLUMNS`) to ``path``,
    atomically; returns how many were written."""
    if state not in EXPORT_STATES:
        raise InputError(f"--state {state!r} is not one of {list(EXPORT_STATES)}")
    with project.store.transaction() as session:
        rows = suggestion_rows(session, state=None if state == "all" else state)
    buf = io.StringIO()
    writer = csv_dict_writer(buf, fieldnames=list(SUGGESTION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue().encode("utf-8"))
    return len(rows)
