"""From the project database to suggesters and back: training data, suggesting, discovery.

The CLI (`qualflow embed|suggest|discover|evaluate`) and the Prefect flows both call these functions;
a flow task is one call into this module. Nothing here imports prefect or mlflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pipeline.domain import Codebook
from pipeline.errors import InputError
from pipeline.project import (
    Project,
    load_segments,
    require_codebook,
)
from pipeline.store.schema import (
    CandidateRow,
    CoderRow,
    CodingRow,
    ModelVersionRow,
    SegmentRow,
    SourceRow,
    SuggestionRow,
)

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.embed import Embedder


# --------------------------------------------------------------------------- pure helpers


def coding_covers(seg_start: int, seg_end: int, c_start: int, c_end: int) -> bool:
    """A coding labels a segment when their overlap is at least half of the shorter of the two.

    >>> coding_covers(0, 10, 2, 6), coding_covers(0, 10, 8, 30), coding_covers(0, 10, 4, 30)
    (True, False, True)
    """
    overlap = min(seg_end, c_end) - max(seg_start, c_start)
    if overlap <= 0:
        return False
    return overlap * 2 >= min(seg_end - seg_start, c_end - c_start)


def label_matrix(
    segments: Sequence[tuple[int, int, int]],
    codings: Sequence[tuple[int, int, int, str]],
    rejections: Sequence[tuple[int, str]],
    codes: Sequence[str],
) -> npt.NDArray[np.int8]:
    """Training labels for segments.

    Parameters
    ----------
    segments : sequence of (segment_key, start, end); ``segment_key`` identifies the source version
        (codings are matched within the same key).
    codings : sequence of (segment_key, start, end, code)
    rejections : sequence of (row index into ``segments``, code): explicit negatives
    codes : the column order

    Returns
    -------
    Y : ndarray of shape (n_segments, n_codes), int8: 1 coded, 0 not coded, -1 rejected (and not coded).

    >>> label_matrix([(1, 0, 10), (1, 10, 20)], [(1, 0, 9, "a")], [(1, "b")], ["a", "b"]).tolist()
    [[1, 0], [0, -1]]
    """
    col = {c: i for i, c in enumerate(codes)}
    Y = np.zeros((len(segments), len(codes)), dtype=np.int8)
    by_key: dict[int, list[tuple[int, int, int, str]]] = {}
    for c in codings:
        by_key.setdefault(c[0], []).append(c)
    for i, (key, s, e) in enumerate(segments):
        for _, cs, ce, code in by_key.get(key, ()):
            if code in col and coding_covers(s, e, cs, ce):
                Y[i, col[code]] = 1
    for i, code in rejections:
        if code in col and Y[i, col[code]] == 0:
            Y[i, col[code]] = -1
    return Y


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


# --------------------------------------------------------------------------- corpus views


@dataclass
class Corpus:
    """The current participant segments and, per segment, what humans said about each code."""

    segment_ids: list[int]
    source_ids: list[int]
    source_names: list[str]
    texts: list[str]
    spans: list[tuple[int, int, int]]  # (source_id, start, end)
    codes: list[str]
    codebook: Codebook
    codebook_version_id: int
    Y: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int8))

    @property
    def groups(self) -> list[str]:
        return self.source_names

    def subset(self, rows: Sequence[int]) -> Corpus:
        """The corpus restricted to the segments at positions ``rows`` (same codes and codebook)."""
        return Corpus(
            segment_ids=[self.segment_ids[i] for i in rows],
            source_ids=[self.source_ids[i] for i in rows],
            source_names=[self.source_names[i] for i in rows],
            texts=[self.texts[i] for i in rows],
            spans=[self.spans[i] for i in rows],
            codes=self.codes,
            codebook=self.codebook,
            codebook_version_id=self.codebook_version_id,
            Y=self.Y[list(rows)] if len(self.Y) else self.Y,  # (0, 0) when no labels were loaded
        )


def codable_codes(codebook: Codebook) -> list[str]:
    return [c.name for c in codebook.codes if c.is_codable]


def load_corpus(session: Session, project: Project, *, sources: Sequence[str] | None = None) -> Corpus:
    """Participant segments of the current sources (optionally only ``sources``) with their labels.

    Labels come from active codings of every human coder and from accepted suggestions; rejected
    suggestions are explicit negatives (-1).
    """
    cb_row, codebook = require_codebook(session)
    codes = codable_codes(codebook)
    if sources:
        wanted = set(sources)
        # check against the sources, not their participant segments: an interview with interviewer
        # turns only is a known source with nothing to suggest for
        known = set(
            session.scalars(select(SourceRow.name).where(SourceRow.is_current, SourceRow.name.in_(wanted)))
        )
        missing = wanted - known
        if missing:
            raise InputError(f"unknown source(s) {sorted(missing)}; see `qualflow sources`")
        rows = load_segments(session, project.config, sources=sorted(wanted))
    else:
        rows = load_segments(session, project.config)
    corpus = Corpus(
        segment_ids=[r.id for r, _ in rows],
        source_ids=[r.source_id for r, _ in rows],
        source_names=[n for _, n in rows],
        texts=[r.text for r, _ in rows],
        spans=[(r.source_id, r.start, r.end) for r, _ in rows],
        codes=codes,
        codebook=codebook,
        codebook_version_id=cb_row.id,
    )
    src_ids = sorted(set(corpus.source_ids))
    codings = [
        (sid, start, end, code)
        for sid, start, end, code in session.execute(
            select(CodingRow.source_id, CodingRow.start, CodingRow.end, CodingRow.code).where(
                CodingRow.active, CodingRow.source_id.in_(src_ids)
            )
        )
    ]
    index = {sid: i for i, sid in enumerate(corpus.segment_ids)}
    rejections = [
        (index[seg_id], code)
        for seg_id, code in session.execute(
            select(SuggestionRow.segment_id, SuggestionRow.code).where(
                SuggestionRow.source_id.in_(src_ids),
                SuggestionRow.state.in_(("rejected", "recoded")),
                SuggestionRow.kind == "deductive",
            )
        )
        if seg_id in index
    ]
    corpus.Y = label_matrix(corpus.spans, codings, rejections, codes)
    return corpus


def make_project_embedder(project: Project, *, progress: bool = True) -> Embedder:
    from pipeline.embed import make_embedder

    return make_embedder(
        project.config.embedding.model,
        cache_dir=project.cache_dir,
        batch_size=project.config.embedding.batch_size,
        progress=progress,
        base_dir=project.root,
    )


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return embedder.encode(list(texts))


# --------------------------------------------------------------------------- training


def build_suggester(
    name: str,
    codebook: Codebook,
    embedder: Embedder,
    *,
    params: dict[str, Any] | None = None,
) -> BaseSuggester:
    """An unfitted suggester ``name`` for the codable codes of ``codebook``."""
    from models import make_suggester
    from models.prototype import embed_prototypes, prototype_inputs

    codes = codable_codes(codebook)
    if not codes:
        raise InputError("the codebook has no codable codes; mark some codes `codable: true`")
    p = dict(params or {})
    p.setdefault("codes", codes)
    if name in ("prototype", "blend"):
        cb = Codebook(codes=[c for c in codebook.codes if c.is_codable], name=codebook.name)
        p.setdefault("code_embeddings", embed_prototypes(prototype_inputs(cb), embedder))
    return make_suggester(name, **p)


def fit_suggester(model: BaseSuggester, X: npt.NDArray[np.float32], corpus: Corpus) -> BaseSuggester:
    return model.fit(X, corpus.Y, groups=corpus.groups, texts=corpus.texts)


@dataclass
class SuggestReport:
    model_label: str
    segments: int
    suggestions: int
    skipped_existing: int
    abstained: int


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

    def subset(self, rows: Sequence[int]) -> Ranking:
        return Ranking(self.P[list(rows)], [self.picks[i] for i in rows])


def rank_codes(model: BaseSuggester, X: npt.NDArray[np.float32], texts: Sequence[str], k: int) -> Ranking:
    """Score every segment (rows of ``X``, with their ``texts``) and pick its top-``k`` codes."""
    if not len(texts):
        return Ranking(np.zeros((0, len(model.classes_))), [])
    P = model.predict_proba(X, texts=list(texts))
    return Ranking(P, model.suggest_from_proba(P, k))


def store_suggestions(
    session: Session,
    *,
    model: BaseSuggester,
    model_row: ModelVersionRow,
    corpus: Corpus,
    X: npt.NDArray[np.float32],
    k: int,
) -> SuggestReport:
    """Suggest top-``k`` codes for every corpus segment and queue them (idempotent per model version)."""
    return queue_suggestions(
        session,
        model=model,
        model_row=model_row,
        corpus=corpus,
        ranking=rank_codes(model, X, corpus.texts, k),
    )


def queue_suggestions(
    session: Session, *, model: BaseSuggester, model_row: ModelVersionRow, corpus: Corpus, ranking: Ranking
) -> SuggestReport:
    """Queue ``ranking`` (of ``model`` on ``corpus``) as suggestions; idempotent per model version.

    A (segment, code) already suggested by this model version is skipped; one a human coded is stored
    as ``covered``; one a coder decided for another model version is ``duplicate``; another version's
    pending one is ``superseded`` by the new one.
    """
    P, ranked = ranking.P, ranking.picks
    existing = set(
        session.execute(
            select(SuggestionRow.segment_id, SuggestionRow.code).where(
                SuggestionRow.source_id.in_(sorted({sp[0] for sp in corpus.spans})),
                SuggestionRow.model_version_id == model_row.id,
                SuggestionRow.kind == "deductive",
            )
        ).all()
    )
    # the same (segment, code) from another model version: a newer pending suggestion replaces an older
    # pending one; one a coder already decided is recorded for this model but not queued again
    seg_ids = set(corpus.segment_ids)
    other_pending: dict[tuple[int, str], SuggestionRow] = {}
    decided: set[tuple[int, str]] = set()
    for row in session.scalars(
        select(SuggestionRow).where(
            SuggestionRow.source_id.in_(sorted({sp[0] for sp in corpus.spans})),
            SuggestionRow.kind == "deductive",
            SuggestionRow.model_version_id != model_row.id,
            SuggestionRow.state.in_(("pending", "accepted", "rejected", "recoded")),
        )
    ):
        if row.segment_id not in seg_ids:
            continue
        if row.state == "pending":
            other_pending[(row.segment_id, row.code)] = row
        else:
            decided.add((row.segment_id, row.code))
    classes = list(model.classes_)
    priority = review_priority(P, np.asarray(model.thresholds_)) if len(corpus.segment_ids) else P
    n_new = n_skip = n_abstain = 0
    rows: list[dict[str, Any]] = []
    for i, picks in enumerate(ranked):
        if not picks:
            n_abstain += 1
            continue
        for rank, (ci, score) in enumerate(picks, start=1):
            code = classes[ci]
            if (corpus.segment_ids[i], code) in existing:
                n_skip += 1
                continue
            src_id, start, end = corpus.spans[i]
            pair = (corpus.segment_ids[i], code)
            state = "pending"
            if corpus.Y[i, ci] == 1:
                # a code humans already gave this segment is kept (the model counts as a coder in
                # agreement) but not queued for review
                state = "covered"
            elif pair in decided:
                state = "duplicate"
            elif pair in other_pending:
                other_pending.pop(pair).state = "superseded"
            rows.append(
                {
                    "source_id": src_id,
                    "segment_id": corpus.segment_ids[i],
                    "start": start,
                    "end": end,
                    "code": code,
                    "score": float(score),
                    "rank": rank,
                    "kind": "deductive",
                    "model_version_id": model_row.id,
                    "codebook_version_id": corpus.codebook_version_id,
                    "priority": float(priority[i, ci]),
                    "state": state,
                }
            )
            n_new += 1
    session.flush()  # superseded states first
    if rows:  # one executemany, not an ORM object per row: a batch queues thousands
        session.execute(insert(SuggestionRow), rows)
    return SuggestReport(model_row.label, len(corpus.segment_ids), n_new, n_skip, n_abstain)


def suggest(
    project: Project,
    *,
    suggester: str | None = None,
    sources: Sequence[str] | None = None,
    embedder: Embedder | None = None,
) -> SuggestReport:
    """Fit ``suggester`` (default from qualflow.toml) on the project's codings and queue suggestions.

    One transaction; the model version is recorded as ``local-<suggester>@N``.
    """
    cfg = project.config.suggester
    name = suggester or cfg.name
    emb = embedder or make_project_embedder(project)
    with project.store.transaction() as session:
        train = load_corpus(session, project)
        X_train = embed_texts(emb, train.texts)
        model = build_suggester(name, train.codebook, emb, params=cfg.params)
        fit_suggester(model, X_train, train)
        target = load_corpus(session, project, sources=sources) if sources else train
        X = X_train if target is train else embed_texts(emb, target.texts)
        row = register_model_version(
            session,
            name=f"local-{name}",
            suggester=name,
            params=model.get_params(),
            embedding=emb.fingerprint,
            codebook_version_id=train.codebook_version_id,
        )
        return store_suggestions(session, model=model, model_row=row, corpus=target, X=X, k=cfg.top_k)


# --------------------------------------------------------------------------- discovery


@dataclass
class DiscoverReport:
    candidates: int
    members: int
    unexplained: int


def discover(
    project: Project,
    *,
    embedder: Embedder | None = None,
    model: BaseSuggester | None = None,
    model_row_id: int | None = None,
) -> DiscoverReport:
    """Cluster the segments no code explains into candidate open codes, stored for the lead's review.

    "Unexplained" = no human coding or accepted suggestion, and no score of ``model`` (default: the
    prototype suggester) at or above its threshold. Earlier pending candidates are replaced.
    """
    from models.discover import Discoverer, default_phrase_extractor, unexplained_mask

    emb = embedder or make_project_embedder(project)
    dcfg = project.config.discover
    with project.store.transaction() as session:
        corpus = load_corpus(session, project)
        X = embed_texts(emb, corpus.texts)
        if model is None:
            model = build_suggester("prototype", corpus.codebook, emb)
            model.fit(X, corpus.Y)
        P = model.predict_proba(X, texts=corpus.texts)
        accepted = (corpus.Y == 1).any(axis=1)
        mask = unexplained_mask(P, np.asarray(model.thresholds_), accepted)
        idx = np.flatnonzero(mask)
        if model_row_id is None:
            model_row_id = register_model_version(
                session,
                name="local-discover",
                suggester="discover",
                params={"clusterer": dcfg.clusterer, "distance_threshold": dcfg.distance_threshold},
                embedding=emb.fingerprint,
                codebook_version_id=corpus.codebook_version_id,
                version="1",
            ).id
        # replace earlier pending candidates (and their pending member suggestions)
        old = list(session.scalars(select(CandidateRow.id).where(CandidateRow.state == "pending")))
        if old:
            session.execute(
                delete(SuggestionRow).where(
                    SuggestionRow.candidate_id.in_(old), SuggestionRow.state == "pending"
                )
            )
            decided = set(
                session.scalars(select(SuggestionRow.candidate_id).where(SuggestionRow.candidate_id.in_(old)))
            )
            for cid in old:
                if cid not in decided:
                    session.execute(delete(CandidateRow).where(CandidateRow.id == cid))
                else:
                    stale = session.get(CandidateRow, cid)
                    if stale is not None:
                        stale.state = "superseded"
        # short answers ("Of course.", "Partly.") are not codable content: they would form their own clusters
        idx = np.array([i for i in idx if len(corpus.texts[i].split()) >= dcfg.min_words], dtype=np.intp)
        from models.prototype import embed_prototypes, prototype_inputs

        codable = Codebook([c for c in corpus.codebook.codes if c.is_codable], corpus.codebook.name)
        code_emb = embed_prototypes(prototype_inputs(codable), emb) if len(idx) else None
        languages = dict(
            session.execute(select(SourceRow.id, SourceRow.language).where(SourceRow.is_current)).all()
        )
        n_candidates = n_members = 0
        # one clustering per language: stop words, phrases and embeddings differ between languages
        for language in sorted({languages.get(corpus.source_ids[i], "en") for i in idx}):
            rows = np.array(
                [i for i in idx if languages.get(corpus.source_ids[i], "en") == language], dtype=np.intp
            )
            if len(rows) < max(dcfg.min_cluster_size, 2):
                continue
            disc = Discoverer(
                clusterer=dcfg.clusterer,  # type: ignore[arg-type]  # validated by Discoverer
                distance_threshold=dcfg.distance_threshold,
                min_cluster_size=dcfg.min_cluster_size,
                language=language,
                phrase_extractor=default_phrase_extractor(language),
                random_state=0,
            )
            disc.fit(
                X[rows], [corpus.texts[i] for i in rows], code_names=codable.names(), code_embeddings=code_emb
            )
            n_candidates += len(disc.candidates_)
            n_members += _store_candidates(session, disc.candidates_, rows, corpus, model_row_id)
        session.flush()
        return DiscoverReport(n_candidates, n_members, int(len(idx)))


def _store_candidates(
    session: Session, candidates: Sequence[Any], rows: Any, corpus: Corpus, model_row_id: int
) -> int:
    """Store candidate open codes and one inductive suggestion per member segment; returns members stored."""
    n_members = 0
    for cand in candidates:
        members = [int(rows[m]) for m in cand.members]
        quotes = [corpus.segment_ids[int(rows[q])] for q in cand.quotes]
        crow = CandidateRow(
            label=cand.label,
            keyphrases=[[p, float(s)] for p, s in cand.keyphrases],
            quotes=quotes,
            coherence=float(cand.coherence),
            nearest_codes=[[c, float(s)] for c, s in cand.nearest_codes],
            model_version_id=model_row_id,
            codebook_version_id=corpus.codebook_version_id,
            state="pending",
        )
        session.add(crow)
        session.flush()
        quote_set = set(quotes)
        for m in members:
            sid = corpus.segment_ids[m]
            src_id, start, end = corpus.spans[m]
            session.add(
                SuggestionRow(
                    source_id=src_id,
                    segment_id=sid,
                    start=start,
                    end=end,
                    code=f"candidate:{crow.id}",
                    score=float(cand.coherence),
                    rank=1,
                    kind="inductive",
                    candidate_id=crow.id,
                    model_version_id=model_row_id,
                    codebook_version_id=corpus.codebook_version_id,
                    priority=1.0 if sid in quote_set else 0.5,
                    state="pending",
                )
            )
            n_members += 1
    return n_members


# --------------------------------------------------------------------------- export


SUGGESTION_COLUMNS = ("source", "segment", "start", "end", "code", "score", "rank", "model", "kind")


def suggestion_rows(session: Session, *, state: str | None = "pending") -> list[dict[str, Any]]:
    """Suggestions as rows of the suggestions CSV data contract (ARCHITECTURE.md)."""
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
    out = []
    for s, sname, seg_idx, mv, clabel in session.execute(q):
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
            }
        )
    return out


__all__ = [
    "Corpus",
    "coding_covers",
    "discover",
    "label_matrix",
    "load_corpus",
    "review_priority",
    "suggest",
    "suggestion_rows",
]
