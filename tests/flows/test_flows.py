"""The Prefect flows and MLflow tracking, end to end (one Prefect test harness for the session).

A synthetic study: three codes, each with its own vocabulary, so that the deterministic hashing
embedder separates them and a classifier trained on the true labels clearly beats one trained on
shuffled labels. Every test here runs with non-loopback connections refused (pytest-socket).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="qualflow-prefect-"))

pytestmark = pytest.mark.flow

REPO = Path(__file__).resolve().parents[2]
VOCAB = {
    "money": "budget salary payment funds cost price invoice wages",
    "weather": "rain snow sunny cold storm wind clouds thunder",
    "family": "mother father children sister brother home cousins grandparents",
}
CODEBOOK = """name: synthetic
codes:
  - name: money
    description: Talk about budget, salary, payment and funds.
  - name: weather
    description: Talk about rain, snow, storms and wind.
  - name: family
    description: Talk about mother, father, children and home.
"""


def interview(i: int, n_turns: int = 9) -> tuple[str, list[tuple[int, int, str]]]:
    """A transcript ``Name: text`` and its true codings (start, end, code) of participant turns."""
    rng = np.random.default_rng(i)
    codes = list(VOCAB)
    lines, codings, pos = [], [], 0
    for t in range(n_turns):
        q = f"Interviewer: Could you tell me more about point {t} of case {i}?"
        lines.append(q)
        pos += len(q) + 1
        code = codes[(i + t) % 3]
        words = rng.choice(VOCAB[code].split(), size=7).tolist()
        text = "We talked about " + " ".join(words) + f" in round {t}."
        prefix = f"P{i}: "
        lines.append(prefix + text)
        codings.append((pos + len(prefix), pos + len(prefix) + len(text), code))
        pos += len(prefix) + len(text) + 1
    return "\n".join(lines) + "\n", codings


def make_project(root: Path, n: int, *, inbox: bool = True, database_url: str | None = None) -> Path:
    from pipeline.project.codebooks import import_codebook
    from pipeline.project.core import Project, init_project

    init_project(root, database_url=database_url).close()
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8")
    cfg = cfg.replace('model = "onnx-fp32:minilm"', 'model = "hashing"').replace(
        'mode = "sentence"', 'mode = "turn"'
    )
    cfg = cfg.replace('language = "auto"', 'language = "en"').replace('name = "auto"', 'name = "linear"')
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    (root / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    proj = Project.open(root)
    import_codebook(proj, root / "codebook.yaml")
    proj.close()
    if inbox:
        for i in range(n):
            (root / "inbox" / f"int{i:02d}.txt").write_text(interview(i)[0], encoding="utf-8")
    return root


def code_sources(root: Path, names: list[str], coders: tuple[str, ...] = ("ana", "ben")) -> None:
    """Human codings: ``ana`` codes every participant turn right; ``ben`` misses every fourth."""
    lines = ["source,start,end,code,coder"]
    for name in names:
        _, codings = interview(int(name.removeprefix("int")))
        for j, (s, e, code) in enumerate(codings):
            lines.append(f"{name},{s},{e},{code},{coders[0]}")
            if len(coders) > 1 and j % 4:
                lines.append(f"{name},{s},{e},{code},{coders[1]}")
    from pipeline.project.codings import import_codings
    from pipeline.project.core import Project

    (root / "codings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proj = Project.open(root)
    import_codings(proj, root / "codings.csv")
    proj.close()


def counts(root: Path) -> dict[str, int]:
    from sqlalchemy import func, select

    from pipeline.project.core import Project
    from pipeline.store.schema import ProcessedFileRow, SegmentRow, SourceRow, SuggestionRow

    proj = Project.open(root, migrate=False)
    with proj.store.transaction() as s:
        out = {
            name: int(s.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in [
                ("sources", SourceRow),
                ("segments", SegmentRow),
                ("suggestions", SuggestionRow),
                ("processed", ProcessedFileRow),
            ]
        }
    proj.close()
    return out


@pytest.fixture(scope="module", autouse=True)
def loopback_only():
    """Refuse every connection that is not to the loopback interface while these tests run."""
    import pytest_socket

    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1", "localhost"], allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


@pytest.fixture(scope="session")
def harness():
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def decide(root: Path, coder: str, source: str, n_accept: int, n_reject: int) -> tuple[int, int]:
    """Simulate a coder in the review queue: accept correct pending suggestions, reject wrong ones.

    (States, decisions and codings are written directly, without pipeline.project.decisions, to keep
    the flow tests independent of the review rules.)
    """
    from sqlalchemy import select

    from pipeline.project.core import Project
    from pipeline.store.queries import get_or_create_coder
    from pipeline.store.schema import CodingRow, DecisionRow, SourceRow, SuggestionRow

    proj = Project.open(root, migrate=False)
    acc = rej = 0
    with proj.store.transaction() as s:
        who = get_or_create_coder(s, coder)
        rows = s.execute(
            select(SuggestionRow, SourceRow.name)
            .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
            .where(
                SuggestionRow.state == "pending", SuggestionRow.kind == "deductive", SourceRow.name == source
            )
            .order_by(SuggestionRow.id)
        ).all()
        for sug, name in rows:
            truth = {(a, b): c for a, b, c in interview(int(name.removeprefix("int")))[1]}
            right = truth.get((sug.start, sug.end)) == sug.code
            if right and acc < n_accept:
                state, acc = "accepted", acc + 1
                s.add(
                    CodingRow(
                        source_id=sug.source_id, start=sug.start, end=sug.end, code=sug.code,
                        codebook_version_id=sug.codebook_version_id, coder_id=who.id,
                        origin="model-accepted", suggestion_id=sug.id,
                    )
                )  # fmt: skip
            elif not right and rej < n_reject:
                state, rej = "rejected", rej + 1
            else:
                continue
            s.add(
                DecisionRow(
                    suggestion_id=sug.id, coder_id=who.id, action=state[:-2] if state == "accepted" else "reject",
                    model_version_id=sug.model_version_id, codebook_version_id=sug.codebook_version_id,
                    previous_state="pending", resulting_state=state,
                )
            )  # fmt: skip
            sug.state, sug.decided_by = state, who.id
    proj.close()
    return acc, rej


def suggestion_models(root: Path) -> dict[str, int]:
    from pipeline.project.core import Project
    from pipeline.project.suggest import suggestion_rows

    proj = Project.open(root, migrate=False)
    with proj.store.transaction() as s:
        rows = suggestion_rows(s, state=None)
    proj.close()
    out: dict[str, int] = {}
    for r in rows:
        out[r["model"]] = out.get(r["model"], 0) + 1
    return out


def suggestion_table(root: Path) -> list[tuple[str, int, int, str, str, float, int]]:
    """Every suggestion as (source, start, end, code, kind, score, rank), in a stable order."""
    from sqlalchemy import select

    from pipeline.project.core import Project
    from pipeline.store.schema import SourceRow, SuggestionRow

    proj = Project.open(root, migrate=False)
    with proj.store.transaction() as s:
        rows = s.execute(
            select(
                SourceRow.name, SuggestionRow.start, SuggestionRow.end, SuggestionRow.code,
                SuggestionRow.kind, SuggestionRow.score, SuggestionRow.rank,
            ).join(SourceRow, SuggestionRow.source_id == SourceRow.id)
        ).all()  # fmt: skip
    proj.close()
    return sorted((n, a, b, c, k, round(float(sc), 6), r) for n, a, b, c, k, sc, r in rows)


def set_config(root: Path, **settings: object) -> None:
    """Set top-level keys or ``[flows]`` keys (each name is unique in the file) in qualflow.toml."""
    import json
    import re

    path = root / "qualflow.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in settings.items():
        line = f"{key} = {json.dumps(value)}"
        text, n = re.subn(rf"(?m)^{key} = .*$", line.replace("\\", "\\\\"), text, count=1)
        if not n:
            text = text.replace("[flows]\n", f"[flows]\n{line}\n", 1)
    path.write_text(text, encoding="utf-8")


def mlflow_client(root: Path):
    import mlflow

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


# --------------------------------------------------------------------------------------------


def test_process_decide_retrain_promote_process_again(harness, tmp_path: Path) -> None:
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester

    root = make_project(tmp_path / "p", 10)
    (root / "inbox" / "broken.docx").write_bytes(b"this is not a Word file")
    first = process_interviews(str(root))
    assert [o.status for o in first.processed] == ["added"] * 10
    assert first.model.startswith("qualflow-prototype@")
    assert len(first.failed) == 1 and "broken.docx" in first.failed[0][0]
    error_file = root / "inbox" / "failed" / "broken.docx.error.txt"
    assert (
        root / "inbox" / "failed" / "broken.docx"
    ).exists() and "not a readable .docx" in error_file.read_text()
    before = counts(root)
    assert before["sources"] == 10 and before["segments"] == 180 and before["processed"] == 11

    again = process_interviews(str(root))
    assert again.processed == [] and again.failed == [] and again.lines() == ["nothing new to process"]
    assert counts(root) == before

    code_sources(root, [f"int{i:02d}" for i in range(8)])
    # the prototype is right on every suggestion it makes here: nothing to reject
    assert decide(root, "ana", "int08", n_accept=3, n_reject=5) == (3, 0)
    trained = retrain_suggester(str(root), suggester="linear", promotion_margin=0.0)
    assert trained.decision.promote and trained.version == "1" and trained.decision.champion is None
    # int08 is labelled by its 3 accepted suggestions only
    assert trained.data["n_eval_sources"] == 2 and trained.data["n_sources"] == 9
    assert trained.metrics["macro_f1"] > 0.9

    client = mlflow_client(root)
    assert str(client.get_model_version_by_alias("qualflow-suggester", "champion").version) == "1"
    run = client.get_run(trained.run_id)
    assert run.data.params["embedding"] == "hashing-256" or run.data.params["embedding"].startswith("hashing")
    assert run.data.params["suggester"] == "linear" and "C" in run.data.params
    assert trained.selection is None and not any(k.startswith("selection.") for k in run.data.params)
    assert trained.decoding is None and "sequence.decoding" not in run.data.params  # multi-label: no choice
    assert run.data.params["data.n_positives"] == str(8 * 9 + 3)
    assert {"micro_f1", "macro_f1", "hit_at_k", "ece", "f1.money", "kappa_vs_ana", "kappa_vs_ben"} <= set(
        run.data.metrics
    )
    assert run.data.tags["gate.decision"] == "promoted" and run.data.tags["gate.forced"] == "false"
    arts = {a.path for a in client.list_artifacts(trained.run_id, "evaluation")}
    assert arts == {
        f"evaluation/{n}"
        for n in ("per_code.csv", "confusion_matrix.png", "reliability.png", "codebook.yaml")
    }
    assert str(root / "mlruns") in client.get_experiment(trained.experiment_id).artifact_location

    (root / "inbox" / "int20.txt").write_text(interview(20)[0], encoding="utf-8")
    third = process_interviews(str(root))
    assert third.model == "qualflow-suggester@1"
    assert [(o.name, o.status) for o in third.processed] == [("int20", "added")]
    models = suggestion_models(root)
    assert models["qualflow-suggester@1"] == third.suggestions > 0

    # the gate: a challenger trained on shuffled labels is not promoted (the patch leaves the data hash
    # as it was, so without force_retrain the flow would say nothing changed and train nothing) ...
    from pipeline.project import retrain as retraining

    real = retraining.training_labels

    def shuffled(ts):  # type: ignore[no-untyped-def]
        Y = real(ts)
        return Y[np.random.default_rng(0).permutation(len(Y))]

    retraining.training_labels = shuffled
    try:
        worse = retrain_suggester(str(root), suggester="linear", promotion_margin=0.0, force_retrain=True)
    finally:
        retraining.training_labels = real
    assert not worse.decision.promote and worse.version == "2"
    assert worse.decision.champion is not None and worse.decision.challenger < worse.decision.champion
    assert str(client.get_model_version_by_alias("qualflow-suggester", "champion").version) == "1"
    tags = client.get_model_version("qualflow-suggester", "2").tags
    assert tags["gate.decision"] == "kept-champion" and float(tags["gate.champion_score"]) > 0.9

    # ... unless forced, which the run says
    forced = retrain_suggester(str(root), suggester="linear", promotion_margin=0.5, force=True)
    assert forced.decision.promote and forced.decision.forced and "forced" in forced.decision.reason
    assert str(client.get_model_version_by_alias("qualflow-suggester", "champion").version) == "3"
    assert client.get_run(forced.run_id).data.tags["gate.forced"] == "true"
    assert any("overridden with --force" in line for line in forced.lines())
    # the report's model runs say which versions the gate promoted
    from pipeline.project.core import Project
    from pipeline.project.report import model_runs

    proj = Project.open(root)
    runs = {
        r["version"]: r["promoted"]
        for r in model_runs(proj)
        if str(r["version"]).startswith("qualflow-suggester@")
    }
    proj.close()
    assert runs == {"qualflow-suggester@1": True, "qualflow-suggester@2": False, "qualflow-suggester@3": True}


def test_a_user_error_fails_the_flow_at_once_without_retries(harness, tmp_path: Path) -> None:
    """Too few coded sources is the user's to fix: the I/O task that finds it runs once, no retry."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.retrain import retrain_suggester
    from pipeline.errors import InputError

    root = make_project(tmp_path / "p", 2, inbox=False)
    state = retrain_suggester(str(root), suggester="linear", return_state=True)
    assert state.is_failed()
    err = state.result(raise_on_failure=False)
    assert isinstance(err, InputError) and str(err) == (
        "retraining needs codings on at least 2 sources (found none); "
        "code some segments of another interview first"
    )
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    attempts = {r.name.rsplit("-", 1)[0]: r.run_count for r in runs}
    assert attempts["load-training-set"] == 1


