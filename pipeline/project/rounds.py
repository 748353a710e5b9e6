"""Coding rounds: assignments of interviews (or a seeded sample of segments) to coders under one
codebook version, and the agreement of each round.

A round is opened (``start_round``), coders are assigned (``assign``), they code (independent review,
imports, by hand), and closing it (``round_panel`` then ``close_round``; the ``round_close`` flow does
both and logs the round to MLflow) stores its agreement panel: the people's coefficients with their
intervals, the agreement of their decisions on the model's suggestions, and — when the round was
adjudicated — each coder against the consensus. The project report charts the closed rounds.

Units of a round are the segments of its assigned sources (or the sampled segments); a coder counts
as having seen exactly the sources they were assigned. Codes are the codable codes of the round's
codebook version. A round measures the coding not measured before: the active codings of its assigned
coders on its assigned sources stored up to its closing (up to now while it is open) and, for each
coder and source, after the closing of the latest earlier round that assigned that coder that source.
So a coder's codings from an earlier round on the same source do not count again, a retracted coding
does not count, and codings imported before the round opened (work done offline for it, or a
project's first double coding imported before its first round) do count unless an earlier round
already measured them. "Stored" is when a coding was written into this project (``stored_at``): a
REFI-QDA project import keeps the coding times of the tool it came from as ``created_at``, but counts
for the round during which it was imported.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.agreement_report import AgreementReport
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError, NotFoundError
from pipeline.project.core import Project
from pipeline.store.mappers import coding_from_row, segment_from_row
from pipeline.store.queries import current_sources, load_codings, load_segments
from pipeline.store.schema import (
    AssignmentRow,
    CodebookVersionRow,
    CoderDecisionRow,
    CodeRow,
    CoderRow,
    CodingRow,
    RoundRow,
    SourceRow,
    SuggestionRow,
    utcnow,
)

HUMAN_ORIGINS = ("human", "model-accepted", "imported")
CONSENSUS = "consensus"


# --------------------------------------------------------------------------- rounds and assignments


@dataclass(frozen=True)
class RoundInfo:
    id: int
    name: str
    state: str
    codebook_version_id: int
    codebook_version: int  # ordinal: 1 for the project's first codebook version
    assignments: dict[str, list[str]]  # coder -> sources (``name[n of m segments]`` when sampled)
    results: dict[str, Any] = field(default_factory=dict)


def _cb_ordinal(session: Session, cb_id: int) -> int:
    return int(session.scalar(select(func.count()).where(CodebookVersionRow.id <= cb_id)) or 0)


def _round(session: Session, name: str | None) -> RoundRow:
    if name is None:
        rows = list(session.scalars(select(RoundRow).where(RoundRow.state == "open").order_by(RoundRow.id)))
        if not rows:
            raise NotFoundError("no open round; start one with `qualflow round start NAME`")
        if len(rows) > 1:
            raise InputError(f"several rounds are open ({[r.name for r in rows]}); name one with --round")
        return rows[0]
    row = session.scalar(select(RoundRow).where(RoundRow.name == name))
    if row is None:
        known = list(session.scalars(select(RoundRow.name).order_by(RoundRow.id)))
        raise NotFoundError(f"no round {name!r}; rounds are {known}")
    return row


def _info(session: Session, row: RoundRow) -> RoundInfo:
    assigned: dict[str, list[str]] = {}
    q = (
        select(CoderRow.name, SourceRow.name, AssignmentRow.segment_ids)
        .join(CoderRow, AssignmentRow.coder_id == CoderRow.id)
        .join(SourceRow, AssignmentRow.source_id == SourceRow.id)
        .where(AssignmentRow.round_id == row.id)
        .order_by(CoderRow.name, SourceRow.ingest_order)
    )
    for coder, source, segs in session.execute(q).tuples():
        assigned.setdefault(coder, []).append(f"{source}[{len(segs)} segments]" if segs else source)
    return RoundInfo(
        row.id,
        row.name,
        row.state,
        row.codebook_version_id,
        _cb_ordinal(session, row.codebook_version_id),
        assigned,
        dict(row.results or {}),
    )


def start_round(project: Project, name: str) -> RoundInfo:
    """Open round ``name`` under the newest codebook version."""
    name = name.strip()
    if not name:
        raise InputError("a round needs a name, e.g. `qualflow round start R1`")
    with project.store.transaction() as s:
        if s.scalar(select(RoundRow.id).where(RoundRow.name == name)) is not None:
            raise InputError(f"round {name!r} exists already; choose another name")
        cb_id = s.scalar(select(func.max(CodebookVersionRow.id)))
        if cb_id is None:
            raise NotFoundError("the project has no codebook yet; run `qualflow codebook import FILE` first")
        row = RoundRow(name=name, codebook_version_id=int(cb_id), state="open", results={})
        s.add(row)
        s.flush()
        return _info(s, row)


def assign(
    project: Project,
    coders: Sequence[str],
    *,
    sources: Sequence[str] = (),
    sample: float | None = None,
    seed: int = 0,
    round_name: str | None = None,
) -> RoundInfo:
    """Assign ``sources`` (default: every current source) to each of ``coders`` in an open round.

    With ``sample`` (a share in (0, 1]) each source is cut to a seeded random sample of its segments,
    the same sample for every coder (double coding of, say, 20%).
    """
    if not coders:
        raise InputError("name at least one coder to assign (--coder NAME)")
    if sample is not None and not 0 < sample <= 1:
        raise InputError(f"--sample {sample} must be a share in (0, 1], e.g. 0.2 for 20%")
    with project.store.transaction() as s:
        rnd = _round(s, round_name)
        if rnd.state != "open":
            raise InputError(f"round {rnd.name!r} is closed; start a new round")
        rows = {c.name: c for c in s.scalars(select(CoderRow).where(CoderRow.name.in_(list(coders))))}
        for name in coders:
            if name not in rows:
                rows[name] = CoderRow(name=name, kind="human", role="coder")
                s.add(rows[name])
            elif rows[name].kind != "human":
                raise InputError(f"{name!r} is a model; assign people")
        s.flush()
        current = {r.name: r for r in current_sources(s)}
        wanted = list(sources) or list(current)
        unknown = [n for n in wanted if n not in current]
        if unknown:
            raise NotFoundError(f"no source(s) {unknown}; sources are {sorted(current)}")
        seg_ids: dict[str, list[int]] = {}
        if sample is not None:
            rng = random.Random(seed)
            by_source: dict[str, list[int]] = {}
            for seg, sname in load_segments(s, project.config, sources=wanted):
                by_source.setdefault(sname, []).append(seg.id)
            for sname in wanted:
                ids = sorted(by_source.get(sname, []))
                k = max(1, round(sample * len(ids))) if ids else 0
                seg_ids[sname] = sorted(rng.sample(ids, k))
        for name in coders:
            for sname in wanted:
                src = current[sname]
                existing = s.scalar(
                    select(AssignmentRow).where(
                        AssignmentRow.round_id == rnd.id,
                        AssignmentRow.coder_id == rows[name].id,
                        AssignmentRow.source_id == src.id,
                    )
                )
                segs = seg_ids.get(sname, [])
                if existing is None:
                    s.add(
                        AssignmentRow(
                            round_id=rnd.id, coder_id=rows[name].id, source_id=src.id, segment_ids=segs
                        )
                    )
                else:
                    existing.segment_ids = segs
        s.flush()
        return _info(s, rnd)


def list_rounds(project: Project) -> list[RoundInfo]:
    with project.store.transaction() as s:
        return [_info(s, r) for r in s.scalars(select(RoundRow).order_by(RoundRow.id))]


# --------------------------------------------------------------------------- a round's data


@dataclass(frozen=True)
class RoundData:
    """Everything agreement needs for one round (plain data)."""

    round: RoundInfo
    coders: tuple[str, ...]
    codes: tuple[str, ...]
    segments: tuple[Segment, ...]
    texts: dict[str, str]
    codings: tuple[Coding, ...]  # the assigned coders' codings on the round's sources, made during it
    consensus: tuple[Coding, ...]  # the coder ``consensus`` on the round's sources
    coded_sources: dict[str, set[str]]
    segment_ids: dict[tuple[str, int, int], int]  # (source, start, end) -> segment id
    as_of: datetime | None = None  # codings stored up to this time count (the closing, or when read)


def round_data(project: Project, round_name: str | None = None) -> RoundData:
    with project.store.transaction() as s:
        rnd = _round(s, round_name)
        info = _info(s, rnd)
        q = (
            select(CoderRow.name, SourceRow.name, AssignmentRow.segment_ids)
            .join(CoderRow, AssignmentRow.coder_id == CoderRow.id)
            .join(SourceRow, AssignmentRow.source_id == SourceRow.id)
            .where(AssignmentRow.round_id == rnd.id)
        )
        seen: dict[str, set[str]] = {}
        whole: set[str] = set()
        sampled: dict[str, set[int]] = {}
        for coder, source, segs in s.execute(q).tuples():
            seen.setdefault(coder, set()).add(source)
            if segs:
                sampled.setdefault(source, set()).update(int(x) for x in segs)
            else:
                whole.add(source)
        if not seen:
            raise InputError(
                f"round {rnd.name!r} has no assignments; `qualflow assign --coder NAME ...` first"
            )
        names = sorted({n for v in seen.values() for n in v})
        segments: list[Segment] = []
        seg_ids: dict[tuple[str, int, int], int] = {}
        for row, sname in load_segments(s, project.config, sources=names):
            if sname in whole or row.id in sampled.get(sname, set()):
                segments.append(segment_from_row(row, sname))
                seg_ids[(sname, row.start, row.end)] = row.id
        codes = tuple(
            s.scalars(
                select(CodeRow.name)
                .where(CodeRow.codebook_version_id == rnd.codebook_version_id, CodeRow.is_codable)
                .order_by(CodeRow.position)
            )
        )
        # an open round is measured as of now, and closing stamps this very time (close_round's
        # closed_at): a coding stored while the panel is computed counts for the next round, not for none
        as_of = rnd.closed_at or utcnow()
        codings = _round_codings(s, rnd, names, seen, as_of)
        # consensus codings are linked to the round by its adjudications (which may follow the closing)
        consensus = tuple(c for c in load_codings(s) if c.source in set(names) and c.coder == CONSENSUS)
        texts = {r.name: r.text for r in current_sources(s) if r.name in set(names)}
    coders = tuple(sorted(seen))
    return RoundData(info, coders, codes, tuple(segments), texts, codings, consensus, seen, seg_ids, as_of)


def _round_codings(
    s: Session, rnd: RoundRow, sources: Sequence[str], seen: dict[str, set[str]], as_of: datetime
) -> tuple[Coding, ...]:
    """The assigned coders' active codings on the round's sources that this round measures: those
    stored in the project (``stored_at``, not when another tool made them) up to ``as_of`` (its closing; the time of reading while it is open) and after the closing of the latest earlier round
    that assigned the same coder the same source (work an earlier round measured does not count again)."""
    earlier = (
        select(CoderRow.name, SourceRow.name, func.max(RoundRow.closed_at))
        .join(AssignmentRow, AssignmentRow.round_id == RoundRow.id)
        .join(CoderRow, AssignmentRow.coder_id == CoderRow.id)
        .join(SourceRow, AssignmentRow.source_id == SourceRow.id)
        # rounds closed before this one opened (two rounds open at once do not cut into each other)
        .where(
            RoundRow.id != rnd.id,
            RoundRow.state == "closed",
            RoundRow.closed_at.is_not(None),
            RoundRow.closed_at <= rnd.opened_at,
        )
        .group_by(CoderRow.name, SourceRow.name)
    )
    since = {(c, src): t for c, src, t in s.execute(earlier).tuples() if t is not None}
    q = (
        select(CodingRow, SourceRow.name, CoderRow.name)
        .join(SourceRow, CodingRow.source_id == SourceRow.id)
        .join(CoderRow, CodingRow.coder_id == CoderRow.id)
        .where(
            CodingRow.active,
            SourceRow.is_current,
            SourceRow.name.in_(list(sources)),
            CoderRow.name.in_(list(seen)),
            CodingRow.origin.in_(HUMAN_ORIGINS),
        )
        .order_by(SourceRow.ingest_order, CodingRow.start, CodingRow.id)
    )
    # when each coding was stored here (a REFI-QDA import keeps the date it was made elsewhere)
    q = q.where(func.coalesce(CodingRow.stored_at, CodingRow.created_at) <= as_of)
    out = []
    for row, sname, cname in s.execute(q).tuples():
        start = since.get((cname, sname))
        if start is not None and (row.stored_at or row.created_at) <= start:
            continue
        out.append(coding_from_row(row, sname, cname))
    return tuple(out)


def round_panel(
    data: RoundData,
    *,
    extra: Sequence[Coding] = (),
    extra_coders: Sequence[str] = (),
    n_boot: int = 1000,
    seed: int = 0,
) -> AgreementReport:
    """The segment-unit agreement panel of a round's coders (plus ``extra_coders``, e.g. the champion
    model as ``model:<name>@<version>`` with its codings in ``extra``)."""
    from pipeline.agreement_report import agreement_panel

    coders = [*data.coders, *extra_coders]
    seen = dict(data.coded_sources)
    every = {s.source for s in data.segments}
    for c in extra_coders:
        seen[c] = set(every)
    return agreement_panel(
        [*data.codings, *extra],
        data.segments,
        data.texts,
        coders,
        list(data.codes),
        unit="segment",
        n_boot=n_boot,
        seed=seed,
        coded_sources=seen,
    )


def not_measured(data: RoundData) -> str | None:
    """Why the people's agreement of a round cannot be measured yet, or None when it can.

    Agreement compares two coders' codes on the same text. With no coding of the round's codes on its
    segments, every coder "applies no code" everywhere and percent agreement would be a perfect 1.0
    that measured nothing; with codings only on sources no other coder coded, the comparison is of one
    coder's codes with another's not having started. Neither is reported as a coefficient.
    """
    from pipeline.agreement import segment_units

    if not data.codings:
        return "no codings in this round yet"
    units = segment_units(data.codings, data.segments, data.coders, data.codes, data.coded_sources)
    coded = (units.presence == 1).any(axis=0)  # (units, coders): the coder applied some code there
    if not coded.any():
        return "no codings of the round's codes on its segments yet"
    by_source: dict[str, set[str]] = {}
    for u, i in zip(*np.nonzero(coded), strict=True):
        by_source.setdefault(units.sources[units.source_index[u]], set()).add(data.coders[i])
    if all(len(who) < 2 for who in by_source.values()):
        done = "; ".join(f"{', '.join(sorted(who))} coded {src}" for src, who in sorted(by_source.items()))
        return f"no source coded by two of the round's coders yet ({done}): nothing to compare"
    return None


def one_coder_sources(data: RoundData) -> dict[str, str]:
    """Sources of the round that only one of the coders assigned to them coded (source -> coder): the
    others' absence of codings there counts as applying no code."""
    if not data.codings:
        return {}
    by_source: dict[str, set[str]] = {}
    for c in data.codings:
        if c.code in data.codes:
            by_source.setdefault(c.source, set()).add(c.coder)
    out = {}
    for src, who in sorted(by_source.items()):
        assigned = [c for c in data.coders if src in data.coded_sources.get(c, set())]
        if len(who) == 1 and len(assigned) > 1:
            out[src] = next(iter(who))
    return out


