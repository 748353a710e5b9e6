"""A project's segments as one corpus (texts, spans, labels from the human codings) and the project's
embedder, which every suggester and discoverer reads from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.domain import Codebook, SuggestionState
from pipeline.errors import InputError
from pipeline.labels import label_matrix
from pipeline.project.core import Project
from pipeline.store.queries import load_segments, require_codebook
from pipeline.store.schema import (
    CodingRow,
    SourceRow,
    SuggestionRow,
)

if TYPE_CHECKING:
    from pipeline.embed.base import Embedder


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
                SuggestionRow.state.in_((SuggestionState.REJECTED, SuggestionState.RECODED)),
                SuggestionRow.kind == "deductive",
            )
        )
        if seg_id in index
    ]
    corpus.Y = label_matrix(corpus.spans, codings, rejections, codes)
    return corpus


def make_project_embedder(project: Project, *, progress: bool = True) -> Embedder:
    """The project's embedder: ``[embedding] model``, routed by language (see pipeline.embed.languages)."""
    from pipeline.project.embedding import project_embedder

    return project_embedder(project, progress=progress)


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return embedder.encode(list(texts))