def test_train_chooses_the_auto_suggester_by_cv_and_mlflow_records_it(harness, tmp_path: Path) -> None:
    """``name = "auto"``, ``select = "cv"`` (what `qualflow init` writes): `qualflow train` scores
    evidence and linear by 3-fold CV on the 6 training sources and fits, logs and registers the
    winner; ``select = "rule"`` fits the rule's choice without CV."""
    from cli.flows_commands import run_train
    from pipeline.project.core import Project
    from pipeline.project.ingest import ingest
    from pipeline.store.schema import ModelVersionRow

    root = make_project(tmp_path / "s", 8)
    path = root / "qualflow.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('name = "linear"', 'name = "auto"'), "utf-8")
    proj = Project.open(root)
    ingest(proj, sorted((root / "inbox").glob("*.txt")))
    proj.close()
    code_sources(root, [f"int{i:02d}" for i in range(8)])

    report = run_train(root)
    sel = report.selection
    assert sel is not None and (sel.method, sel.folds, sel.n_sources) == ("cv", 3, 6)
    # every turn is one segment with one code: linear is all but exact (50/51); evidence offers its top
    # 3 codes as alternatives (precision 1/3, recall 1: F1 0.5)
    assert sel.scores == {"evidence": pytest.approx(0.5), "linear": pytest.approx(50 / 51)}
    assert report.suggester == sel.chosen == "linear"
    assert report.lines()[0] == "chose linear by 3-fold CV on 6 sources: macro_f1 evidence 0.50, linear 0.98"
    run = mlflow_client(root).get_run(report.run_id)
    assert run.data.params["suggester"] == "linear" and run.info.run_name == "retrain-linear"
    assert {k: v for k, v in run.data.params.items() if k.startswith("selection.")} == {
        "selection.method": "cv",
        "selection.candidates": "evidence,linear",
        "selection.chosen": "linear",
        "selection.folds": "3",
    }
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("selection.")} == {
        "selection.evidence.macro_f1": pytest.approx(0.5),
        "selection.linear.macro_f1": pytest.approx(50 / 51),
    }

    path.write_text(path.read_text(encoding="utf-8").replace('select = "cv"', 'select = "rule"'), "utf-8")
    by_rule = run_train(root)
    assert (
        by_rule.suggester == "evidence"
        and by_rule.lines()[0] == 'chose evidence by the rule (select = "rule")'
    )
    params = mlflow_client(root).get_run(by_rule.run_id).data.params
    assert params["suggester"] == "evidence" and params["selection.method"] == "rule"
    assert not any(
        k.startswith("selection.") for k in mlflow_client(root).get_run(by_rule.run_id).data.metrics
    )
    proj = Project.open(root, migrate=False)
    with proj.store.transaction() as s:
        from sqlalchemy import select

        versions = s.execute(select(ModelVersionRow.version, ModelVersionRow.suggester)).all()
    proj.close()
    assert sorted(versions) == [("1", "LinearSuggester"), ("2", "EvidenceSuggester")]


