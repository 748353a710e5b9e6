"""Adjudication: a lead settles the units of a round on which its coders disagree.

Each settlement is one ``adjudications`` row (unique per round and unit, a later one replaces the
earlier) and the consensus codings it made: codings of the coder ``consensus`` (origin ``consensus``)
on the unit's span, each pointing back to its adjudication (memo) which lists the coders' codings and
decisions it settled. The consensus coder has at most one active coding of a code on a span (as every
coder): where one exists already (another round settled the same unit the same way), the settlement
lists that coding and adds its own line to the coding's memo instead of making a second. Choices: a coder's name (take their codes), ``both`` (every code any coder
applied) or ``neither`` (only the codes they all applied); a memo says why.

Agreement against the consensus (:func:`consensus_agreement`) is on the units the round's
adjudications settled, and only those: a unit on which the coders agreed has no settlement, and counting
their shared codes as "the consensus" there would count every agreed unit as agreeing with it (inflating
each coder's figure). Each figure carries its ``n_units``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, or_, select, update

from pipeline.agreement import estimates, segment_units
from pipeline.errors import InputError, NotFoundError
from pipeline.project.codings import join_memos
from pipeline.project.core import Project
from pipeline.project.decisions import _SAME_CODING, _clean_memo, _lead, store_coding
from pipeline.project.rounds import CONSENSUS, RoundData, _round, round_data, round_panel
from pipeline.store.schema import (
    AdjudicationRow,
    CoderDecisionRow,
    CoderRow,
    CodingRow,
    RoundRow,
    SourceRow,
    SuggestionRow,
    utcnow,
)

CHOICES = ("both", "neither")
COEFFICIENTS = ("percent", "cohen", "krippendorff", "ac1")


@dataclass(frozen=True)
class Unit:
    """One disagreement unit of a round: the segment, its text, each coder's codes, and the
    settlement when there is one."""

    source: str
    start: int
    end: int
    text: str
    codes: dict[str, tuple[str, ...]]
    agreed: tuple[str, ...]
    adjudication: dict[str, Any] | None


def _round_to_adjudicate(project: Project, round_name: str | None) -> str | None:
    """``round_name``, or None for the open round; with no open round, an error naming ``--round`` with
    the latest closed round (a round is usually adjudicated after it closed), not "start a round"."""
    if round_name is not None:
        return round_name
    with project.store.transaction() as s:
        if s.scalar(select(RoundRow.id).where(RoundRow.state == "open").limit(1)) is not None:
            return None
        last = s.scalar(
            select(RoundRow.name).where(RoundRow.state == "closed").order_by(RoundRow.id.desc()).limit(1)
        )
    if last is None:
        raise NotFoundError("no round to adjudicate; start one with `qualflow round start NAME`")
    raise NotFoundError(
        f"no open round; name the round to adjudicate: --round {last} (the latest closed round; "
        f"in the review app /adjudicate?round={last})"
    )


def units_to_adjudicate(project: Project, round_name: str | None = None) -> tuple[RoundData, list[Unit]]:
    """The round's data and its disagreement units (segments), each with any settlement so far."""
    data = round_data(project, _round_to_adjudicate(project, round_name))
    report = round_panel(data, n_boot=0)
    with project.store.transaction() as s:
        done = {
            (name, a.start, a.end): {
                "choice": a.choice,
                "codes": list(a.codes),
                "memo": a.memo or "",
                "id": a.id,
            }
            for a, name in s.execute(
                select(AdjudicationRow, SourceRow.name)
                .join(SourceRow, AdjudicationRow.source_id == SourceRow.id)
                .where(AdjudicationRow.round_id == data.round.id)
            ).tuples()
        }
    out = []
    for d in report.disagreements:
        sets = [set(v) for v in d.codes.values()]
        agreed = tuple(sorted(set.intersection(*sets))) if sets else ()
        out.append(
            Unit(d.source, d.start, d.end, d.text, d.codes, agreed, done.get((d.source, d.start, d.end)))
        )
    return data, out


def _consensus_coder(session: Any) -> CoderRow:
    row = session.scalar(select(CoderRow).where(CoderRow.name == CONSENSUS))
    if row is None:
        row = CoderRow(name=CONSENSUS, kind="human", role="coder", password_hash=None)
        session.add(row)
        session.flush()
    return row