# --------------------------------------------------------------------------- decisions on suggestions


DECISION_VALUE = {"accepted": 1, "rejected": 0, "recoded": 0}


def decision_matrix(
    session: Session, coders: Sequence[str], *, sources: Sequence[str] | None = None
) -> tuple[list[int], np.ndarray]:
    """Suggestions every one of ``coders`` decided (independent review), and the (n, n_coders) matrix
    of their decisions: 1 = accepted, 0 = rejected or recoded (the suggested code not applied)."""
    q = (
        select(CoderRow.name, CoderDecisionRow.suggestion_id, CoderDecisionRow.state)
        .join(CoderRow, CoderDecisionRow.coder_id == CoderRow.id)
        .join(SuggestionRow, CoderDecisionRow.suggestion_id == SuggestionRow.id)
        .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
        .where(CoderRow.name.in_(list(coders)), CoderDecisionRow.state.in_(list(DECISION_VALUE)))
    )
    if sources is not None:
        q = q.where(SourceRow.name.in_(list(sources)))
    by: dict[int, dict[str, int]] = {}
    for name, sid, state in session.execute(q).tuples():
        by.setdefault(int(sid), {})[name] = DECISION_VALUE[state]
    ids = sorted(sid for sid, d in by.items() if len(d) == len(coders))
    R = np.array([[by[sid][c] for c in coders] for sid in ids], dtype=np.int64).reshape(len(ids), len(coders))
    return ids, R


