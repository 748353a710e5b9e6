"""Open-code discovery on a project: find what the codebook is missing
(:func:`models.discover.discover_open_codes`) and store the candidates for a lead's review.

Every run looks at all codable segments (participant segments of at least ``[discover] min_words``
words), explained or not. Candidates are incremental: a new candidate whose centroid is close to a
pending one from an earlier run continues it (same id and label; members, quotes and reasons
updated), and clusters like a rejected candidate are kept out, so a rejected idea does not return
under another label. See docs/discovery.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipeline.domain import CandidateState, Codebook, SuggestionState
from pipeline.project.core import Project
from pipeline.project.corpus import Corpus, embed_texts, load_corpus
from pipeline.project.embedding import project_embedder
from pipeline.project.suggest import register_model_version
from pipeline.store.schema import (
    CandidateRow,
    SourceRow,
    SuggestionRow,
)

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from models.discover import OpenCode
    from pipeline.embed.base import Embedder

logger = logging.getLogger(__name__)

#: Cosine (centred raw centroids) at or above which a new candidate continues a pending one.
CONTINUE_SIMILARITY = 0.6
#: Cosine (centred raw centroids) at or above which a cluster counts as a rejected candidate.
REJECT_SIMILARITY = 0.7


@dataclass
class DiscoverReport:
    """What a discovery run did.

    ``unexplained`` is kept for callers of the earlier design: it is now the number of segments
    looked at (every codable segment), not only those no code explained.
    """

    candidates: int
    members: int  # member suggestions stored (a segment in two candidates counts twice)
    unexplained: int
    continued: int = 0  # candidates that continue a pending one of an earlier run (same id)
    new: int = 0  # candidates proposed for the first time
    dropped: int = 0  # earlier pending candidates no longer proposed
    segments: int = 0  # distinct segments that are members of a candidate


def discover(
    project: Project,
    *,
    embedder: Embedder | None = None,
    model: BaseSuggester | None = None,
    model_row_id: int | None = None,
) -> DiscoverReport:
    """Propose candidate open codes over all codable segments and store them for the lead's review.

    Each language is clustered apart, with ``max_candidates`` shared between languages in
    proportion to their segments. ``model`` is accepted for callers of the earlier design and not
    used: the known codes' vectors are the prototype formula over the codebook and the human codings.
    """
    from models.discover import default_phrase_extractor, discover_open_codes, known_code_vectors
    from models.prototype import embed_prototypes, prototype_inputs

    del model  # see the docstring
    emb = embedder or project_embedder(project)
    dcfg = project.config.discover
    with project.store.transaction() as session:
        corpus = load_corpus(session, project)
        rows_all = np.array(
            [i for i, t in enumerate(corpus.texts) if len(t.split()) >= dcfg.min_words], dtype=np.intp
        )
        X = embed_texts(emb, corpus.texts)
        if model_row_id is None:
            model_row_id = register_model_version(
                session,
                name="local-discover",
                suggester="discover",
                params={"design": "residual", **asdict(dcfg)},
                embedding=emb.fingerprint,
                codebook_version_id=corpus.codebook_version_id,
                version="2",
            ).id
        codable = Codebook([c for c in corpus.codebook.codes if c.is_codable], corpus.codebook.name)
        parents = {c.name: c.parent for c in corpus.codebook.codes}
        code_emb = embed_prototypes(prototype_inputs(codable), emb) if codable.codes else None
        Y = corpus.Y if corpus.Y.shape == (len(corpus.texts), len(corpus.codes)) else None
        languages = dict(
            session.execute(select(SourceRow.id, SourceRow.language).where(SourceRow.is_current)).all()
        )
        lang_of = [languages.get(s, "en") for s in corpus.source_ids]
        previous = _earlier_candidates(session, emb.fingerprint, X.shape[1])

        found: list[tuple[OpenCode, np.ndarray, int]] = []  # (candidate, rows, previous row id or -1)
        n_rows = max(len(rows_all), 1)
        for language in sorted({lang_of[i] for i in rows_all}):
            rows = np.array([i for i in rows_all if lang_of[i] == language], dtype=np.intp)
            if len(rows) < max(dcfg.min_cluster_size, 2):
                continue
            Xr = X[rows]
            if code_emb is not None and Y is not None:
                known = known_code_vectors(Xr, Y[rows], code_emb)
            else:
                known = np.zeros((0, X.shape[1]))
            pending = previous.pending.get(language, [])
            rejected = previous.rejected.get(language, [])
            drafts = discover_open_codes(
                Xr,
                [corpus.texts[i] for i in rows],
                [corpus.source_ids[i] for i in rows],
                known,
                known_names=corpus.codes if len(known) else None,
                parents=parents,
                max_candidates=max(1, round(dcfg.max_candidates * len(rows) / n_rows)),
                strength=dcfg.strength,
                lexical_weight=dcfg.lexical_weight,
                member_similarity=dcfg.member_similarity,
                min_sources=dcfg.min_sources,
                min_cluster_size=dcfg.min_cluster_size,
                rejected_centroids=np.array([c for _, c in rejected]) if rejected else None,
                reject_similarity=REJECT_SIMILARITY,
                language=language,
                phrase_extractor=default_phrase_extractor(language),
                random_state=0,
            )
            from models.discover import match_previous

            unit = Xr / np.maximum(np.linalg.norm(Xr, axis=1, keepdims=True), 1e-12)
            match = match_previous(
                [d.raw_centroid for d in drafts],
                np.array([c for _, c in pending]) if pending else None,
                unit.mean(axis=0),
                CONTINUE_SIMILARITY,
            )
            found += [(d, rows, pending[m][0] if m >= 0 else -1) for d, m in zip(drafts, match, strict=True)]

        found.sort(key=lambda f: (-f[0].score, f[2] if f[2] >= 0 else 1 << 60))
        kept = {f[2] for f in found if f[2] >= 0}
        dropped = _drop_pending(session, exclude=kept)
        n_members = 0
        in_candidates: set[int] = set()
        for rank, (cand, rows, prev_id) in enumerate(found, start=1):
            in_candidates.update(corpus.segment_ids[int(rows[m])] for m in cand.members)
            reasons = {
                **cand.reasons(),
                "rank": rank,
                "language": lang_of[int(rows[0])],
                "embedding": emb.fingerprint,
            }
            crow = session.get(CandidateRow, prev_id) if prev_id >= 0 else None
            n_members += _store_candidate(session, cand, rows, corpus, model_row_id, reasons, crow)
        session.flush()
        report = DiscoverReport(
            candidates=len(found),
            members=n_members,
            unexplained=int(len(rows_all)),
            continued=len(kept),
            new=len(found) - len(kept),
            dropped=dropped,
            segments=len(in_candidates),
        )
        logger.info("discovery: %s", report)
        return report


@dataclass
class _Earlier:
    pending: dict[str, list[tuple[int, list[float]]]]  # language -> (candidate id, centroid)
    rejected: dict[str, list[tuple[int, list[float]]]]


def _earlier_candidates(session: Session, fingerprint: str, dim: int) -> _Earlier:
    """Centroids of pending and rejected candidates made with this embedding, by language."""
    out = _Earlier({}, {})
    for row in session.scalars(
        select(CandidateRow).where(CandidateRow.state.in_((CandidateState.PENDING, CandidateState.REJECTED)))
    ):
        reasons = row.reasons or {}
        centroid = list(row.centroid or [])
        if len(centroid) != dim or reasons.get("embedding") != fingerprint:
            continue  # another embedding's space, or a candidate from before centroids were stored
        target = out.pending if row.state == CandidateState.PENDING else out.rejected
        target.setdefault(str(reasons.get("language", "en")), []).append((row.id, centroid))
    return out


def _drop_pending(session: Session, *, exclude: set[int]) -> int:
    """Remove pending candidates not in ``exclude`` (and their pending member suggestions).

    A candidate some of whose members a coder already decided is kept as ``superseded`` (the
    decisions stay traceable); the others are deleted. Returns how many were removed.
    """
    old = [
        cid
        for cid in session.scalars(
            select(CandidateRow.id).where(CandidateRow.state == CandidateState.PENDING)
        )
        if cid not in exclude
    ]
    if not old:
        return 0
    session.execute(
        delete(SuggestionRow).where(
            SuggestionRow.candidate_id.in_(old), SuggestionRow.state == SuggestionState.PENDING
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
    return len(old)


def _store_candidate(
    session: Session,
    cand: Any,
    rows: Sequence[int] | np.ndarray,
    corpus: Corpus,
    model_row_id: int,
    reasons: dict[str, Any],
    crow: CandidateRow | None = None,
) -> int:
    """Store (or, given ``crow``, update) one candidate and a pending inductive suggestion per member.

    An updated candidate keeps its id and label; its pending member suggestions are replaced, and a
    member a coder already decided is not suggested again. Returns the members stored.
    """
    members = [int(rows[m]) for m in cand.members]
    quotes = [corpus.segment_ids[int(rows[q])] for q in cand.quotes]
    fields = {
        "keyphrases": [[p, float(s)] for p, s in cand.keyphrases],
        "quotes": quotes,
        "coherence": float(cand.coherence),
        "nearest_codes": [[c, float(s)] for c, s in cand.nearest_codes],
        "model_version_id": model_row_id,
        "codebook_version_id": corpus.codebook_version_id,
        "centroid": [round(float(v), 6) for v in cand.raw_centroid],
        "reasons": reasons,
    }
    decided: set[int] = set()
    if crow is None:
        crow = CandidateRow(label=cand.label, state=CandidateState.PENDING, **fields)
        session.add(crow)
        session.flush()
    else:
        for key, value in fields.items():
            setattr(crow, key, value)
        session.execute(
            delete(SuggestionRow).where(
                SuggestionRow.candidate_id == crow.id, SuggestionRow.state == SuggestionState.PENDING
            )
        )
        decided = set(
            session.scalars(select(SuggestionRow.segment_id).where(SuggestionRow.candidate_id == crow.id))
        )
    quote_set = set(quotes)
    n_members = 0
    for m in members:
        sid = corpus.segment_ids[m]
        if sid in decided:
            continue
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
                state=SuggestionState.PENDING,
            )
        )
        n_members += 1
    return n_members
