"""A coder who only decided on suggestions in an interview has not coded it: the rest of that interview is
neither a negative example for training nor "the coder saw nothing there" for agreement."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.project.agreement import project_agreement
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.corpus import load_corpus
from pipeline.project.decisions import decide
from pipeline.project.ingest import ingest
from pipeline.project.suggest import register_model_version
from pipeline.store.queries import get_or_create_coder, hand_coded_sources, require_codebook
from pipeline.store.schema import SegmentRow, SourceRow, SuggestionRow

T = (
    "Interviewer: How is the budget?\n"
    "Participant: The budget is too small. We cannot hire staff.\n"
    "Interviewer: And trust?\n"
    "Participant: Trust is low. They never answer letters.\n"
)
CODEBOOK = """name: tiny
codes:
  - name: budget
    description: Money.
  - name: trust
    description: Trust in the ministry.
"""


def span(sentence: str) -> tuple[int, int]:
    return T.index(sentence), T.index(sentence) + len(sentence)


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    p = init_project(tmp_path / "p")
    (tmp_path / "tx").mkdir()
    for name in ("i1", "i2"):
        (tmp_path / "tx" / f"{name}.txt").write_text(T, encoding="utf-8")
    ingest(p, [tmp_path / "tx" / "i1.txt", tmp_path / "tx" / "i2.txt"])
    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    import_codebook(p, tmp_path / "cb.yaml")
    return p


def _hand(tmp_path: Path, proj: Project, rows: list[tuple[str, str, str, str]]) -> None:
    lines = ["source,start,end,code,coder"]
    for source, sentence, code, coder in rows:
        a, b = span(sentence)
        lines.append(f"{source},{a},{b},{code},{coder}")
    path = tmp_path / "codings.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_codings(proj, path)


def _accept(proj: Project, source: str, sentence: str, code: str, coder: str) -> None:
    """``coder`` accepts a suggestion of ``code`` on the segment holding ``sentence``."""
    a, _ = span(sentence)
    with proj.store.transaction() as s:
        cb_row, _ = require_codebook(s)
        mv = register_model_version(
            s, name="m", suggester="fake", params={}, embedding="none", codebook_version_id=cb_row.id
        )
        seg = s.scalars(
            select(SegmentRow)
            .join(SourceRow, SegmentRow.source_id == SourceRow.id)
            .where(SourceRow.name == source, SegmentRow.start == a)
        ).one()
        row = SuggestionRow(
            source_id=seg.source_id,
            segment_id=seg.id,
            start=seg.start,
            end=seg.end,
            code=code,
            score=0.9,
            rank=1,
            model_version_id=mv.id,
            codebook_version_id=cb_row.id,
        )
        s.add(row)
        s.flush()
        decide(s, row.id, get_or_create_coder(s, coder), "accept")


def test_an_accepted_suggestion_does_not_make_its_interview_negative_examples(
    proj: Project, tmp_path: Path
) -> None:
    _hand(tmp_path, proj, [("i1", "The budget is too small.", "budget", "sara")])
    _accept(proj, "i2", "Trust is low.", "trust", "reza")
    with proj.store.transaction() as s:
        assert hand_coded_sources(s) == {"sara": {"i1"}}
        corpus = load_corpus(s, proj)
    kept = corpus.labelled()
    # i1 was coded by hand: all four answers, three of them negatives; i2: only the decided segment
    assert [
        (n, corpus.texts[corpus.segment_ids.index(sid)])
        for n, sid in zip(kept.source_names, kept.segment_ids, strict=True)
    ] == [
        ("i1", "The budget is too small."),
        ("i1", "We cannot hire staff."),
        ("i1", "Trust is low."),
        ("i1", "They never answer letters."),
        ("i2", "Trust is low."),
    ]
    assert kept.Y.tolist() == [[1, 0], [0, 0], [0, 0], [0, 0], [0, 1]]


def test_a_rejection_alone_labels_only_its_segment(proj: Project, tmp_path: Path) -> None:
    _hand(tmp_path, proj, [("i1", "Trust is low.", "trust", "sara")])
    _accept(proj, "i2", "We cannot hire staff.", "budget", "reza")
    with proj.store.transaction() as s:
        row = s.scalars(select(SuggestionRow)).one()
        decide(s, row.id, get_or_create_coder(s, "reza"), "undo")
        decide(s, row.id, get_or_create_coder(s, "reza"), "reject")
        corpus = load_corpus(s, proj)
    kept = corpus.labelled()
    assert kept.source_names == ["i1"] * 4 + ["i2"]
    assert kept.Y.tolist()[-1] == [-1, 0]


def test_agreement_counts_a_coder_only_where_they_coded_by_hand(proj: Project, tmp_path: Path) -> None:
    both = [
        ("i1", "The budget is too small.", "budget"),
        ("i1", "Trust is low.", "trust"),
    ]
    _hand(
        tmp_path,
        proj,
        [(src, sent, code, coder) for coder in ("sara", "reza") for src, sent, code in both]
        + [("i2", "The budget is too small.", "budget", "sara"), ("i2", "Trust is low.", "trust", "sara")],
    )
    # reza accepts one suggestion in i2, which he has not coded: sara's two codings there are not
    # disagreements with him
    _accept(proj, "i2", "They never answer letters.", "trust", "reza")
    report = project_agreement(proj, n_boot=0)
    assert report.pooled.estimates["cohen"].value == pytest.approx(1.0)
    assert report.pooled.estimates["cohen"].n_units == 4  # i1's four answers
    assert not report.disagreements
    (note,) = [w for w in report.warnings if "suggestion queue" in w]
    assert note.startswith("1 coding made only through the suggestion queue") and "reza in i2" in note


def test_only_a_source_with_a_coded_answer_can_be_held_out(proj: Project, tmp_path: Path) -> None:
    """i2's only coding sits on the interviewer's question (not read) and i1's only other one on a code
    the codebook dropped: neither can be scored, so training needs another coded interview, said
    before any flow runs (the audit's crash: an empty held-out set)."""
    from pipeline.errors import InputError
    from pipeline.project.retrain import check_trainable, labelled_sources

    _hand(
        tmp_path,
        proj,
        [
            ("i1", "The budget is too small.", "budget", "sara"),
            ("i2", "How is the budget?", "budget", "sara"),
        ],
    )
    assert labelled_sources(proj) == (["i1", "i2"], ["i1"])
    with pytest.raises(InputError, match=r"retraining needs codings on at least 2 sources \(found 1: i1\)"):
        check_trainable(proj)


def test_an_accepted_suggestion_brought_back_by_an_import_is_still_queue_work(proj: Project) -> None:
    """A .qdpx or codings file keeps a coding's origin model-accepted but not its suggestion: it does not
    make its coder a hand coder of the interview; nor does a coding of a code the codebook dropped."""
    from pipeline.domain import Coding
    from pipeline.project.codings import add_codings
    from pipeline.store.queries import current_sources

    a, b = span("Trust is low.")
    with proj.store.transaction() as s:
        cb_row, _ = require_codebook(s)
        rows = {r.name: r for r in current_sources(s)}
        add_codings(
            s,
            [
                Coding("i1", a, b, "trust", "reza", origin="model-accepted"),
                Coding("i2", a, b, "gone", "sara"),
                Coding("i2", a, b, "trust", "ana", origin="imported"),
            ],
            rows,
            cb_row.id,
        )
    with proj.store.transaction() as s:
        assert hand_coded_sources(s) == {"sara": {"i2"}, "ana": {"i2"}}
        assert hand_coded_sources(s, codes=["budget", "trust"]) == {"ana": {"i2"}}
        corpus = load_corpus(s, proj)
    assert corpus.hand_coded == frozenset({corpus.source_ids[corpus.source_names.index("i2")]})
