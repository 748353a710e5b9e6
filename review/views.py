"""The data behind each page of the review app (plain dicts for the templates; no HTTP here)."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.config import ProjectConfig, scheme_key
from pipeline.domain import CandidateState, SuggestionState
from pipeline.errors import InputError, NotFoundError
from pipeline.project.decisions import COLD_START_DECISIONS, QueueItem, codable_names, order_queue
from pipeline.store.queries import current_sources, get_source
from pipeline.store.schema import (
    CandidateRow,
    CodeRow,
    CoderRow,
    CodingRow,
    DecisionRow,
    ModelVersionRow,
    SegmentRow,
    SourceRow,
    SuggestionRow,
    TurnRow,
)


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` and the marks (segment, coding, suggestion keys) that cover all of it."""

    start: int
    end: int
    keys: frozenset[str]


def split_spans(start: int, end: int, marks: Sequence[tuple[int, int, str]]) -> list[Span]:
    """Cut ``[start, end)`` at every mark boundary; each piece lists the marks covering it.

    Pieces are contiguous, non-empty and cover ``[start, end)`` exactly, so the browser can map a
    selection back to exact character offsets.

    >>> [(s.start, s.end, sorted(s.keys)) for s in split_spans(0, 10, [(2, 5, "a"), (4, 20, "b")])]
    [(0, 2, []), (2, 4, ['a']), (4, 5, ['a', 'b']), (5, 10, ['b'])]
    """
    if end <= start:
        return []
    starts: dict[int, list[str]] = defaultdict(list)
    ends: dict[int, list[str]] = defaultdict(list)
    cuts = {start, end}
    for s, e, key in marks:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        starts[s].append(key)
        ends[e].append(key)
        cuts.update((s, e))
    active: set[str] = set()
    out: list[Span] = []
    points = sorted(cuts)
    for a, b in zip(points, points[1:], strict=False):
        active.difference_update(ends.get(a, ()))
        active.update(starts.get(a, ()))
        out.append(Span(a, b, frozenset(active)))
    return out


def _model_labels(session: Session) -> dict[int, str]:
    return {m.id: m.label for m in session.scalars(select(ModelVersionRow))}


def _coder_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(CoderRow.id, CoderRow.name)).tuples().all())


def current_codes(session: Session) -> list[dict[str, str]]:
    """The codable codes of the newest codebook (name, description, dimension) for the code picker."""
    cb_id = session.scalar(select(func.max(CodeRow.codebook_version_id)))
    if cb_id is None:
        return []
    return [
        {"name": c.name, "description": c.description or "", "dimension": c.dimension or ""}
        for c in session.scalars(
            select(CodeRow)
            .where(CodeRow.codebook_version_id == cb_id, CodeRow.is_codable)
            .order_by(CodeRow.position)
        )
    ]


# --------------------------------------------------------------------------- queue