def test_agreement_report_logs_the_panel(harness, tmp_path: Path) -> None:
    from flows.agreement import agreement_report
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester

    root = make_project(tmp_path / "a", 6)
    process_interviews(str(root), discover=False)
    code_sources(root, [f"int{i:02d}" for i in range(6)])
    retrain_suggester(str(root), suggester="linear")
    out = agreement_report(str(root), n_boot=0)
    assert out.coders == ["ana", "ben", "model:qualflow-suggester@1"]
    assert {"pooled.percent", "pooled.fleiss", "pooled.krippendorff"} <= set(out.metrics)
    run = mlflow_client(root).get_run(out.run_id)
    assert run.data.metrics["pooled.percent"] == pytest.approx(out.metrics["pooled.percent"])
    assert {a.path for a in mlflow_client(root).list_artifacts(out.run_id)} == {
        "agreement.csv", "agreement.html", "agreement.json"
    }  # fmt: skip


def test_a_killed_run_is_finished_by_the_next_with_one_copy_of_everything(
    harness, tmp_path: Path, db_url: str | None
) -> None:
    """On SQLite and on PostgreSQL (the run killed mid-batch); the clean run is on SQLite."""
    from flows.process import CRASH_AFTER_ENV, process_interviews

    crashed = make_project(tmp_path / "crashed", 6, database_url=db_url)
    clean = make_project(tmp_path / "clean", 6)
    env = {**os.environ, "PREFECT_API_URL": harness, CRASH_AFTER_ENV: "2"}
    script = "import sys; from flows.process import process_interviews; process_interviews(sys.argv[1])"
    res = subprocess.run([sys.executable, "-c", script, str(crashed)], env=env, cwd=REPO, capture_output=True)
    assert res.returncode == -9, res.stderr.decode()[-2000:]
    mid = counts(crashed)
    assert mid["processed"] == 2 and mid["sources"] == 6  # killed after 2 of 6 files were done

    env.pop(CRASH_AFTER_ENV)
    res = subprocess.run([sys.executable, "-c", script, str(crashed)], env=env, cwd=REPO, capture_output=True)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    process_interviews(str(clean))
    assert (
        counts(crashed)
        == counts(clean)
        == {"sources": 6, "segments": 108, "suggestions": counts(clean)["suggestions"], "processed": 6}
    )
    assert suggestion_models(crashed) == suggestion_models(clean)


