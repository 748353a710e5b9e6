"""Open-code discovery on a project: cluster what the codebook does not explain
(:class:`models.discover.Discoverer`) and store the candidates for a lead's review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipeline.domain import CandidateState, Codebook, SuggestionState
from pipeline.project.core import Project
from pipeline.project.corpus import Corpus, embed_texts, load_corpus, make_project_embedder
from pipeline.project.suggest import build_suggester, register_model_version
from pipeline.store.schema import (
    CandidateRow,
    SourceRow,
    SuggestionRow,
)

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.embed.base import Embedder


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
        old = list(
            session.scalars(select(CandidateRow.id).where(CandidateRow.state == CandidateState.PENDING))
        )
        if old:
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
            state=SuggestionState.PENDING,
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
                    state=SuggestionState.PENDING,
                )
            )
            n_members += 1
    return n_members