def queue_view(
    session: Session,
    *,
    source: str | None = None,
    code: str | None = None,
    model: str | None = None,
    limit: int = 50,
    keep: Callable[[Any], bool] | None = None,
    revisions: Mapping[int, int] | None = None,
) -> dict[str, Any]:
    """Pending deductive suggestions of current sources in review order, with the filter choices.

    Independent review passes ``keep`` (which pending rows are in this coder's queue) and ``revisions``
    (the coder's own revision per suggestion; 0 when absent) from :mod:`pipeline.project.independent`.
    """
    labels = _model_labels(session)
    q = (
        select(
            SuggestionRow.id,
            SuggestionRow.segment_id,
            SuggestionRow.source_id,
            SuggestionRow.code,
            SuggestionRow.score,
            SuggestionRow.priority,
            SuggestionRow.model_version_id,
        )
        .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
        .where(
            SuggestionRow.state == SuggestionState.PENDING,
            SuggestionRow.kind == "deductive",
            SourceRow.is_current,
        )
    )
    session.flush()  # what session.execute would autoflush; the rows are read on the Core connection,
    all_rows = session.connection().execute(q).all()  # without the ORM's per-row work (92k rows: 2x faster)
    if keep is not None:
        all_rows = [r for r in all_rows if keep(r)]
    names = {r.id: r.name for r in current_sources(session)}
    by_label = {v: k for k, v in labels.items()}
    model_choices = sorted({labels[i] for i in {r.model_version_id for r in all_rows}})
    for value, valid, what in (
        (source, sorted(names.values()), "source"),
        (model, model_choices, "model version"),
    ):
        if value and value not in valid and not (what == "model version" and value in by_label):
            raise InputError(f"unknown {what} {value!r}; choose one of {valid}")
    rows = (
        [
            r
            for r in all_rows
            if (not source or names.get(r.source_id) == source)
            and (not code or r.code == code)
            and (not model or labels.get(r.model_version_id) == model)
        ]
        if source or code or model
        else all_rows
    )
    n_decisions = session.scalar(
        select(func.count())
        .select_from(DecisionRow)
        .join(CoderRow, DecisionRow.coder_id == CoderRow.id)
        .where(DecisionRow.applied, CoderRow.kind == "human")
    )
    cold = (n_decisions or 0) < COLD_START_DECISIONS
    reps: set[int] = set()
    if cold:
        for (quotes,) in session.execute(select(CandidateRow.quotes)):
            reps.update(int(q) for q in quotes or ())
        best: dict[str, tuple[float, int]] = {}
        for r in rows:  # the strongest suggestion of each code: that code's representative
            if r.code not in best or r.score > best[r.code][0]:
                best[r.code] = (r.score, r.segment_id)
        reps.update(seg for _, seg in best.values())
    # the select's first six columns are a QueueItem's fields, in order
    items = [QueueItem(*r[:6]) for r in rows]
    ordered = order_queue(items, representatives=frozenset(reps), cold_start=cold, limit=limit)
    # the text shown is the suggestion's own span of the source (a passage of several segments is shown
    # whole: pipeline.passages), not its first segment's text
    details: dict[int, tuple[SuggestionRow, SegmentRow, str]] = {}
    if ordered:
        span_text = func.substr(
            SourceRow.text, SuggestionRow.start + 1, SuggestionRow.end - SuggestionRow.start
        )
        for s, seg, text in session.execute(
            select(SuggestionRow, SegmentRow, span_text)
            .join(SegmentRow, SuggestionRow.segment_id == SegmentRow.id)
            .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
            .where(SuggestionRow.id.in_([i.suggestion_id for i in ordered]))
        ).tuples():
            details[s.id] = (s, seg, text)
    out = []
    for i in ordered:
        s, seg, text = details[i.suggestion_id]
        out.append(
            {
                "id": s.id,
                "code": s.code,
                "score": s.score,
                "priority": s.priority,
                "revision": s.revision if revisions is None else revisions.get(s.id, 0),
                "model": labels.get(s.model_version_id, "?"),
                "source": names.get(s.source_id, "?"),
                "start": s.start,
                "end": s.end,
                "speaker": seg.speaker or "",
                "text": text,
            }
        )
    return {
        "rows": out,
        "total": len(rows),
        "cold_start": cold,
        "filters": {"source": source or "", "code": code or "", "model": model or ""},
        "choices": {
            "sources": sorted(names.values()),
            "codes": sorted({r.code for r in all_rows}),
            "models": model_choices,
        },
    }


# --------------------------------------------------------------------------- sources


def sources_view(session: Session, *, coder: CoderRow, blind: bool) -> list[dict[str, Any]]:
    """One row per current source: language, segments, codings (own only when blind), pending suggestions."""
    rows = current_sources(session)
    cq = select(CodingRow.source_id, func.count()).where(CodingRow.active).group_by(CodingRow.source_id)
    if blind and coder.role != "lead":
        cq = cq.where(CodingRow.coder_id == coder.id)
    codings = dict(session.execute(cq).tuples().all())
    pending = dict(
        session.execute(
            select(SuggestionRow.source_id, func.count())
            .where(SuggestionRow.state == SuggestionState.PENDING, SuggestionRow.kind == "deductive")
            .group_by(SuggestionRow.source_id)
        )
        .tuples()
        .all()
    )
    return [
        {
            "name": r.name,
            "language": r.language,
            "format": r.format,
            "characters": len(r.text),
            "codings": int(codings.get(r.id, 0)),
            "pending": int(pending.get(r.id, 0)),
        }
        for r in rows
    ]