def test_the_dask_runner_queues_the_same_suggestions_as_the_thread_runner(
    harness, tmp_path: Path, db_url: str | None
) -> None:
    """[flows] task_runner = "dask" (a LocalCluster of 2 workers) changes where parsing and embedding
    run, not what is stored: the same sources, segments, suggestions (scores, ranks) and quarantine.
    The Dask project is on SQLite and on PostgreSQL; the thread-runner project on SQLite."""
    from flows.process import process_interviews

    thread = make_project(tmp_path / "thread", 6)
    dask = make_project(tmp_path / "dask", 6, database_url=db_url)
    set_config(dask, task_runner="dask", dask_workers=2)
    for root in (thread, dask):
        (root / "inbox" / "broken.docx").write_bytes(b"this is not a Word file")
    a = process_interviews(str(thread))
    b = process_interviews(str(dask))
    assert [(o.name, o.status, o.segments, o.suggestions) for o in a.processed] == [
        (o.name, o.status, o.segments, o.suggestions) for o in b.processed
    ]
    assert [f[1].replace(str(thread), "") for f in a.failed] == [
        f[1].replace(str(dask), "") for f in b.failed
    ]
    assert a.model == b.model and a.candidates == b.candidates
    assert counts(thread) == counts(dask) and counts(dask)["sources"] == 6
    table = suggestion_table(dask)
    assert table == suggestion_table(thread) and len(table) > 0
    # a run with nothing new starts no cluster and changes nothing
    assert process_interviews(str(dask)).lines() == ["nothing new to process"]