def decision_agreement(
    project: Project,
    coders: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Agreement of ``coders``' own decisions (accept vs not) on the suggestions they all decided.

    Returns ``{"units": n, "suggestions": [...], "coefficients": {name: Estimate}, "undefined": {...}}``.
    """
    from pipeline.agreement import estimates
    from pipeline.agreement_report import default_coefficients

    if len(coders) < 2:
        raise InputError("decision agreement needs at least two coders")
    with project.store.transaction() as s:
        ids, R = decision_matrix(s, coders, sources=sources)
    if not ids:
        return {"units": 0, "suggestions": [], "coefficients": {}, "undefined": {}}
    names = default_coefficients("segment", len(coders))
    defined, undefined = estimates(names, R, n_categories=2, n_boot=n_boot, seed=seed, coders=list(coders))
    return {"units": len(ids), "suggestions": ids, "coefficients": defined, "undefined": undefined}


# --------------------------------------------------------------------------- closing and history


def estimates_dict(report: AgreementReport) -> dict[str, dict[str, Any]]:
    """Pooled coefficients of a report as plain data: value, interval, units."""
    return {
        name: {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n_units": e.n_units}
        for name, e in report.pooled.estimates.items()
    }


def codebook_changes(session: Session, old_id: int, new_id: int) -> dict[str, list[str]]:
    """Codes added, removed, merged (a removed code named in a remaining code's definition) and
    redefined (description, inclusion, exclusion or parent changed) from one version to another."""

    def codes(cb: int) -> dict[str, CodeRow]:
        return {c.name: c for c in s_.scalars(select(CodeRow).where(CodeRow.codebook_version_id == cb))}

    s_ = session
    old, new = codes(old_id), codes(new_id)
    removed = sorted(set(old) - set(new))
    merged = []
    for r in removed:
        into = [
            n
            for n, c in new.items()
            if r in " ".join((c.description or "", c.inclusion or "", " ".join(map(str, c.examples or []))))
        ]
        if into:
            merged.append(f"{r} → {into[0]}")
    merged_names = {m.split(" → ")[0] for m in merged}

    def definition(c: CodeRow) -> tuple[str, str, str, str | None]:
        return (c.description or "", c.inclusion or "", c.exclusion or "", c.parent)

    return {
        "added": sorted(set(new) - set(old)),
        "removed": [r for r in removed if r not in merged_names],
        "merged": merged,
        "redefined": sorted(n for n in set(old) & set(new) if definition(old[n]) != definition(new[n])),
    }


def changes_since_previous(project: Project, round_name: str) -> dict[str, Any]:
    """``codebook_changes`` (see :func:`codebook_changes`) since the last closed round before this one,
    and that round's name as ``previous_round``."""
    with project.store.transaction() as s:
        rnd = _round(s, round_name)
        prev = s.scalar(
            select(RoundRow)
            .where(RoundRow.id < rnd.id, RoundRow.state == "closed")
            .order_by(RoundRow.id.desc())
            .limit(1)
        )
        changes = (
            codebook_changes(s, prev.codebook_version_id, rnd.codebook_version_id)
            if prev is not None and prev.codebook_version_id != rnd.codebook_version_id
            else {}
        )
        return {"codebook_changes": changes, "previous_round": prev.name if prev else None}


def close_round(
    project: Project,
    round_name: str | None,
    results: dict[str, Any],
    run_id: str | None,
    closed_at: datetime | None = None,
) -> RoundInfo:
    """Store what closing computed and mark the round closed, at ``closed_at``: the time the results'
    codings were read (:attr:`RoundData.as_of`), so what the round measured and what a later round
    leaves out meet exactly; now when not given."""
    with project.store.transaction() as s:
        rnd = _round(s, round_name)
        if rnd.state != "open":
            raise InputError(f"round {rnd.name!r} is closed already")
        rnd.results = results
        rnd.state = "closed"
        rnd.closed_at = closed_at or utcnow()
        rnd.mlflow_run_id = run_id
        s.flush()
        return _info(s, rnd)


def round_results(
    data: RoundData,
    people: AgreementReport | None,
    *,
    with_model: AgreementReport | None = None,
    decisions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plain-data results of a round (what is stored and logged).

    When :func:`not_measured` gives a reason (or there is no panel), ``coefficients`` is empty and
    ``not_measured`` holds the reason: a round nobody coded yet is not reported as perfect agreement.
    """
    reason = not_measured(data) if people is not None else (not_measured(data) or "no agreement panel")
    out: dict[str, Any] = {
        "round": data.round.name,
        "codebook_version": data.round.codebook_version,
        "codebook_version_id": data.round.codebook_version_id,
        "coders": list(data.coders),
        "sources": sorted({s.source for s in data.segments}),
        "units": people.pooled.n_units if people is not None else len(data.segments),
        "codes": len(data.codes),
        "coefficients": estimates_dict(people) if people is not None and reason is None else {},
    }
    if reason is not None:
        out["not_measured"] = reason
        with_model = None  # the people coded nothing to compare the model with
    elif one := one_coder_sources(data):
        out["one_coder_sources"] = one
    if with_model is not None:
        out["model_coders"] = [c for c in with_model.coders if c.startswith("model:")]
        out["with_model"] = estimates_dict(with_model)
        out["pairwise"] = [
            {"a": a, "b": b, "kappa": k} for (a, b), k in with_model.pairwise.items() if k is not None
        ]
    if decisions and decisions.get("units"):
        out["decisions"] = {
            "units": decisions["units"],
            "coefficients": {
                n: {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n_units": e.n_units}
                for n, e in decisions["coefficients"].items()
            },
        }
    return out


def closed_rounds(project: Project) -> list[dict[str, Any]]:
    """The results of every closed round, oldest first (for the report)."""
    with project.store.transaction() as s:
        return [
            {**(r.results or {}), "round": r.name, "mlflow_run_id": r.mlflow_run_id}
            for r in s.scalars(select(RoundRow).where(RoundRow.state == "closed").order_by(RoundRow.id))
        ]
