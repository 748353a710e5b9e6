"""Issue #14: adjacent segments whose best code agrees are queued as one suggestion on the passage.

A tiny hand-made interview (two answers, an interviewer question between them) and a hand-made ranking,
so every offset and score below is exact.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import select

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.passages import merge_passages
from pipeline.project.codebooks import import_codebook
from pipeline.project.core import Project
from pipeline.project.corpus import load_corpus
from pipeline.project.decisions import decide
from pipeline.project.ingest import ingest
from pipeline.project.suggest import Ranking, export_suggestions, queue_suggestions, register_model_version
from pipeline.store.schema import CoderRow, CodingRow, ModelVersionRow, SuggestionRow

A1 = "The budget was cut. We lost staff. Money was short."
A2 = "Money came back. Work got slow."
TEXT = f"Interviewer: How was the year?\nMina: {A1}\nInterviewer: And then?\nMina: {A2}\n"
CODEBOOK = (
    "name: tiny\ncodes:\n  - name: budget\n    description: Money.\n  - name: pace\n    description: Speed.\n"
)
# per participant segment (s0..s2 the first answer, s3..s4 the second): (code, score) best first
PICKS = [
    [("budget", 0.9), ("pace", 0.4)],
    [("budget", 0.6)],
    [("budget", 0.7)],
    [("budget", 0.5)],  # same code as s2, but after the interviewer's question: a new passage
    [("pace", 0.8)],  # a different code ends the run
]


def write(path: Path, data: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data, encoding="utf-8")
    return path


def queue(
    project: Project,
    tmp_path: Path,
    *,
    merge: bool = True,
    cap: int = 5,
    version: str = "1",
    ranking: list[list[tuple[str, float]]] | None = None,
    name: str = "stub",
    cover: bool = True,
) -> None:
    """Ingest the interview and codebook, then queue ``ranking`` (default :data:`PICKS`) as model
    ``name@version``'s ranking."""
    ingest(project, [write(tmp_path / "mina.txt", TEXT)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    with project.store.transaction() as s:
        corpus = load_corpus(s, project)
        assert corpus.texts == [
            "The budget was cut.",
            "We lost staff.",
            "Money was short.",
            "Money came back.",
            "Work got slow.",
        ]
        col = {c: i for i, c in enumerate(corpus.codes)}
        picks = [[(col[c], p) for c, p in row] for row in (ranking or PICKS)]
        P = np.zeros((len(picks), len(corpus.codes)))
        for i, row in enumerate(picks):
            for ci, p in row:
                P[i, ci] = p
        model: Any = SimpleNamespace(classes_=corpus.codes, thresholds_=np.full(len(corpus.codes), 0.3))
        mv = register_model_version(
            s,
            name=name,
            version=version,
            suggester="stub",
            params={},
            embedding="none",
            codebook_version_id=corpus.codebook_version_id,
        )
        queue_suggestions(
            s,
            model=model,
            model_row=mv,
            corpus=corpus,
            ranking=Ranking(P, picks),
            merge=merge,
            max_passage_segments=cap,
            cover=cover,
        )


def stored(project: Project) -> list[tuple[str, int, int, str, float, int]]:
    with project.store.transaction() as s:
        rows = s.scalars(select(SuggestionRow).order_by(SuggestionRow.start, SuggestionRow.rank)).all()
        return [(TEXT[r.start : r.end], r.start, r.end, r.code, round(r.score, 4), r.rank) for r in rows]


def span(text: str) -> tuple[int, int]:
    start = TEXT.index(text)
    return start, start + len(text)


def test_agreeing_segments_of_one_turn_become_one_passage(project: Project, tmp_path: Path) -> None:
    queue(project, tmp_path)
    assert stored(project) == [
        (A1, *span(A1), "budget", 0.9, 1),  # s0..s2: one passage, the members' best score
        ("The budget was cut.", *span("The budget was cut."), "pace", 0.4, 2),  # s0's alternative stays
        ("Money came back.", *span("Money came back."), "budget", 0.5, 1),
        ("Work got slow.", *span("Work got slow."), "pace", 0.8, 1),
    ]


def test_the_cap_splits_a_long_run_and_merging_can_be_turned_off(project: Project, tmp_path: Path) -> None:
    queue(project, tmp_path, cap=2)
    got = stored(project)
    assert [g[0] for g in got if g[3] == "budget"] == [
        "The budget was cut. We lost staff.",
        "Money was short.",
        "Money came back.",
    ]


def test_without_merging_every_segment_is_its_own_suggestion(project: Project, tmp_path: Path) -> None:
    queue(project, tmp_path, merge=False)
    assert len(stored(project)) == 6


def states(project: Project) -> list[tuple[str, str, str, str]]:
    with project.store.transaction() as s:
        rows = s.execute(
            select(SuggestionRow, ModelVersionRow.version)
            .join(ModelVersionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
            .where(SuggestionRow.code == "budget", SuggestionRow.start < span(A2)[0])
            .order_by(ModelVersionRow.version, SuggestionRow.start)
        ).tuples()
        return [(v, TEXT[r.start : r.end], r.code, r.state) for r, v in rows]


def test_a_passage_supersedes_older_per_segment_suggestions(project: Project, tmp_path: Path) -> None:
    """A database with per-segment suggestions (version 1, merging off) gets passages from version 2."""
    queue(project, tmp_path, merge=False, version="1")
    queue(project, tmp_path, version="2")
    queue(project, tmp_path, version="2")  # the same model version again: nothing new
    assert states(project) == [
        ("1", "The budget was cut.", "budget", "superseded"),
        ("1", "We lost staff.", "budget", "superseded"),
        ("1", "Money was short.", "budget", "superseded"),
        ("2", A1, "budget", "pending"),
    ]
    queue(project, tmp_path, merge=False, version="3")  # and a passage is superseded segment by segment
    assert [x[1:] for x in states(project) if x[0] in "23"] == [
        (A1, "budget", "superseded"),
        ("The budget was cut.", "budget", "pending"),
        ("We lost staff.", "budget", "pending"),
        ("Money was short.", "budget", "pending"),
    ]


def test_a_decided_segment_is_not_merged_over(project: Project, tmp_path: Path) -> None:
    queue(project, tmp_path, merge=False, version="1")
    with project.store.transaction() as s:
        ana = CoderRow(name="ana", kind="human", role="coder")
        s.add(ana)
        s.flush()
        lost = s.scalar(select(SuggestionRow).where(SuggestionRow.start == span("We lost staff.")[0]))
        assert lost is not None
        decide(s, lost.id, ana, "reject")
    queue(project, tmp_path, version="2")
    assert [x for x in states(project) if x[0] == "2"] == [
        # the decided segment breaks the run and is recorded as a duplicate; its neighbours stay alone
        ("2", "The budget was cut.", "budget", "pending"),
        ("2", "We lost staff.", "budget", "duplicate"),
        ("2", "Money was short.", "budget", "pending"),
    ]


def test_accept_codes_the_passage_and_reject_marks_every_segment(project: Project, tmp_path: Path) -> None:
    queue(project, tmp_path)
    with project.store.transaction() as s:
        ana = CoderRow(name="ana", kind="human", role="coder")
        s.add(ana)
        s.flush()
        passage = s.scalar(
            select(SuggestionRow).where(SuggestionRow.start == span(A1)[0], SuggestionRow.rank == 1)
        )
        assert passage is not None
        alone = s.scalar(select(SuggestionRow).where(SuggestionRow.start == span("Money came back.")[0]))
        assert alone is not None
        decide(s, passage.id, ana, "accept")
        decide(s, alone.id, ana, "reject")
        codings = [(c.start, c.end, c.code) for c in s.scalars(select(CodingRow))]
    assert codings == [(*span(A1), "budget")]  # one coding with the passage's offsets

    # a rejected passage: every segment it spans is a negative for its code
    with project.store.transaction() as s:
        passage = s.scalar(
            select(SuggestionRow).where(SuggestionRow.start == span(A1)[0], SuggestionRow.rank == 1)
        )
        assert passage is not None
        decide(s, passage.id, s.scalar(select(CoderRow).where(CoderRow.name == "ana")), "undo")  # type: ignore[arg-type]
        decide(s, passage.id, s.scalar(select(CoderRow).where(CoderRow.name == "ana")), "reject")  # type: ignore[arg-type]
        corpus = load_corpus(s, project)
    b = corpus.codes.index("budget")
    assert corpus.Y[:, b].tolist() == [-1, -1, -1, -1, 0]  # s0..s2 (the passage) and s3 (its own reject)


def test_export_lists_the_passage_once(project: Project, tmp_path: Path) -> None:
    queue(project, tmp_path)
    n = export_suggestions(project, tmp_path / "s.csv")
    with open(tmp_path / "s.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert n == 4 and list(rows[0]) == [
        "source",
        "segment",
        "start",
        "end",
        "code",
        "score",
        "rank",
        "model",
        "kind",
        "state",
        "decided_by",
        "decided_at",
    ]
    budget = [(r["segment"], int(r["start"]), int(r["end"])) for r in rows if r["code"] == "budget"]
    first_segment = budget[0][0]  # the passage's first segment (the interviewer's question is segment 0)
    assert budget == [(first_segment, *span(A1)), (str(int(first_segment) + 4), *span("Money came back."))]


def test_merge_passages_rules_on_positions() -> None:
    """The pure function: turn keys and segment order decide what is adjacent."""
    picks = [[(0, 0.5)], [(0, 0.6)], [(0, 0.7)], [(0, 0.8)]]
    pos: list[Any] = [
        ("t1", 1),
        ("t1", 2),
        ("t1", 4),
        None,
    ]  # a gap (index 3: another speaker), an interviewer
    assert [p.rows for p in merge_passages(picks, pos)] == [(0, 1), (2,), (3,)]
    assert [p.rows for p in merge_passages(picks, [("t", i) for i in range(4)], max_segments=3)] == [
        (0, 1, 2),
        (3,),
    ]
    refuse = merge_passages(picks, [("t", i) for i in range(4)], mergeable=lambda i, c: i != 1)
    assert [p.rows for p in refuse] == [(0,), (1,), (2, 3)]
    with pytest.raises(ValueError):
        merge_passages(picks, pos, max_segments=0)


@pytest.mark.parametrize(
    ("default", "bad", "message"),
    [
        ("merge_passages = true", "merge_passages = 1", "must be true or false"),
        ("max_passage_segments = 5", "max_passage_segments = 0", "must be at least 1"),
        ("source_floor = 0.0", "source_floor = 1.5", r"source_floor = 1.5 must be a score in \[0, 1\]"),
        ("source_floor = 0.0", 'source_floor = "low"', "source_floor = 'low' must be a number"),
    ],
)
def test_bad_passage_settings_are_config_errors(
    project: Project, default: str, bad: str, message: str
) -> None:
    path = project.root / "qualflow.toml"
    text = path.read_text(encoding="utf-8")
    assert default in text  # `qualflow init` writes the default
    path.write_text(text.replace(default, bad), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(project.root)


def test_a_lifted_category_is_prioritised_by_the_score_it_was_suggested_with(
    project: Project, tmp_path: Path
) -> None:
    """The category rule suggests a parent with its children's summed score; the review priority
    (high near the threshold) follows that score, not the parent's raw one."""
    ingest(project, [write(tmp_path / "mina.txt", TEXT)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    with project.store.transaction() as s:
        corpus = load_corpus(s, project)
        P = np.zeros((len(corpus.texts), len(corpus.codes)))
        P[0] = [0.05, 0.4]  # budget scores 0.05 raw; as the lifted category it is suggested with 0.6
        picks: list[list[tuple[int, float]]] = [[(0, 0.6), (1, 0.4)], [], [], [], []]
        model: Any = SimpleNamespace(classes_=corpus.codes, thresholds_=np.full(len(corpus.codes), 0.3))
        mv = register_model_version(
            s, name="stub", suggester="stub", params={}, embedding="none", codebook_version_id=1
        )
        queue_suggestions(s, model=model, model_row=mv, corpus=corpus, ranking=Ranking(P, picks), merge=False)
    with project.store.transaction() as s:
        got = s.execute(select(SuggestionRow.code, SuggestionRow.score, SuggestionRow.priority)).all()
    # 1 - |score - 0.3| / 0.7: from 0.6, 0.571 (from the raw 0.05 it would be 0.643)
    assert sorted((c, round(sc, 3), round(pr, 3)) for c, sc, pr in got) == [
        ("budget", 0.6, 0.571),
        ("pace", 0.4, 0.857),
    ]


def ana_answers_pace_on_s4(project: Project, state: str) -> None:
    """ana's own decision (``[review] policy = "independent"``) on the queued pace of "Work got slow.":
    the suggestion itself stays pending."""
    from pipeline.store.schema import CoderDecisionRow

    with project.store.transaction() as s:
        ana = CoderRow(name="ana", kind="human", role="coder")
        s.add(ana)
        s.flush()
        pace_s4 = s.scalar(
            select(SuggestionRow).where(
                SuggestionRow.code == "pace", SuggestionRow.start == span("Work got slow.")[0]
            )
        )
        assert pace_s4 is not None
        s.add(CoderDecisionRow(suggestion_id=pace_s4.id, coder_id=ana.id, state=state))


def test_a_newer_suggest_run_supersedes_older_pending_suggestions_of_any_code_on_its_segments(
    project: Project, tmp_path: Path
) -> None:
    # `qualflow suggest` version 1 suggested pace on s0 (rank 2) and on s4; its version 2 sees only budget
    queue(project, tmp_path, merge=False, version="1", name="local-stub")
    # under the independent policy ana has already answered v1's pace on s4: it stays in the queue
    ana_answers_pace_on_s4(project, "rejected")
    only_budget = [
        [("budget", 0.9)],
        [("budget", 0.6)],
        [("budget", 0.7)],
        [("budget", 0.5)],
        [("budget", 0.6)],
    ]

    def pace() -> list[tuple[str, str, str]]:
        with project.store.transaction() as s:
            rows = s.execute(
                select(SuggestionRow, ModelVersionRow.version)
                .join(ModelVersionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
                .where(SuggestionRow.code == "pace")
                .order_by(SuggestionRow.start)
            ).tuples()
            return [(v, TEXT[r.start : r.end], r.state) for r, v in rows]

    # the process flow's champion (not a `suggest` run) never clears what a fitted model queued
    queue(project, tmp_path, merge=False, version="1", ranking=only_budget, name="qualflow-suggester")
    assert pace() == [("1", "The budget was cut.", "pending"), ("1", "Work got slow.", "pending")]
    queue(project, tmp_path, merge=False, version="2", ranking=only_budget, name="local-stub")
    assert pace() == [("1", "The budget was cut.", "superseded"), ("1", "Work got slow.", "pending")]


def test_a_new_version_of_an_independently_answered_suggestion_does_not_supersede_it(
    project: Project, tmp_path: Path
) -> None:
    """Under `[review] policy = "independent"` an answered suggestion stays pending (each coder's own
    decision is kept apart); a newer model suggesting the same code there records it as a duplicate
    instead of superseding the answered one, which would drop ana's answer from the queue."""
    queue(project, tmp_path, merge=False, version="1", name="local-stub")
    ana_answers_pace_on_s4(project, "accepted")
    same = [[("budget", 0.9)], [("budget", 0.6)], [("budget", 0.7)], [("budget", 0.5)], [("pace", 0.8)]]
    queue(project, tmp_path, merge=False, version="2", ranking=same, name="local-stub")
    with project.store.transaction() as s:
        rows = s.execute(
            select(ModelVersionRow.version, SuggestionRow.state)
            .join(ModelVersionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
            .where(SuggestionRow.code == "pace", SuggestionRow.start == span("Work got slow.")[0])
            .order_by(ModelVersionRow.version)
        ).all()
    assert [tuple(r) for r in rows] == [("1", "pending"), ("2", "duplicate")]


@pytest.mark.parametrize("cover", [True, False])
def test_a_hand_coded_segment_is_covered_except_under_independent_review(
    project: Project, tmp_path: Path, cover: bool
) -> None:
    """ana coded "We lost staff." as budget by hand: with the default policy the model's budget there
    is covered (kept for agreement, not queued); under `independent` review (cover=False) it is
    queued, so ana's coding does not hide it from ben, who decides for himself."""
    from pipeline.project.codings import import_codings

    ingest(project, [write(tmp_path / "mina.txt", TEXT)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    a, b = span("We lost staff.")
    import_codings(
        project, write(tmp_path / "c.csv", f"source,start,end,code,coder\nmina,{a},{b},budget,ana\n")
    )
    queue(project, tmp_path, merge=False, cover=cover)
    with project.store.transaction() as s:
        state = s.scalar(
            select(SuggestionRow.state).where(SuggestionRow.start == a, SuggestionRow.code == "budget")
        )
    assert state == ("covered" if cover else "pending")


def test_a_model_on_an_older_codebook_queues_only_current_codes_and_says_so(
    project: Project, tmp_path: Path
) -> None:
    """The process flow's champion was trained when the codebook had 'morale' and not 'pace': its
    'morale' is not queued (a code no one can accept), and the run's note names both changes."""
    from pipeline.project.process import ModelChoice, codebook_note

    ingest(project, [write(tmp_path / "mina.txt", TEXT)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    with project.store.transaction() as s:
        corpus = load_corpus(s, project)
        classes = ["budget", "morale"]  # what the model knows
        P = np.array([[0.9, 0.8]] * 5)
        picks = [[(0, 0.9), (1, 0.8)]] * 5
        model: Any = SimpleNamespace(classes_=classes, thresholds_=np.full(2, 0.3))
        mv = register_model_version(
            s,
            name="old",
            version="1",
            suggester="stub",
            params={},
            embedding="none",
            codebook_version_id=corpus.codebook_version_id,
        )
        queue_suggestions(s, model=model, model_row=mv, corpus=corpus, ranking=Ranking(P, picks), merge=False)
        codes = sorted(set(s.scalars(select(SuggestionRow.code)).all()))
    assert codes == ["budget"]
    note = codebook_note(project, ModelChoice(model, mv.id, "old@1"))
    assert note == (
        "old@1 was trained on another version of the codebook: 1 code added since (pace) gets no "
        "suggestions; 1 code the codebook no longer has (morale) is not queued; retrain with "
        "`qualflow train` to suggest with the current codebook"
    )
    same = SimpleNamespace(classes_=["budget", "pace"])
    assert codebook_note(project, ModelChoice(cast(Any, same), mv.id, "new@2")) is None


def test_a_model_whose_codes_are_ordered_otherwise_reads_the_right_human_codings(
    project: Project, tmp_path: Path
) -> None:
    """The champion knows 'morale' (since dropped) and orders its codes [morale, pace, budget]; the
    codebook's columns are [budget, pace]. The covered check must read pace's column, not the model's
    (the review's crash: index 2 of a 2-column label matrix)."""
    from pipeline.project.codings import import_codings

    ingest(project, [write(tmp_path / "mina.txt", TEXT)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    a, b = span("Work got slow.")
    import_codings(
        project, write(tmp_path / "c.csv", f"source,start,end,code,coder\nmina,{a},{b},pace,ana\n")
    )
    with project.store.transaction() as s:
        corpus = load_corpus(s, project)
        assert corpus.codes == ["budget", "pace"]
        P = np.array([[0.1, 0.8, 0.9]] * 5)
        picks = [[(2, 0.9), (1, 0.8)]] * 5
        model: Any = SimpleNamespace(classes_=["morale", "pace", "budget"], thresholds_=np.full(3, 0.3))
        mv = register_model_version(
            s,
            name="old",
            version="1",
            suggester="stub",
            params={},
            embedding="none",
            codebook_version_id=corpus.codebook_version_id,
        )
        queue_suggestions(s, model=model, model_row=mv, corpus=corpus, ranking=Ranking(P, picks), merge=False)
        got = s.execute(
            select(SuggestionRow.start, SuggestionRow.code, SuggestionRow.state).order_by(
                SuggestionRow.start, SuggestionRow.code
            )
        ).all()
    states = {(TEXT[start:].split(".")[0], code): state for start, code, state in got}
    assert states[("Work got slow", "pace")] == "covered"
    assert states[("Work got slow", "budget")] == "pending"
    assert states[("The budget was cut", "pace")] == "pending"