def coded_project(root: Path, n: int = 6, coded: int | None = None) -> Path:
    """A project whose ``n`` interviews are ingested and the first ``coded`` (all) coded, without Prefect."""
    from pipeline.project.core import Project
    from pipeline.project.ingest import ingest

    make_project(root, n)
    proj = Project.open(root)
    ingest(proj, sorted((root / "inbox").glob("*.txt")))
    proj.close()
    for p in (root / "inbox").glob("*.txt"):
        p.unlink()
    code_sources(root, [f"int{i:02d}" for i in range(n if coded is None else coded)])
    return root


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_a_moved_or_copied_project_uses_its_own_mlruns(harness, tmp_path: Path) -> None:
    """MLflow records absolute artifact paths: after `mv` the champion is loaded from the new place,
    and a copy trains into its own mlruns/, leaving the original's as it was."""
    import shutil

    from cli.flows_commands import run_process, run_train
    from flows.process import process_interviews
    from flows.retrain import retrain_suggester
    from pipeline.errors import ConfigError

    first = coded_project(tmp_path / "a")
    trained = retrain_suggester(str(first), suggester="linear")
    assert trained.decision is not None and trained.decision.promote and trained.version == "1"

    moved = tmp_path / "b"
    shutil.move(first, moved)
    (moved / "inbox" / "int20.txt").write_text(interview(20)[0], encoding="utf-8")
    report = process_interviews(str(moved))
    assert report.model == "qualflow-suggester@1" and report.suggestions > 0
    assert [(o.name, o.status) for o in report.processed] == [("int20", "added")]
    client = mlflow_client(moved)
    assert client.get_experiment(trained.experiment_id).artifact_location == (
        (moved / "mlruns" / "qualflow").as_uri()
    )
    assert client.get_run(trained.run_id).info.artifact_uri.startswith((moved / "mlruns").as_uri() + "/")

    copy = tmp_path / "c"
    shutil.copytree(moved, copy)
    before = files_under(moved / "mlruns")
    again = retrain_suggester(str(copy), suggester="linear", force_retrain=True)
    assert again.version == "2"
    assert files_under(moved / "mlruns") == before  # the original's models are untouched
    assert (
        mlflow_client(copy)
        .get_run(again.run_id)
        .info.artifact_uri.startswith((copy / "mlruns").as_uri() + "/")
    )
    assert [
        str(v.version) for v in mlflow_client(moved).search_model_versions("name = 'qualflow-suggester'")
    ] == ["1"]

    # the champion's files really gone: one line before Prefect starts, naming the model and the folder
    (copy / "inbox" / "int21.txt").write_text(interview(21)[0], encoding="utf-8")
    champ = mlflow_client(copy).get_model_version_by_alias("qualflow-suggester", "champion")
    assert str(champ.version) == "1"  # version 2 scored the same: not promoted
    model_dir = (
        mlflow_client(copy)
        .get_logged_model(champ.source.removeprefix("models:/"))
        .artifact_location.removeprefix("file://")
    )
    assert model_dir.startswith(str(copy / "mlruns") + "/")
    shutil.rmtree(model_dir)
    message = (
        f"the champion model qualflow-suggester version 1 has no files at {model_dir}: put the project's "
        "mlruns/ folder back (it holds every trained model), or train a new champion with "
        "`qualflow train --force`"
    )
    with pytest.raises(ConfigError) as err:
        run_process(copy)
    assert str(err.value) == message
    with pytest.raises(ConfigError) as err:
        run_train(copy)
    assert str(err.value) == message
    assert (copy / "inbox" / "int21.txt").exists()  # nothing was processed
    replaced = run_train(copy, force=True)
    assert replaced.decision is not None and replaced.decision.promote and replaced.version == "3"
    assert replaced.champion_before is None  # the lost champion could not be scored
    assert run_process(copy).model == "qualflow-suggester@3"