def adjudicate(
    project: Project,
    lead_name: str,
    *,
    source: str,
    start: int,
    end: int,
    choice: str,
    memo: str | None = None,
    round_name: str | None = None,
) -> dict[str, Any]:
    """Settle one disagreement unit of a round (see the module docstring); returns the settlement.

    In a closed round the stored results' coder-vs-consensus agreement (what ``round close`` printed and
    the report's round table shows) is recomputed with the round's resamples and seed, and returned as
    ``consensus``: a settlement after closing does not leave those figures stale."""
    data, units = units_to_adjudicate(project, round_name)
    unit = next((u for u in units if (u.source, u.start, u.end) == (source, start, end)), None)
    if unit is None:
        raise NotFoundError(f"{source} {start}..{end} is not a disagreement of round {data.round.name!r}")
    if choice in unit.codes:
        codes = set(unit.codes[choice])
    elif choice == "both":
        codes = set().union(*map(set, unit.codes.values()))
    elif choice == "neither":
        codes = set(unit.agreed)
    else:
        raise InputError(f"choose one of {[*unit.codes, *CHOICES]}, not {choice!r}")
    memo = _clean_memo(memo)
    with project.store.transaction() as s:
        lead = s.scalar(select(CoderRow).where(CoderRow.name == lead_name))
        if lead is None:
            raise NotFoundError(f"no coder {lead_name!r}")
        _lead(lead)
        rnd = _round(s, data.round.name)
        src = s.scalar(select(SourceRow).where(SourceRow.name == source, SourceRow.is_current))
        assert src is not None
        consensus = _consensus_coder(s)
        coder_ids = dict(
            s.execute(select(CoderRow.name, CoderRow.id).where(CoderRow.name.in_(list(data.coders))))
            .tuples()
            .all()
        )
        # what it settles: the coders' codings on the unit (overlap >= half the shorter) and their decisions
        settled_codings = [
            c.id
            for c in s.scalars(
                select(CodingRow).where(
                    CodingRow.source_id == src.id,
                    CodingRow.active,
                    CodingRow.coder_id.in_(list(coder_ids.values())),
                    CodingRow.start < end,
                    CodingRow.end > start,
                )
            )
            if 2 * (min(c.end, end) - max(c.start, start)) >= min(c.end - c.start, end - start)
        ]
        seg_id = data.segment_ids.get((source, start, end))
        # decisions on a suggestion of the unit's segment, or of a passage that spans the unit (a merged
        # suggestion is anchored at its first segment: pipeline.passages)
        settled_decisions = sorted(
            int(d)
            for d in s.scalars(
                select(CoderDecisionRow.decision_id)
                .join(SuggestionRow, CoderDecisionRow.suggestion_id == SuggestionRow.id)
                .where(
                    or_(
                        SuggestionRow.segment_id == seg_id,
                        and_(
                            SuggestionRow.source_id == src.id,
                            SuggestionRow.start <= start,
                            SuggestionRow.end >= end,
                        ),
                    ),
                    CoderDecisionRow.coder_id.in_(list(coder_ids.values())),
                    CoderDecisionRow.decision_id.is_not(None),
                )
            )
            if d is not None
        )
        row = s.scalar(
            select(AdjudicationRow).where(
                AdjudicationRow.round_id == rnd.id,
                AdjudicationRow.source_id == src.id,
                AdjudicationRow.start == start,
                AdjudicationRow.end == end,
            )
        )
        if row is None:
            row = AdjudicationRow(
                round_id=rnd.id, source_id=src.id, start=start, end=end, lead_id=lead.id, choice=choice
            )
            s.add(row)
        elif row.coding_ids:  # a new settlement replaces the old one: its codings are retracted
            # (but not one another settlement lists too: it settled that unit the same way)
            shared = {
                int(i)
                for ids in s.scalars(select(AdjudicationRow.coding_ids).where(AdjudicationRow.id != row.id))
                for i in ids or ()
            }
            old = [int(i) for i in row.coding_ids if int(i) not in shared]
            s.execute(update(CodingRow).where(CodingRow.id.in_(old)).values(active=False))
        row.lead_id, row.choice, row.memo = lead.id, choice, memo
        row.codes = sorted(codes)
        row.settled_coding_ids = settled_codings
        row.settled_decision_ids = settled_decisions
        s.flush()
        made: list[int] = []
        note = f"adjudication {row.id} by {lead.name} ({choice})" + (f": {memo}" if memo else "")
        for code in sorted(codes):
            same = {"source_id": src.id, "coder_id": consensus.id, "start": start, "end": end, "code": code}
            existing = s.connection().scalar(_SAME_CODING, same)
            if existing is None:  # else another round's settlement made it; store_coding: a concurrent one
                existing, stored = store_coding(
                    s,
                    {
                        **same,
                        "codebook_version_id": rnd.codebook_version_id,
                        "origin": "consensus",
                        "memo": note,
                    },
                )
                if stored:
                    made.append(existing)
                    continue
            kept = s.get(CodingRow, existing)
            assert kept is not None
            kept.memo = join_memos(kept.memo, note)
            made.append(existing)
        row.coding_ids = made
        s.flush()
        out: dict[str, Any] = {
            "id": row.id,
            "round": rnd.name,
            "round_closed": rnd.state == "closed",
            "choice": choice,
            "codes": sorted(codes),
            "coding_ids": list(row.coding_ids),
            "settled_coding_ids": settled_codings,
            "settled_decision_ids": settled_decisions,
        }
    if out["round_closed"]:
        out["consensus"] = refresh_consensus(project, data.round.name)
    return out


