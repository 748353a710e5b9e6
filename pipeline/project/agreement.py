"""The agreement panel for a project: codings and model suggestions from the store, as coders.

People are coders by name; a model version is the coder ``model:<name>@<version>`` whose codings are
its top suggestion (rank 1, at or above the code's threshold) on each segment it was run on. A model
trained on these very codings agrees with them more than it would on new interviews: for an honest
model-vs-human figure use ``qualflow evaluate`` (grouped cross-validation), which reports κ per coder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import select

from pipeline.agreement import AgreementError
from pipeline.domain import Coding
from pipeline.errors import InputError
from pipeline.project.core import Project
from pipeline.store.mappers import segment_from_row
from pipeline.store.queries import (
    current_sources,
    hand_coded_sources,
    load_codings,
    load_segments,
    require_codebook,
)
from pipeline.store.schema import ModelVersionRow, SourceRow, SuggestionRow
from pipeline.text import counted

if TYPE_CHECKING:
    from pipeline.agreement_report import AgreementReport


def stored_model_codings(session, model_label: str | None = None) -> list[Coding]:  # type: ignore[no-untyped-def]
    """Rank-1 deductive suggestions of each model version as codings by ``model:<label>``."""
    q = (
        select(SuggestionRow, SourceRow.name, ModelVersionRow)
        .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
        .join(ModelVersionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
        .where(SourceRow.is_current, SuggestionRow.kind == "deductive", SuggestionRow.rank == 1)
    )
    out = []
    for s, sname, mv in session.execute(q):
        if model_label is not None and mv.label != model_label:
            continue
        out.append(Coding(sname, s.start, s.end, s.code, f"model:{mv.label}", origin="model"))
    return out


def model_coders(session) -> list[str]:  # type: ignore[no-untyped-def]
    """``model:<name>@<version>`` of every model version with deductive suggestions, oldest first.

    The DISTINCT runs over the ids only: PostgreSQL has no equality operator for the JSON columns of
    ``model_versions`` (``params``, ``metrics``), so a DISTINCT over whole rows fails there.
    """
    with_suggestions = (
        select(SuggestionRow.model_version_id).where(SuggestionRow.kind == "deductive").distinct()
    )
    q = select(ModelVersionRow).where(ModelVersionRow.id.in_(with_suggestions)).order_by(ModelVersionRow.id)
    return [f"model:{mv.label}" for mv in session.scalars(q)]


def project_agreement(
    project: Project,
    *,
    coders: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
    unit: str = "segment",
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float = 0.9,
    exclude_uncoded: bool = True,
    progress: bool = False,
) -> AgreementReport:
    """Agreement between ``coders`` (default: every human coder) on ``codes`` (default: all codable).

    ``progress`` shows progress bars on stderr when there are many codes."""
    from pipeline.agreement_report import agreement_panel

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
        human = [c for c in load_codings(session) if c.origin in ("human", "model-accepted", "imported")]
        humans = sorted({c.coder for c in human})
        wanted = list(coders) if coders else humans
        models = [c for c in wanted if c.startswith("model:")]
        machine: list[Coding] = []
        known_models = model_coders(session)
        for m in models:
            if m not in known_models:
                raise InputError(f"coder {m!r} made no suggestions; model coders here are {known_models}")
            machine += stored_model_codings(session, m.removeprefix("model:"))
        unknown = [c for c in wanted if not c.startswith("model:") and c not in humans]
        if unknown:
            raise InputError(f"unknown coder(s) {unknown}; coders with codings are {humans + known_models}")
        if not coders and len(humans) < 2:
            who = f"only by {humans[0]!r}" if humans else "by no one yet"
            hint = (
                f"; or compare with a model: --coders {humans[0]},{known_models[-1]}"
                if humans and known_models
                else ""
            )
            raise AgreementError(
                f"agreement needs codings by at least two coders, and this project has codings {who}; "
                f"import another coder's codings with `qualflow codings import`{hint}"
            )
        all_codes = [c.name for c in codebook.codes if c.is_codable]
        if codes:
            from pipeline.codebook import resolve_code

            # a unique name, a path (theme/Other) or a guid; an ambiguous name lists its candidates
            found = {c: resolve_code(c, codebook) for c in codes}
            bad = [c for c, code in found.items() if code is None or code.name not in all_codes]
            if bad:
                raise InputError(f"code(s) {bad} are not codable codes of the current codebook")
            codes = [code.name for code in found.values() if code is not None]
        chosen_codes = list(codes) if codes else all_codes
        seg_rows = load_segments(session, project.config)
        segments = [segment_from_row(r, name) for r, name in seg_rows]
        texts = {r.name: r.text for r in current_sources(session)}
        by_hand = hand_coded_sources(session, codes=all_codes)
    codings = [c for c in human + machine if c.coder in wanted]
    # a human coder has coded the sources they coded by hand; a suggestion they accepted or recoded in
    # an interview they have not coded does not make them a coder of all of it (every other coder's
    # codings there would count as disagreements). A model coder has coded where it suggested.
    coded_sources: dict[str, set[str]] = {
        c: set() if c.startswith("model:") else set(by_hand.get(c, ())) for c in wanted
    }
    for c in machine:
        if c.coder in coded_sources:
            coded_sources[c.coder].add(c.source)
    queue_only = [
        c for c in codings if not c.coder.startswith("model:") and c.source not in coded_sources[c.coder]
    ]
    report = agreement_panel(
        codings,
        segments,
        texts,
        wanted,
        chosen_codes,
        unit=unit,  # type: ignore[arg-type]
        n_boot=n_boot,
        seed=seed,
        threshold=threshold,
        exclude_uncoded=exclude_uncoded,
        coded_sources=coded_sources,
        progress=progress,
    )
    if queue_only:
        pairs = sorted({(c.coder, c.source) for c in queue_only})
        shown = ", ".join(f"{coder} in {source}" for coder, source in pairs[:5])
        more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
        note = (
            f"{counted(len(queue_only), 'coding')} made only through the suggestion queue, in interviews the coder has "
            f"not coded by hand ({shown}{more}), {'is' if len(queue_only) == 1 else 'are'} left out: one decision is not a coding of the whole "
            "interview (a coding round under the independent review policy compares the coders' decisions: "
            "docs/review.md)."
        )
        report = replace(report, warnings=(*report.warnings, note))
    return report
