"""A project's segments as one corpus (texts, spans, labels from the human codings) and the project's
embedder, which every suggester and discoverer reads from.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
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
from pipeline.store.queries import coded_by_hand, load_segments, require_codebook
from pipeline.store.schema import (
    CodingRow,
    SegmentRow,
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
    prev_texts: list[str] = field(default_factory=list)
    """Per segment, the text of what came just before it in its source (:func:`context_texts`):
    the previous turn (the interviewer's question before an answer included), ``""`` when none."""
    prev2_texts: list[str] = field(default_factory=list)
    """Per segment, the turn before that one (``context_texts(..., back=2)``)."""
    hand_coded: frozenset[int] | None = None
    """Source ids with at least one active coding made by hand (in the review app, imported or from a
    codings file: not through the suggestion queue). ``None``: not known, and every source with a
    label counts as coded (:meth:`labelled_rows`)."""
    positions: list[tuple[tuple[int, int | None], int] | None] = field(default_factory=list)
    """Per segment, ``((source id, turn index), segment index)`` for :func:`pipeline.passages.merge_passages`
    (segments of one source without turns are one turn); ``None`` for an interviewer segment (never
    merged). Empty: no segment is merged."""

    @property
    def groups(self) -> list[str]:
        return self.source_names

    def rows_spanned(self, segment_id: int, source_id: int, start: int, end: int) -> list[int]:
        """The rows a stored suggestion covers: its own segment's row, or, for a passage (a span wider
        than its first segment: :mod:`pipeline.passages`), every row of its source lying inside
        ``start..end``. ``[]`` when its segment is not in this corpus (another segmentation scheme).
        """
        if not hasattr(self, "_row_of"):  # built once per corpus, on first use
            self._row_of = {seg: i for i, seg in enumerate(self.segment_ids)}
            self._by_source: dict[int, list[tuple[int, int, int]]] = {}
            for row, (src, s, e) in enumerate(self.spans):
                self._by_source.setdefault(src, []).append((s, e, row))
            for spans in self._by_source.values():
                spans.sort()
        own = self._row_of.get(segment_id)
        if own is None:
            return []
        if self.spans[own][1:] == (start, end):
            return [own]
        spans = self._by_source.get(source_id, [])
        inside = []
        for s, e, row in spans[bisect.bisect_left(spans, (start, -1, -1)) :]:
            if s >= end:
                break
            if e <= end:
                inside.append(row)
        return inside or [own]

    def labelled_rows(self) -> list[int]:
        """The rows a suggester may learn from and be evaluated on: every segment of a source someone
        coded by hand (a segment without a coding there is a negative example), and, in a source known
        only through the suggestion queue, just the segments someone decided on (accepted, recoded or
        rejected). A segment of a source no one has coded is unknown, not a negative: training on it
        would teach every code that the interviews still to be coded hold none of it; and one accepted
        suggestion does not make the rest of its interview a negative example. ``[]`` when nothing is
        labelled."""
        if not len(self.Y):
            return []
        said = (self.Y != 0).any(axis=1)
        if not said.any():
            return []
        coded = (
            self.hand_coded
            if self.hand_coded is not None
            else {self.source_ids[i] for i in np.flatnonzero(said)}
        )
        return [i for i, src in enumerate(self.source_ids) if src in coded or said[i]]

    def labelled(self) -> Corpus:
        """The corpus restricted to :meth:`labelled_rows`; the whole corpus when nothing is labelled at
        all (the cold start reads the segments)."""
        rows = self.labelled_rows()
        if not rows or len(rows) == len(self.source_ids):
            return self
        return self.subset(rows)

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
            hand_coded=self.hand_coded,
            prev_texts=[self.prev_texts[i] for i in rows] if self.prev_texts else [],
            prev2_texts=[self.prev2_texts[i] for i in rows] if self.prev2_texts else [],
            positions=[self.positions[i] for i in rows] if self.positions else [],
        )


def context_texts(rows: Sequence[tuple[SegmentRow, str]], back: int = 1) -> dict[int, str]:
    """Segment id -> the text just before the segment in its source, for every segment of ``rows``
    (``back=2``: the turn, or segment, before that one).

    ``rows`` are all the segments of one scheme (interviewer turns included), in document order. The
    context of a segment is the whole previous turn (its segments joined by a space), whoever spoke
    it: the interviewer's question for the sentences of an answer. In a source of one turn (a
    document), it is the previous segment. ``""`` for the first.
    """
    by_source: dict[int, list[SegmentRow]] = {}
    for r, _ in rows:
        by_source.setdefault(r.source_id, []).append(r)
    out: dict[int, str] = {}
    for segs in by_source.values():
        turns: dict[int, list[str]] = {}
        for r in segs:
            if r.turn_idx is not None:
                turns.setdefault(r.turn_idx, []).append(r.text)
        order = sorted(turns)
        before = {t: " ".join(turns[p]) for p, t in zip(order, order[back:], strict=False)}
        for i, r in enumerate(segs):
            if r.turn_idx is not None and r.turn_idx in before:
                out[r.id] = before[r.turn_idx]
            elif r.turn_idx is not None and len(order) > 1:
                out[r.id] = ""  # the first turns of a conversation: nothing said before them
            else:
                out[r.id] = segs[i - back].text if i >= back else ""
    return out