def refresh_consensus(project: Project, round_name: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Recompute a closed round's coder-vs-consensus agreement and store it in the round's results
    (``consensus``, with ``consensus_updated_at``), with the resamples and seed it was closed with. The
    round's other figures are unchanged (its codings are those stored up to its closing). The round's
    MLflow run keeps the figures of its closing."""
    data = round_data(project, round_name)
    results = dict(data.round.results)
    consensus = consensus_agreement(
        # a round closed before round close stored its resamples drew 500 (the default then)
        project,
        data,
        n_boot=int(results.get("n_boot", 500)),
        seed=int(results.get("seed", 0)),
    )
    with project.store.transaction() as s:
        rnd = _round(s, round_name)
        results = dict(rnd.results or {})
        if consensus:
            results["consensus"] = consensus
        else:
            results.pop("consensus", None)
        results["consensus_updated_at"] = utcnow().isoformat()
        rnd.results = results  # a new dict: the JSON column is written
        s.flush()
    return consensus


def consensus_agreement(
    project: Project,
    data: RoundData | None = None,
    *,
    round_name: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each coder of the round against the consensus (``{coder: {coefficient: {value, ci_low, ci_high,
    n_units}}}``) on the units the round's adjudications settled (see the module docstring); empty when
    the round was not adjudicated."""
    data = data or round_data(project, round_name)
    with project.store.transaction() as s:
        adjudicated = {
            (name, a.start, a.end)
            for a, name in s.execute(
                select(AdjudicationRow, SourceRow.name)
                .join(SourceRow, AdjudicationRow.source_id == SourceRow.id)
                .where(AdjudicationRow.round_id == data.round.id)
            ).tuples()
        }
    if not adjudicated:
        return {}
    coders = [*data.coders, CONSENSUS]
    seen = {**data.coded_sources, CONSENSUS: {s.source for s in data.segments}}
    units = segment_units([*data.codings, *data.consensus], data.segments, coders, list(data.codes), seen)
    settled = np.array(
        [
            (units.sources[units.source_index[u]], int(units.starts[u]), int(units.ends[u])) in adjudicated
            for u in range(units.presence.shape[1])
        ],
        dtype=bool,
    )
    P = units.presence[:, settled, :]  # (codes, settled units, coders + consensus)
    n = len(data.coders)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, coder in enumerate(data.coders):
        R = P[:, :, [i, n]]
        keep = ((R >= 0).all(axis=2)).all(axis=0)  # units the coder saw (the consensus saw every one)
        if keep.sum() < 1:
            continue
        R = np.ascontiguousarray(R[:, keep, :])
        defined, _ = estimates(
            COEFFICIENTS, R, n_categories=2, n_boot=n_boot, seed=seed, coders=[coder, CONSENSUS]
        )
        out[coder] = {
            name: {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n_units": e.n_units}
            for name, e in defined.items()
        }
    return out
