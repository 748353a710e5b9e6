"""Language coverage: a Persian source in an English-model project is flagged and gets suggestions
from character n-gram features fitted on the project's text; a per-language model setting works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.embed.languages import CharNgramEmbedder, LanguageRoutedEmbedder, model_languages
from pipeline.embed.model_dir import packaged_model_dir
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.embedding import coverage_notes, project_embedder
from pipeline.project.ingest import ingest
from pipeline.project.suggest import suggest, suggestion_rows
from pipeline.store.queries import load_segments
from pipeline.text import detect_language
from tests.fixtures.persian.build import write_files

pytestmark = pytest.mark.model


def persian_project(root: Path) -> tuple[Project, dict[str, list[tuple[str, str]]]]:
    truth = write_files(root / "files", coded=3)
    proj = init_project(root / "p")
    ingest(proj, sorted((root / "files").glob("fa*.txt")))
    import_codebook(proj, root / "files" / "codebook.yaml")
    import_codings(proj, root / "files" / "codings.csv")
    return proj, truth


def top1_accuracy(proj: Project, source: str, truth: list[tuple[str, str]]) -> float:
    with proj.store.transaction() as session:
        rows = [r for r in suggestion_rows(session, state=None) if r["source"] == source and r["rank"] == 1]
        segs = {r.idx: r.text for r, _ in load_segments(session, proj.config, sources=[source])}
    code_of = {answer: code for code, answer in truth}
    assert len(segs) == len(truth)
    hits = [code_of[segs[r["segment"]]] == r["code"] for r in rows]
    return sum(hits) / len(segs)


def test_minilm_declares_english() -> None:
    assert model_languages(packaged_model_dir()) == ("en",)


def test_persian_source_is_flagged_and_scored_with_the_fallback(tmp_path: Path) -> None:
    proj, truth = persian_project(tmp_path)
    notes = coverage_notes(proj)
    assert len(notes) == 1 and "Persian (fa)" in notes[0] and "character n-gram" in notes[0]
    emb = project_embedder(proj, progress=False)
    assert isinstance(emb, LanguageRoutedEmbedder) and emb.fallback_languages == ("fa",)
    assert "charngram-v1" in emb.fingerprint
    # the fallback is fitted once and kept: a second embedder has the same fingerprint
    assert project_embedder(proj, progress=False).fingerprint == emb.fingerprint
    X = emb.encode(["بودجه کم است", "The budget was cut."])
    base_dim = emb.dims()[0]
    assert np.allclose(X[0, :base_dim], 0) and np.allclose(X[1, base_dim:], 0)
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    report = suggest(proj, sources=["fa04"], embedder=emb)
    assert report.suggestions > 0
    acc = top1_accuracy(proj, "fa04", truth["fa04"])
    assert acc > 1 / 3 + 0.2, acc  # chance is 1/3 (three codes, one per answer)
    # the HTML report says it too, under the corpus table
    from pipeline.project.report import write_project_report

    html = write_project_report(proj, tmp_path / "report").read_text(encoding="utf-8")
    assert html.count('class="language-note"') == 1 and "Persian (fa)" in html
    proj.close()


def test_a_language_can_use_its_own_model(tmp_path: Path) -> None:
    proj, truth = persian_project(tmp_path)
    other = tmp_path / "models" / "fa-model"
    other.parent.mkdir()
    other.symlink_to(packaged_model_dir(), target_is_directory=True)
    proj.config.embedding.languages = {"fa": f"sentence-transformers:{other}"}
    assert coverage_notes(proj) == []
    emb = project_embedder(proj, progress=False)
    assert isinstance(emb, LanguageRoutedEmbedder) and emb.fallback_languages == ()
    assert "fa=st:fa-model:" in emb.fingerprint
    assert suggest(proj, sources=["fa04"], embedder=emb).suggestions > 0
    proj.close()


def test_charngram_fallback_separates_topics() -> None:
    texts = ["کمبود بودجه داریم", "بودجه کافی نیست", "سامانه از کار افتاد", "سامانه خطا دارد"]
    e = CharNgramEmbedder().fit(texts, languages=["fa"])
    X = e.encode(texts)
    S = X @ X.T
    assert S[0, 1] > S[0, 2] and S[2, 3] > S[2, 1]


EN = {
    "funding": ["The budget was cut in half this year.", "We have no money for new staff."],
    "coordination": ["The ministries never talk to each other.", "Working with the banks takes months."],
    "information-systems": [
        "The new database crashes every week.",
        "Our software cannot read the bank's files.",
    ],
}


def english_files(folder: Path, n: int, coded: int) -> tuple[list[Path], list[str]]:
    """``n`` English interviews ``en1..`` (one answer per code of :data:`EN`) in ``folder``, and the
    codings CSV lines (header first) of the first ``coded``."""
    rows = ["source,start,end,code,coder"]
    paths = []
    for i in range(n):
        text = ""
        for code, answers in EN.items():
            text += "Interviewer: Tell me more?\n"
            start = len(text) + len("Ann: ")
            answer = answers[i % 2]
            text += f"Ann: {answer}\n"
            if i < coded:
                rows.append(f"en{i + 1},{start},{start + len(answer)},{code},mina")
        (folder / f"en{i + 1}.txt").write_text(text, encoding="utf-8")
        paths.append(folder / f"en{i + 1}.txt")
    return paths, rows


def test_a_language_no_coded_segment_is_in_gets_no_suggestion(tmp_path: Path) -> None:
    """English interviews are coded, a Persian one is not: the model has learned nothing in the
    fallback's block and scores its segments all alike; they get no suggestion (the audit's noise:
    the same codes at the same score on every Persian segment), and suggest says why."""
    write_files(tmp_path / "files", coded=0)
    paths, rows = english_files(tmp_path, n=2, coded=2)
    proj = init_project(tmp_path / "p")
    proj.config.language = "auto"
    ingest(proj, [*paths, tmp_path / "files" / "fa01.txt"])
    import_codebook(proj, tmp_path / "files" / "codebook.yaml")
    (tmp_path / "codings.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    import_codings(proj, tmp_path / "codings.csv")
    report = suggest(proj)
    with proj.store.transaction() as session:
        fa = [r for r in suggestion_rows(session, state=None) if r["source"] == "fa01"]
    assert fa == [] and report.alike == 6
    assert report.line().endswith(
        "; 6 of the abstentions in a language no coded segment is in (the model scores them all alike: "
        "code a few of them and suggest again)"
    )
    proj.close()


def test_a_segment_goes_where_its_sources_language_says(tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "languages"
    proj = init_project(tmp_path / "p")
    ingest(proj, [fixtures / "de01.txt", fixtures / "en01.txt"])
    emb = project_embedder(proj, progress=False)
    assert isinstance(emb, LanguageRoutedEmbedder) and emb.fallback_languages == ("de",)
    assert emb.fingerprint.startswith("lang[source](")
    # "Was hat geholfen?" alone is too short to be told from English; its source is German
    assert detect_language("Was hat geholfen?") == "en" and emb.language_of("Was hat geholfen?") == "de"
    assert emb.block_index("Was hat geholfen?") == emb.block_index("Die wöchentlichen Treffen.") == 1
    assert emb.block_index("What helped?") == emb.block_index("The weekly meetings.") == 0
    proj.close()


def test_a_champion_trained_before_a_new_language_still_suggests_for_the_others(tmp_path: Path) -> None:
    """An English champion, then a Persian interview arrives: the process flow is not stopped. The
    champion suggests for English sources on its own block of the routed vectors, the Persian segments
    get none, and the run says to retrain (the audit: one new-language file blocked every file)."""
    from pipeline.project import process as processing
    from pipeline.project.retrain import fit_challenger, load_training_set

    paths, rows = english_files(tmp_path, n=3, coded=2)
    write_files(tmp_path / "files", coded=0)
    proj = init_project(tmp_path / "p")
    ingest(proj, paths[:2])
    import_codebook(proj, tmp_path / "files" / "codebook.yaml")
    (tmp_path / "codings.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    import_codings(proj, tmp_path / "codings.csv")
    english = project_embedder(proj, progress=False)
    assert not isinstance(english, LanguageRoutedEmbedder)
    model = fit_challenger(load_training_set(proj, english), english, "auto", proj.config.suggester.params)

    ingest(proj, [paths[2], tmp_path / "files" / "fa01.txt"])
    emb = project_embedder(proj, progress=False)
    assert isinstance(emb, LanguageRoutedEmbedder) and emb.base.fingerprint == english.fingerprint
    choice = processing.champion_model_row(
        proj, model, name="m", version="1", run_id=None, embedding=english.fingerprint, embedder=emb
    )
    assert choice.base_dim == emb.dims()[0] and choice.new_languages == ("fa",)
    files = [
        processing.IngestedFile(paths[2], "en3", "1" * 64, "added"),
        processing.IngestedFile(tmp_path / "files" / "fa01.txt", "fa01", "2" * 64, "added"),
    ]
    vectors = processing.embed_sources(proj, emb, ["en3", "fa01"], context=model.wants_context())
    en3, fa01 = processing.suggest_for_files(proj, files, vectors, choice, 3, block_of=emb.block_index)
    assert en3.suggestions > 0 and fa01.suggestions == 0
    assert processing.new_language_note(choice).startswith(
        "the champion m@1 was trained before the project had sources in Persian (fa): it suggests for the "
        "other sources as before"
    )
    proj.close()
