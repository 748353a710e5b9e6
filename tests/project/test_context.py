"""The previous turn (the interviewer's question before an answer) reaches the suggesters that read it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from pipeline.embed.base import HashingEmbedder
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project
from pipeline.project.corpus import load_corpus
from pipeline.project.ingest import ingest
from pipeline.project.suggest import suggest
from pipeline.store.schema import SegmentRow, SourceRow, SuggestionRow

CODEBOOK = (
    "name: habits\ncodes:\n  - name: drinking\n    description: alcohol\n"
    "  - name: smoking\n    description: tobacco\n"
)
QUESTION = {"drinking": "Do you drink beer on weekends?", "smoking": "Do you smoke cigarettes at work?"}
ANSWER = "Yes I do. Most of the time."


def write(path: Path, data: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data, encoding="utf-8")
    return path


def transcript(order: list[str]) -> str:
    return "".join(f"Interviewer: {QUESTION[c]}\nP: {ANSWER}\n" for c in order)


def test_corpus_carries_the_previous_turn_for_turns_and_sentences(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "a.txt", transcript(["drinking", "smoking"]))])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    with project.store.transaction() as s:
        c = load_corpus(s, project)  # default segmentation: sentences
    # both sentences of each answer get the interviewer's question; interviewer turns are not suggested
    assert c.texts == ["Yes I do.", "Most of the time."] * 2
    assert c.prev_texts == [QUESTION["drinking"]] * 2 + [QUESTION["smoking"]] * 2
    assert c.subset([2]).prev_texts == [QUESTION["smoking"]]
    assert c.prev2_texts == [""] * 2 + [ANSWER] * 2  # the turn before the question: the last answer
    project.config.segmentation.mode = "turn"
    ingest(project, [write(tmp_path / "b.txt", "P: Hello there.\nInterviewer: Why?\nP: Because.\n")])
    with project.store.transaction() as s:
        n_turn = s.query(SegmentRow).filter(SegmentRow.scheme == "turn").count()
        c = load_corpus(s, project, sources=["b"])
    assert n_turn == 3  # the configured scheme is stored at ingest, interviewer turns included
    assert c.texts == ["Hello there.", "Because."]
    assert c.prev_texts == ["", "Why?"]
    assert c.prev2_texts == ["", "Hello there."]


def coded_project(project: Project, tmp_path: Path) -> None:
    """Six coded interviews and a new one; every answer reads the same, only the question differs."""
    rng = np.random.RandomState(0)
    names = []
    for i in range(6):
        order = list(rng.permutation(["drinking", "smoking"] * 3))
        write(tmp_path / f"s{i}.txt", transcript(order))
        names.append((f"s{i}", order))
    write(tmp_path / "new.txt", transcript(["smoking", "drinking", "smoking"]))
    ingest(project, [tmp_path / f"s{i}.txt" for i in range(6)] + [tmp_path / "new.txt"])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    rows = ["source,start,end,code,coder"]
    for name, order in names:
        text = transcript(order)
        pos = 0
        for code in order:
            start = text.index(ANSWER, pos)
            rows.append(f"{name},{start},{start + len(ANSWER)},{code},ann")
            pos = start + len(ANSWER)
    import_codings(project, write(tmp_path / "codings.csv", "\n".join(rows) + "\n"))
    project.config.suggester.params["exclusive"] = True  # auto: the linear model with context


def test_suggest_uses_the_question_before_an_identical_answer(project: Project, tmp_path: Path) -> None:
    coded_project(project, tmp_path)
    report = suggest(project, sources=["new"], embedder=HashingEmbedder(64))
    assert report.model_label.startswith("local-linear")
    with project.store.transaction() as s:
        got = s.execute(select(SuggestionRow.start, SuggestionRow.code).order_by(SuggestionRow.start)).all()
    # one code per answer, following its question: the answer's 2 sentences agree, so they are one
    # passage suggestion ([suggester] merge_passages)
    assert [code for _, code in got] == ["smoking", "drinking", "smoking"]
    # without the context the same answers cannot be told apart
    project.config.suggester.params.update(
        context_weight=0.0, context_tfidf_weight=0.0, context2_tfidf_weight=0.0
    )
    with project.store.transaction() as s:
        s.query(SuggestionRow).delete()
    suggest(project, sources=["new"], embedder=HashingEmbedder(64))
    with project.store.transaction() as s:
        codes = s.scalars(select(SuggestionRow.code)).all()
    assert len(set(codes)) == 1


def test_train_and_evaluate_pass_the_context(project: Project, tmp_path: Path) -> None:
    from pipeline.project.evaluate import evaluate_project
    from pipeline.project.retrain import (
        evaluate_on_heldout,
        fit_challenger,
        load_training_set,
        predicted_codings,
    )

    coded_project(project, tmp_path)
    emb = HashingEmbedder(64)
    ts = load_training_set(project, emb)
    model = fit_challenger(ts, emb, "auto", project.config.suggester.params)
    assert model.wants_context() and ts.X_prev is not None and ts.X_prev.any()
    assert evaluate_on_heldout(model, ts).metrics["macro_f1"] == 1.0
    assert len(predicted_codings(model, ts, "model:x")) == len(ts.corpus.texts)
    # a multi-label model codes each segment with its rank-1 suggestion under the queue's rule (what
    # the model coder's stored suggestions are), not with every code above its threshold
    from pipeline.project.suggest import rank_codes

    multi = fit_challenger(ts, emb, "evidence", {})
    side = ts.side(multi)
    texts = side.pop("texts")
    firsts = [
        row[0]
        for row in rank_codes(multi, ts.X, texts, 1, groups=ts.corpus.source_names, **side).picks
        if row
    ]
    got = predicted_codings(multi, ts, "model:y")
    assert len({(c.source, c.start) for c in got}) == len(got) == len(firsts)
    assert [c.code for c in got] == [multi.classes_[j] for j, _ in firsts]
    # a round's champion codes every segment of the round's sources, the uncoded "new" one too
    from pipeline.project.retrain import scoring_set

    whole = scoring_set(project, emb, ["new", "s0"])
    assert sorted(set(whole.corpus.source_names)) == ["new", "s0"] and len(whole.eval_idx) == len(whole.X)
    coded = predicted_codings(model, whole, "model:x")
    assert len(coded) == len(whole.corpus.texts) and {c.source for c in coded} == {"new", "s0"}
    metrics = evaluate_project(project, suggester="auto", folds=3, embedder=emb)
    assert metrics["suggester"] == "auto" and metrics["macro_f1"] == 1.0
    first = metrics["operating_points"][0]
    assert first["default"] and first["covered"] == 1.0 and first["precision"] == 1.0  # the queue's


def test_the_process_flow_embeds_and_passes_the_context(project: Project, tmp_path: Path) -> None:
    from pipeline.project import process as processing
    from pipeline.project.retrain import fit_challenger, load_training_set
    from pipeline.project.suggest import register_model_version

    coded_project(project, tmp_path)
    emb = HashingEmbedder(64)
    model = fit_challenger(load_training_set(project, emb), emb, "auto", project.config.suggester.params)
    with project.store.transaction() as s:
        row = register_model_version(
            s, name="m", suggester="linear", params={}, embedding=emb.fingerprint, codebook_version_id=1
        )
        choice = processing.ModelChoice(model, row.id, row.label)
    plain = processing.embed_sources(project, emb, ["new"])
    vectors = processing.embed_sources(project, emb, ["new"], context=True)
    assert set(vectors) - set(plain) == set(QUESTION.values())  # the questions, for X_prev only
    new = processing.IngestedFile(tmp_path / "new.txt", "new", "0" * 64, "added")
    (out,) = processing.suggest_for_files(project, [new], vectors, choice, 3)
    assert out.suggestions == 3  # one passage per answer, as `qualflow suggest` makes them
    with project.store.transaction() as s:
        got = s.execute(
            select(SuggestionRow.start, SuggestionRow.end, SuggestionRow.code).order_by(SuggestionRow.start)
        ).all()
    assert [c for _, _, c in got] == ["smoking", "drinking", "smoking"]
    text = transcript(["smoking", "drinking", "smoking"])
    assert {text[a:b] for a, b, _ in got} == {ANSWER}


# --- windows: each segment with its neighbours in the same turn (the evidence suggester's passages) ---


def test_each_segments_window_is_composed_within_its_turn(project: Project, tmp_path: Path) -> None:
    from pipeline.project.corpus import window_vectors

    text = "Interviewer: Why?\nP: One. Two. Three.\nInterviewer: And?\nP: Four.\n"
    ingest(project, [write(tmp_path / "a.txt", text), write(tmp_path / "doc.txt", "Alpha. Beta. Gamma.\n")])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    with project.store.transaction() as s:
        c = load_corpus(s, project, sources=["a"])
        d = load_corpus(s, project, sources=["doc"])
    assert c.texts == ["One.", "Two.", "Three.", "Four."]
    E = np.eye(4, dtype=np.float32)
    W = window_vectors(E, c.positions)
    r2, r3 = np.float32(1 / np.sqrt(2)), np.float32(1 / np.sqrt(3))
    # the mean of the segment and its neighbours in the turn, scaled back to unit length; never across
    # turns: "Four." is alone in its answer (the question is another turn) and keeps its own vector
    np.testing.assert_allclose(W, [[r2, r2, 0, 0], [r3, r3, r3, 0], [0, r2, r2, 0], [0, 0, 0, 1]], rtol=1e-6)
    # a one-turn document: the neighbouring sentences; vectors of any length keep their mean length
    np.testing.assert_allclose(
        window_vectors(2 * np.eye(3, dtype=np.float32), d.positions)[1], 2 * np.array([r3, r3, r3]), rtol=1e-6
    )
    # a subset with a gap ("Two." left out: a source known only through the queue): "One." and
    # "Three." are not neighbours
    sub = c.subset([0, 2, 3])
    np.testing.assert_array_equal(window_vectors(np.eye(3, dtype=np.float32), sub.positions), np.eye(3))
    # a segment without a position (or past the end of ``positions``) is its own window
    np.testing.assert_array_equal(window_vectors(E, [None, None, None, None]), E)
    np.testing.assert_array_equal(window_vectors(E, []), E)


def test_evidence_gets_the_windows_in_suggest_train_evaluate_and_process(
    project: Project, tmp_path: Path
) -> None:
    from pipeline.project import process as processing
    from pipeline.project.evaluate import evaluate_project
    from pipeline.project.retrain import fit_challenger, load_training_set
    from pipeline.project.suggest import register_model_version

    coded_project(project, tmp_path)
    project.config.suggester.params.pop("exclusive")  # auto: the evidence suggester
    emb = HashingEmbedder(64)
    report = suggest(project, sources=["new"], embedder=emb)
    assert report.model_label.startswith("local-evidence") and report.suggestions > 0
    ts = load_training_set(project, emb)
    model = fit_challenger(ts, emb, "auto", project.config.suggester.params)
    assert type(model).__name__ == "EvidenceSuggester" and model.uses_window_
    assert ts.X_window is not None and ts.X_prev is None  # windows composed, not the previous turn
    assert "macro_f1" in evaluate_project(project, suggester="auto", folds=3, embedder=emb)
    vectors = processing.embed_sources(project, emb, ["new"])
    assert set(vectors) == set(ANSWER.replace(". ", ".|").split("|"))  # the segments alone: no window text
    with project.store.transaction() as s:
        row = register_model_version(
            s, name="m", suggester="evidence", params={}, embedding=emb.fingerprint, codebook_version_id=1
        )
        choice = processing.ModelChoice(model, row.id, row.label)
    new = processing.IngestedFile(tmp_path / "new.txt", "new", "0" * 64, "added")
    (out,) = processing.suggest_for_files(project, [new], vectors, choice, 3)
    assert out.suggestions > 0


def test_labelled_keeps_the_sources_someone_said_something_about() -> None:
    from pipeline.domain import Code, Codebook
    from pipeline.project.corpus import Corpus

    def corpus(Y: list[list[int]]) -> Corpus:
        return Corpus(
            segment_ids=[10, 11, 12, 13, 14],
            source_ids=[1, 1, 2, 2, 3],
            source_names=["a", "a", "b", "b", "c"],
            texts=["t0", "t1", "t2", "t3", "t4"],
            spans=[(1, 0, 2), (1, 3, 5), (2, 0, 2), (2, 3, 5), (3, 0, 2)],
            codes=["x", "y"],
            codebook=Codebook([Code("x"), Code("y")]),
            codebook_version_id=1,
            Y=np.array(Y, dtype=np.int8),
        )

    # a: coded; b: nothing said (unknown, not negative); c: only a rejected suggestion (an explicit negative)
    c = corpus([[1, 0], [0, 0], [0, 0], [0, 0], [0, -1]])
    kept = c.labelled()
    assert kept.segment_ids == [10, 11, 14] and kept.source_names == ["a", "a", "c"]
    assert kept.Y.tolist() == [[1, 0], [0, 0], [0, -1]]
    nothing = corpus([[0, 0]] * 5)
    assert nothing.labelled() is nothing  # the cold start reads every segment
    every = corpus([[1, 0], [0, 0], [0, 1], [0, 0], [-1, 0]])
    assert every.labelled() is every


def test_suggest_does_not_learn_from_the_interviews_still_to_code(
    project: Project, tmp_path: Path, monkeypatch: object
) -> None:
    import pipeline.project.suggest as suggesting

    coded_project(project, tmp_path)
    seen: list[list[str]] = []
    fit = suggesting.fit_suggester

    def spy(model, X, corpus, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(sorted(set(corpus.source_names)))
        return fit(model, X, corpus, *args, **kwargs)

    monkeypatch.setattr(suggesting, "fit_suggester", spy)  # type: ignore[attr-defined]
    report = suggest(project, embedder=HashingEmbedder(64))  # every source, "new" included
    assert seen == [[f"s{i}" for i in range(6)]]  # "new" has no coding: not 6 negative rows
    with project.store.transaction() as s:
        sources = {
            name
            for (name,) in s.execute(
                select(SourceRow.name).join(SuggestionRow, SuggestionRow.source_id == SourceRow.id).distinct()
            )
        }
    assert "new" in sources and report.segments == 6 * 12 + 6  # but it is suggested for, with the rest


def test_process_reports_a_new_versions_codings_and_counts_only_queued_suggestions(
    project: Project, tmp_path: Path
) -> None:
    """A new version of a coded interview dropped in the inbox says what became of its codings, as
    `qualflow ingest` does; the suggestions it reports are the ones queued, not those a coding covers."""
    from pipeline.project import process as processing
    from pipeline.project.ingest import parse_file
    from pipeline.project.retrain import fit_challenger, load_training_set
    from pipeline.project.suggest import register_model_version

    coded_project(project, tmp_path)
    text = (tmp_path / "s0.txt").read_text(encoding="utf-8")
    changed = write(tmp_path / "inbox" / "s0.txt", text + "Interviewer: Anything else?\nP: No.\n")
    (f,) = processing.ingest_files(project, [parse_file(changed, project.config)])
    assert (f.status, f.note) == ("new-version", "6 codings carried forward, 0 left on version 1")
    emb = HashingEmbedder(64)
    model = fit_challenger(load_training_set(project, emb), emb, "auto", project.config.suggester.params)
    with project.store.transaction() as s:
        row = register_model_version(
            s, name="m", suggester="linear", params={}, embedding=emb.fingerprint, codebook_version_id=1
        )
        choice = processing.ModelChoice(model, row.id, row.label)
    vectors = processing.embed_sources(project, emb, ["s0"], context=True)
    (out,) = processing.suggest_for_files(project, [f], vectors, choice, 1)
    with project.store.transaction() as s:
        states = s.scalars(select(SuggestionRow.state).where(SuggestionRow.model_version_id == row.id)).all()
    # the six coded answers' sentences are covered (their code is the model's top one); the new answer
    # is queued
    assert sorted(states) == ["covered"] * 12 + ["pending"]
    assert out.suggestions == 1 and out.note == f.note
    report = processing.ProcessReport(model=row.label, processed=[out])
    assert report.lines()[1] == (
        "  s0: new-version, 13 segments, 1 suggestions; 6 codings carried forward, 0 left on version 1"
    )


def test_suggest_refits_after_an_upgrade_of_qualflow_or_its_libraries(
    project: Project, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The no-op check keys on the versions that fit the model: the same inputs after an upgrade of
    qualflow, scikit-learn or numpy fit a new version instead of "nothing changed"."""
    import pipeline.project.suggest as suggest_module

    coded_project(project, tmp_path)
    first = suggest(project, sources=["new"], embedder=HashingEmbedder(64))
    assert suggest(project, sources=["new"], embedder=HashingEmbedder(64)).unchanged
    upgraded = {**suggest_module.code_versions(), "scikit-learn": "99.0"}
    monkeypatch.setattr(suggest_module, "code_versions", lambda: upgraded)
    again = suggest(project, sources=["new"], embedder=HashingEmbedder(64))
    assert not again.unchanged and again.model_label != first.model_label