def transcript_view(
    session: Session,
    config: ProjectConfig,
    name: str,
    *,
    coder: CoderRow,
    blind: bool,
    max_listed: int = 100,
) -> dict[str, Any]:
    """A source cut into speaker turns, each cut into spans at segment, coding and suggestion bounds.

    In blind mode a coder sees only their own codings (leads see everyone's). Every pending suggestion
    is highlighted; the side list shows the ``max_listed`` with the highest review priority. Each turn's
    spans come as ready HTML (``turn["html"]``, built by :func:`spans_html` with every text escaped):
    rendering ~1,000 spans through template attribute lookups was most of the page time.
    """
    src = get_source(session, name)
    text = src.text
    conn = session.connection()
    g, c, s, t = SegmentRow.__table__.c, CodingRow.__table__.c, SuggestionRow.__table__.c, TurnRow.__table__.c
    segs = (
        conn.execute(
            select(g.id, g.start, g.end)
            .where(g.source_id == src.id, g.scheme == scheme_key(config.segmentation))
            .order_by(g.idx)
        )
        .tuples()
        .all()
    )
    cq = select(c.id, c.start, c.end, c.code, c.coder_id, c.origin, c.memo, c.suggestion_id).where(
        c.source_id == src.id, c.active
    )
    hide_others = blind and coder.role != "lead"
    if hide_others:
        cq = cq.where(c.coder_id == coder.id)
    codings = conn.execute(cq.order_by(c.start, c.id)).all()
    suggestions = (
        conn.execute(
            select(s.id, s.start, s.end, s.code, s.score, s.revision, s.priority, s.model_version_id)
            .where(s.source_id == src.id, s.state == SuggestionState.PENDING, s.kind == "deductive")
            .order_by(s.start, s.rank)
        )
        .tuples()
        .all()
    )
    turn_rows = conn.execute(
        select(t.speaker, t.role, t.start, t.end).where(t.source_id == src.id).order_by(t.idx)
    ).all()
    coders = _coder_names(session)
    labels = _model_labels(session)
    # plain tuples from here on: attribute access on result rows costs more than the work itself
    marks: list[tuple[int, int, str]] = [(a, b, f"g{i}") for i, a, b in segs]
    marks += [(r[1], r[2], f"c{r[0]}") for r in codings]
    marks += [(r[1], r[2], f"s{r[0]}") for r in suggestions]
    marks.sort()
    code_of = {f"c{r[0]}": f"{r[3]} ({coders.get(r[4], '?')})" for r in codings}
    code_of.update({f"s{r[0]}": f"suggested: {r[3]} {r[4]:.2f}" for r in suggestions})
    turns = [tuple(r) for r in turn_rows] or [("", "unknown", 0, len(text))]
    starts = [m[0] for m in marks]
    longest = max((m[1] - m[0] for m in marks), default=0)
    blocks = []
    for speaker, role, t_start, t_end in turns:
        lo, hi = bisect_left(starts, t_start - longest), bisect_left(starts, t_end)
        local = [m for m in marks[lo:hi] if m[1] > t_start]
        html = spans_html(text, split_spans(t_start, t_end, local), code_of)
        blocks.append({"speaker": speaker, "role": role, "start": t_start, "end": t_end, "html": html})
    listed: list[Any] = sorted(suggestions, key=lambda r: (-r[6], r[1], r[0]))[:max_listed]
    return {
        "name": src.name,
        "version": src.version,
        "language": src.language,
        "length": len(text),
        "blind": hide_others,
        "turns": blocks,
        "codings": [
            {
                "id": r.id,
                "code": r.code,
                "coder": coders.get(r.coder_id, "?"),
                "own": r.coder_id == coder.id,
                "origin": r.origin,
                "memo": r.memo or "",
                "start": r.start,
                "end": r.end,
                "from_suggestion": r.suggestion_id is not None,
                "excerpt": _excerpt(text[r.start : r.end]),
            }
            for r in codings
        ],
        "suggestions_total": len(suggestions),
        "suggestions": [
            {
                "id": r.id,
                "code": r.code,
                "score": r.score,
                "revision": r.revision,
                "model": labels.get(r.model_version_id, "?"),
                "start": r.start,
                "end": r.end,
                "excerpt": _excerpt(text[r.start : r.end]),
            }
            for r in listed
        ],
    }


def spans_html(text: str, spans: Sequence[Span], code_of: dict[str, str]) -> Markup:
    """The ``<span>`` elements of one turn: ``text[start:end]`` with its offsets and marks, all escaped.

    ``code_of`` maps a coding or suggestion key (``c12``, ``s7``) to its label for the ``title``.
    Segment, coding and suggestion ids are listed in string order (as the script expects).

    >>> str(spans_html("a<b", [Span(0, 1, frozenset()), Span(1, 3, frozenset({"g4", "c2"}))], {"c2": 'x "&" y'}))
    '<span class="t" id="o0" data-start="0" data-end="1">a</span><span class="t coded" id="o1" data-start="1" data-end="3" data-seg="4" data-codings="2" title="x &#34;&amp;&#34; y">&lt;b</span>'
    """
    out: list[str] = []
    for sp in spans:
        keys = sp.keys
        seg = next((k[1:] for k in keys if k[0] == "g"), "")
        cods = sorted(k[1:] for k in keys if k[0] == "c")
        suggs = sorted(k[1:] for k in keys if k[0] == "s")
        cls = "t coded sugg" if cods and suggs else "t coded" if cods else "t sugg" if suggs else "t"
        parts = [f'<span class="{cls}" id="o{sp.start}" data-start="{sp.start}" data-end="{sp.end}"']
        if seg:
            parts.append(f' data-seg="{escape(seg)}"')
        if cods:
            parts.append(f' data-codings="{escape(" ".join(cods))}"')
        if suggs:
            parts.append(f' data-suggestions="{escape(" ".join(suggs))}"')
        title = _title([code_of[k] for k in sorted(keys) if k in code_of])
        if title:
            parts.append(f' title="{escape(title)}"')
        parts.append(f">{escape(text[sp.start : sp.end])}</span>")
        out.append("".join(parts))
    return Markup("".join(out))