def codable_codes(codebook: Codebook) -> list[str]:
    return [c.name for c in codebook.codes if c.is_codable]


def load_corpus(session: Session, project: Project, *, sources: Sequence[str] | None = None) -> Corpus:
    """Participant segments of the current sources (optionally only ``sources``) with their labels.

    Labels come from active codings of every human coder and from accepted suggestions; rejected
    suggestions are explicit negatives (-1). :attr:`Corpus.hand_coded` says which sources were coded by
    hand (:meth:`Corpus.labelled_rows` reads the others only where someone decided on a suggestion).
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
    names = sorted({n for _, n in rows})
    every = load_segments(session, project.config, include_interviewer=True, sources=names)
    context, context2 = context_texts(every), context_texts(every, back=2)
    corpus = Corpus(
        segment_ids=[r.id for r, _ in rows],
        source_ids=[r.source_id for r, _ in rows],
        source_names=[n for _, n in rows],
        texts=[r.text for r, _ in rows],
        spans=[(r.source_id, r.start, r.end) for r, _ in rows],
        codes=codes,
        codebook=codebook,
        codebook_version_id=cb_row.id,
        prev_texts=[context.get(r.id, "") for r, _ in rows],
        prev2_texts=[context2.get(r.id, "") for r, _ in rows],
        positions=[((r.source_id, r.turn_idx), r.idx) if r.role != "interviewer" else None for r, _ in rows],
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
    # a rejected suggestion on one segment marks that segment; one on a passage marks every segment of
    # it (Corpus.rows_spanned). Suggestions made under another segmentation scheme are not read.
    rejections: list[tuple[int, str]] = []
    for seg_id, src_id, start, end, code in session.execute(
        select(
            SuggestionRow.segment_id,
            SuggestionRow.source_id,
            SuggestionRow.start,
            SuggestionRow.end,
            SuggestionRow.code,
        ).where(
            SuggestionRow.source_id.in_(src_ids),
            SuggestionRow.state.in_((SuggestionState.REJECTED, SuggestionState.RECODED)),
            SuggestionRow.kind == "deductive",
        )
    ):
        rejections += [(i, code) for i in corpus.rows_spanned(seg_id, src_id, start, end)]
    corpus.Y = label_matrix(corpus.spans, codings, rejections, codes)
    corpus.hand_coded = frozenset(
        session.scalars(
            select(CodingRow.source_id)
            .where(
                CodingRow.active,
                coded_by_hand(),
                CodingRow.source_id.in_(src_ids),
                CodingRow.code.in_(codes),
            )
            .distinct()
        )
    )
    return corpus


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return embedder.encode(list(texts))


def window_vectors(
    X: npt.NDArray[np.float32],
    positions: Sequence[tuple[Hashable, int] | None],
    radius: int = 1,
) -> npt.NDArray[np.float32]:
    """``X_window``: each segment's window (the segment with the ``radius`` segments before and after it
    in its turn; in a source without turns, in the source) as the mean of their vectors ``X``, scaled to the
    members' mean length (so a segment alone in its turn keeps its own vector, and unit vectors give a
    unit vector).

    Composed, not embedded: the window's text would cost a second encoder pass over about three times
    the tokens of the segments (on a 28-interview study, three quarters of ``suggest``'s time), for the
    same figures on the study benchmark (docs/benchmarks.md). ``positions`` are
    :attr:`Corpus.positions` (``((source, turn), index)``; ``None`` or a missing entry: the segment is
    its own window). Neighbours are the segments whose index is within ``radius`` of the segment's:
    a window spans only the rows given, and rows missing from a turn (a source known only through the
    queue keeps just its decided segments) leave a gap, never a window of segments far apart.

    Returns
    -------
    ndarray of the shape of ``X``, float32
    """
    Xa = np.asarray(X, dtype=np.float32)
    out = Xa.copy()
    turns: dict[Hashable, list[tuple[int, int]]] = {}
    for row, pos in enumerate(positions[: len(Xa)]):
        if pos is not None:
            turns.setdefault(pos[0], []).append((pos[1], row))
    norms = np.linalg.norm(Xa, axis=1)
    for members in turns.values():
        if len(members) < 2:
            continue
        ordered = sorted(members)
        idx = [i for i, _ in ordered]
        rows = [row for _, row in ordered]
        for j, row in enumerate(rows):
            lo = bisect.bisect_left(idx, idx[j] - radius)
            hi = bisect.bisect_right(idx, idx[j] + radius)
            near = rows[lo:hi]
            mean = Xa[near].mean(axis=0)
            length = float(np.linalg.norm(mean))
            if length > 0:
                out[row] = mean * (float(norms[near].mean()) / length)
    return out


def embed_context(embedder: Embedder, prev_texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """``X_prev``: the vectors of ``prev_texts`` (a corpus's :attr:`Corpus.prev_texts`), zeros for ``""``.

    Returns
    -------
    ndarray of shape (len(prev_texts), embedder.dim), float32
    """
    out = np.zeros((len(prev_texts), embedder.dim), dtype=np.float32)
    unique = list(dict.fromkeys(t for t in prev_texts if t))
    if unique:
        V = embedder.encode(unique)
        row = {t: i for i, t in enumerate(unique)}
        for i, t in enumerate(prev_texts):
            if t:
                out[i] = V[row[t]]
    return out