def test_train_with_nothing_changed_trains_nothing_and_models_versions_lists_them(
    harness, tmp_path: Path
) -> None:
    """A second `train` on the same inputs as the latest version trains and registers nothing (the
    scheduled flow is this same flow); new codings, another setting or --force-retrain train again."""
    from cli.flows_commands import model_versions_table, run_train
    from flows.retrain import retrain_suggester

    root = coded_project(tmp_path / "n", 7, coded=6)  # int06 is ingested, not coded yet
    first = retrain_suggester(str(root), suggester="linear")
    assert first.version == "1" and not first.unchanged
    same = retrain_suggester(str(root), suggester="linear")
    assert same.unchanged and same.version == "1" and same.decision is None
    assert same.lines() == [
        "nothing changed since qualflow-suggester@1 (same training data, codebook, suggester, "
        "parameters and qualflow version): not retrained; `qualflow train --force-retrain` trains anyway"
    ]
    client = mlflow_client(root)
    assert len(client.search_model_versions("name = 'qualflow-suggester'")) == 1
    assert len(client.search_runs([first.experiment_id])) == 1

    # another setting of the flow is another model
    margin = retrain_suggester(str(root), suggester="linear", promotion_margin=0.5)
    assert not margin.unchanged and margin.version == "2"
    assert retrain_suggester(str(root), suggester="linear", promotion_margin=0.5).unchanged

    # new codings: trained again (the CLI's way, with the project's settings)
    code_sources(root, [f"int{i:02d}" for i in range(7)])
    newdata = run_train(root)
    assert not newdata.unchanged and newdata.version == "3"
    assert run_train(root).unchanged
    forced = run_train(root, force_retrain=True)
    assert forced.version == "4" and not forced.unchanged

    lines = model_versions_table(root)
    assert lines[0] == "qualflow-suggester (* = champion)"
    assert lines[1].split() == ["version", "suggester", "created", "macro_f1", "data.hash", "gate", "run"]
    rows = {}
    for line in lines[2:]:
        cells = line.split()  # version suggester date time metric hash gate run, after an optional *
        star = cells[0] == "*"
        rows[cells[star]] = (star, cells[star:])
    assert list(rows) == ["4", "3", "2", "1"]
    champion = str(client.get_registered_model("qualflow-suggester").aliases["champion"])
    assert [v for v, (star, _) in rows.items() if star] == [champion]
    for version, run_id in [
        ("1", first.run_id),
        ("2", margin.run_id),
        ("3", newdata.run_id),
        ("4", forced.run_id),
    ]:
        cells = rows[version][1]
        run = client.get_run(run_id)
        assert len(cells) == 8 and cells[1] == "linear" and cells[7] == run_id
        assert cells[4] == f"{run.data.metrics['macro_f1']:.4f}"
        assert cells[5] == run.data.tags["data.hash"][:12]
        assert cells[6] == run.data.tags["gate.decision"]
    assert rows["1"][1][5] == rows["2"][1][5] != rows["3"][1][5] == rows["4"][1][5]
    # a version whose run died before the gate decided on it was never judged: not "unchanged"
    client.delete_tag(forced.run_id, "gate.decision")
    redo = run_train(root)
    assert not redo.unchanged and redo.version == "5"
    # another embedding model: one line before Prefect starts, not an error deep in the flow
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8")
    (root / "qualflow.toml").write_text(cfg.replace('model = "hashing"', 'model = "hashing:128"'), "utf-8")
    from pipeline.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"^the champion cannot be compared with a new model: it was trained on embedding 'hashing-v2-256' and the project now uses 'hashing-v2-128'; run `qualflow train --force`",
    ):
        run_train(root)
    assert len(client.search_model_versions("name = 'qualflow-suggester'")) == 5  # nothing trained
    assert run_train(root, force=True).version == "6"
    empty = make_project(tmp_path / "e", 0, inbox=False)
    assert model_versions_table(empty) == [
        "no trained versions of qualflow-suggester yet: `qualflow train` trains the first"
    ]