def _title(parts: list[str], n: int = 6) -> str:
    return "; ".join(parts[:n]) + (f"; … {len(parts) - n} more" if len(parts) > n else "")


def _excerpt(text: str, n: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------- candidates and codebook


def candidates_view(session: Session) -> dict[str, Any]:
    """Pending candidate open codes, best-ranked first, with their quotes, member segments and the
    rank's reasons (``reasons``: coherence, sources, novelty, nearest code, placement), then resolved ones."""
    cands = list(session.scalars(select(CandidateRow).order_by(CandidateRow.id)))
    members: dict[int, list[dict[str, Any]]] = defaultdict(list)
    seg_ids: set[int] = set()
    for c in cands:
        seg_ids.update(int(q) for q in c.quotes or ())
    rows = session.execute(
        select(SuggestionRow, SegmentRow.text, SourceRow.name)
        .join(SegmentRow, SuggestionRow.segment_id == SegmentRow.id)
        .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
        .where(SuggestionRow.candidate_id.is_not(None))
        .order_by(SuggestionRow.id)
    ).tuples()
    for s, seg_text, src_name in rows:
        assert s.candidate_id is not None
        members[s.candidate_id].append(
            {"id": s.id, "source": src_name, "state": s.state, "text": seg_text, "segment": s.segment_id}
        )
    quote_text = {}
    if seg_ids:
        quote_text = {
            sid: (t, n)
            for sid, t, n in session.execute(
                select(SegmentRow.id, SegmentRow.text, SourceRow.name)
                .join(SourceRow, SegmentRow.source_id == SourceRow.id)
                .where(SegmentRow.id.in_(seg_ids))
            ).tuples()
        }
    out = []
    for c in cands:
        if c.state == "superseded":
            continue
        out.append(
            {
                "id": c.id,
                "label": c.label,
                "state": c.state,
                "coherence": c.coherence,
                "keyphrases": [p for p, _ in (c.keyphrases or [])][:10],
                "nearest": [(n, s) for n, s in (c.nearest_codes or [])][:3],
                "quotes": [
                    {"text": quote_text[int(q)][0], "source": quote_text[int(q)][1]}
                    for q in c.quotes or ()
                    if int(q) in quote_text
                ],
                "members": members.get(c.id, []),
                "resolution": c.resolution or {},
                "reasons": c.reasons or {},
            }
        )

    # pending in the rank discovery gave them (best first); candidates without one after, by id
    def rank(c: dict[str, Any]) -> tuple[float, int]:
        reasons: dict[str, Any] = c["reasons"]
        return (float(reasons.get("rank", float("inf"))), int(c["id"]))

    pending = sorted((c for c in out if c["state"] == CandidateState.PENDING), key=rank)
    done = [c for c in out if c["state"] != CandidateState.PENDING]
    return {"pending": pending, "resolved": done}


def codebook_view(session: Session) -> dict[str, Any]:
    """Every code of the newest codebook version, in order, with its version number and note."""
    from pipeline.store.schema import CodebookVersionRow

    row = session.scalar(select(CodebookVersionRow).order_by(CodebookVersionRow.id.desc()).limit(1))
    if row is None:
        raise NotFoundError("the project has no codebook yet; run `qualflow codebook import FILE` first")
    n = session.scalar(select(func.count()).select_from(CodebookVersionRow)) or 0
    return {
        "name": row.name,
        "version": int(n),
        "note": row.note,
        "codes": [
            {
                "name": c.name,
                "parent": c.parent or "",
                "dimension": c.dimension or "",
                "description": c.description or "",
                "codable": c.is_codable,
                "color": c.color or "",
            }
            for c in row.codes
        ],
        "codable": codable_names(session, row.id),
    }
