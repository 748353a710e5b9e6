"""Unit tests of what the flows call (no Prefect run, no MLflow server): fast and exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from pipeline.errors import InputError
from tests.flows.test_flows import interview, make_project


@pytest.fixture
def proj(tmp_path: Path):
    from pipeline.project.core import Project

    root = make_project(tmp_path / "p", 3)
    p = Project.open(root)
    yield p
    p.close()


def test_new_files_bad_files_and_duplicates(proj, tmp_path: Path) -> None:
    from pipeline.project import process as processing

    (proj.inbox / "broken.docx").write_bytes(b"garbage")
    (proj.inbox / "zz_copy.txt").write_bytes((proj.inbox / "int00.txt").read_bytes())  # same bytes: once
    (proj.inbox / "sub").mkdir()
    (proj.inbox / "sub" / "int01.md").write_text("**P1:** same source name as int01.txt\n", encoding="utf-8")
    (proj.inbox / "int09.pages").write_bytes(b"PK")  # a type qualflow does not read: fails, not unseen
    (proj.inbox / "Thumbs.db").write_bytes(b"\0")  # OS junk: ignored
    new = processing.find_new_files(proj)
    assert sorted(f.path.name for f in new) == [
        "broken.docx",
        "int00.txt",
        "int01.md",
        "int01.txt",
        "int02.txt",
        "int09.pages",
    ]
    batch = processing.parse_files(proj, new)
    assert sorted(pf.name for pf in batch.parsed) == ["int00", "int01", "int02"]
    reasons = {f.path.name: f.reason for f in batch.failures}
    assert "not a readable .docx" in reasons["broken.docx"]
    assert reasons["int09.pages"] == (
        f"{proj.inbox / 'int09.pages'}: unsupported file type '.pages'; supported: .csv, .docx, .md, .odt, .pdf, .rtf, .srt, .tsv, .txt, .vtt, .xlsx"
    )
    assert "would both be source 'int01' in one batch; rename one of them" in reasons["int01.md"]
    err = processing.quarantine(proj, next(f for f in batch.failures if f.path.name == "broken.docx"))
    assert err == proj.inbox / "failed" / "broken.docx.error.txt" and "sha256:" in err.read_text()
    assert not (proj.inbox / "broken.docx").exists() and (proj.inbox / "failed" / "broken.docx").exists()
    # a file outside the inbox stays where it is; the error report still goes to inbox/failed
    outside = tmp_path / "elsewhere.docx"
    outside.write_bytes(b"junk")
    (f,) = processing.parse_files(proj, processing.find_new_files(proj, [outside])).failures
    assert processing.quarantine(proj, f).name == "elsewhere.docx.error.txt" and outside.exists()
    # and the run's report says which were moved: not "moved to inbox/failed/" for the one left in place
    inbox_only = processing.ProcessReport(failed=[(str(proj.inbox / "broken.docx"), "bad", str(err))])
    assert inbox_only.lines()[1] == "1 file failed and was moved to inbox/failed/:"
    err_out = proj.inbox / "failed" / "elsewhere.docx.error.txt"
    both = processing.ProcessReport(
        failed=[(str(proj.inbox / "broken.docx"), "bad", str(err)), (str(outside), "junk", str(err_out))]
    )
    lines = both.lines()
    assert "those from the inbox were moved to inbox/failed/, the others stay where they are" in lines[1]
    assert lines[2] == f"  bad (see {err})" and lines[3] == f"  junk (see {err_out}); left in place"


def test_one_file_is_ingested_suggested_and_marked_done_once(proj) -> None:
    from pipeline.embed.base import HashingEmbedder
    from pipeline.project import process as processing

    emb = HashingEmbedder()
    batch = processing.parse_files(proj, processing.find_new_files(proj))
    done = [processing.ingest_parsed(proj, pf) for pf in batch.parsed]
    assert [f.status for f in done] == ["added"] * 3
    assert processing.ingest_parsed(proj, batch.parsed[0]).status == "unchanged"
    vectors = processing.embed_sources(proj, emb, [f.name for f in done])
    assert len(vectors) == 27  # 9 participant turns per interview, interviewer turns left out
    choice = processing.cold_start_suggester(proj, emb)
    assert processing.cold_start_suggester(proj, emb).label == choice.label  # deterministic version
    (out,) = processing.suggest_for_files(proj, done[:1], vectors, choice, 3)
    assert out.segments == 9 and out.status == "added"
    assert [o.status for o in processing.suggest_for_files(proj, done[:1], vectors, choice, 3)] == ["skipped"]
    assert [f.path.name for f in processing.find_new_files(proj)] == ["int01.txt", "int02.txt"]
    assert processing.discover_due(proj)


def test_a_batch_gets_the_same_suggestions_as_its_files_one_by_one(tmp_path: Path) -> None:
    """Scoring the whole batch at once, then writing per file, changes nothing but the speed."""
    from pipeline.embed.base import HashingEmbedder
    from pipeline.project import process as processing
    from pipeline.project.core import Project
    from pipeline.store.schema import SegmentRow, SuggestionRow

    emb = HashingEmbedder()
    queues = []
    for batched in (True, False):
        p = Project.open(make_project(tmp_path / f"b{batched}", 3))
        ingested = processing.ingest_files(p, processing.parse_files(p, processing.find_new_files(p)).parsed)
        vectors = processing.embed_sources(p, emb, [f.name for f in ingested])
        choice = processing.cold_start_suggester(p, emb)
        if batched:
            out = processing.suggest_for_files(p, ingested, vectors, choice, 3)
        else:
            out = [o for f in ingested for o in processing.suggest_for_files(p, [f], vectors, choice, 3)]
        assert [o.status for o in out] == ["added"] * 3 and sum(o.segments for o in out) == 27
        with p.store.transaction() as session:
            queues.append(
                sorted(
                    session.execute(
                        select(
                            SegmentRow.text, SuggestionRow.code, SuggestionRow.rank, SuggestionRow.state
                        ).join(SegmentRow, SegmentRow.id == SuggestionRow.segment_id)
                    ).all()
                )
            )
        p.close()
    assert queues[0] == queues[1] and len(queues[0]) > 0


def test_evaluation_sources_are_a_deterministic_quarter() -> None:
    from pipeline.project.retrain import evaluation_sources

    names = [f"int{i:02d}" for i in range(9)]
    held = evaluation_sources(names)
    assert len(held) == 2 and held == evaluation_sources(list(reversed(names)))
    assert len(evaluation_sources(names[:2])) == 1
    with pytest.raises(InputError, match=r"at least 2 sources \(found 1: only\); code some"):
        evaluation_sources(["only"])
    with pytest.raises(InputError, match=r"at least 2 sources \(found none\); code some"):
        evaluation_sources([])


@pytest.mark.parametrize(
    ("challenger", "champion", "margin", "force", "promote", "forced"),
    [
        (0.60, 0.50, 0.05, False, True, False),
        (0.55, 0.50, 0.05, False, False, False),  # equal to champion + margin: not better
        (0.40, 0.50, 0.0, False, False, False),
        (0.40, 0.50, 0.0, True, True, True),
    ],
)
def test_promotion_gate(challenger, champion, margin, force, promote, forced) -> None:  # type: ignore[no-untyped-def]
    from pipeline.gate import promotion_decision

    d = promotion_decision(
        {"macro_f1": challenger}, {"macro_f1": champion}, metric="macro_f1", margin=margin, force=force
    )
    assert (d.promote, d.forced) == (promote, forced)
    assert d.tags()["gate.decision"] == ("promoted" if promote else "kept-champion")
    assert d.tags()["gate.champion_score"] == f"{champion:.6g}"


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [
        (0.09, 0.06, False),  # a larger error is worse, not better
        (0.05, 0.06, True),
        (0.06, 0.06, False),
    ],
)
def test_the_gate_reads_an_error_metric_lower_is_better(challenger, champion, promote) -> None:  # type: ignore[no-untyped-def]
    from pipeline.gate import promotion_decision

    d = promotion_decision({"brier": challenger}, {"brier": champion}, metric="brier", margin=0.0)
    assert d.promote == promote and d.reason.endswith("(lower is better)")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            'promotion_metric = "n_segments"',
            "promotion_metric 'n_segments' is not a measure of a model's quality",
        ),
        (
            'promotion_metric = "accuracy"',
            "promotion_metric 'accuracy' is not a measure of a model's quality",
        ),
        ("promotion_margin = -0.5", "promotion_margin -0.5 is negative"),
    ],
)
def test_bad_gate_settings_are_refused_when_the_config_is_read(tmp_path, setting, message) -> None:  # type: ignore[no-untyped-def]
    from pipeline.config import load_config
    from pipeline.errors import ConfigError
    from pipeline.project.core import init_project

    init_project(tmp_path / "p").close()
    toml = tmp_path / "p" / "qualflow.toml"
    text = toml.read_text(encoding="utf-8")
    key = setting.split(" =")[0]
    lines = [setting if line.startswith(f"{key} =") else line for line in text.splitlines()]
    assert setting in lines
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "p")


def test_cv_choice_takes_the_lowest_error() -> None:
    from pipeline.gate import better

    assert better(0.17, 0.24, "brier") and not better(0.24, 0.17, "brier")
    assert better(0.24, 0.17, "macro_f1")


def test_scores_are_aligned_to_the_current_codes() -> None:
    from models.prototype import PrototypeSuggester
    from pipeline.project.retrain import aligned_scores

    m = PrototypeSuggester(codes=["a", "b"], code_embeddings=np.eye(2, dtype=np.float32)).fit(np.eye(2), None)
    P, T = aligned_scores(m, np.eye(2, dtype=np.float32), ["x", "y"], ["b", "new", "a"])
    assert P.shape == (2, 3) and (P[:, 1] == 0).all() and np.isinf(T[1])
    assert P[0, 2] > P[0, 0] and P[1, 0] > P[1, 2]


def test_cli_flows_commands_and_parameters(proj) -> None:
    from cli.flows_commands import mlflow_ui_command, prefect_home
    from flows.serve import flow_parameters

    cmd = mlflow_ui_command(proj.root, port=5055)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5055"
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{proj.root / 'mlflow.db'}"
    assert cmd[cmd.index("--default-artifact-root") + 1] == (proj.root / "mlruns").as_uri()
    assert prefect_home(proj.root) == proj.root / ".qualflow" / "prefect"
    params = flow_parameters(proj.root, proj.config, "qualflow-suggester")
    assert params["retrain_suggester"]["suggester"] == "linear"
    assert params["retrain_suggester"]["promotion_metric"] == "macro_f1"
    assert params["process_interviews"]["top_k"] == 3


@pytest.mark.flow
def test_deployments_carry_the_schedules_of_qualflow_toml(proj) -> None:
    from flows.serve import build_deployments

    proj.config.flows.process_every_minutes = 7
    process, retrain = build_deployments(proj.root, proj.config, "qualflow-suggester")
    assert process.schedules[0].schedule.interval.total_seconds() == 7 * 60
    assert retrain.schedules[0].schedule.cron == "0 2 * * *"
    assert retrain.parameters["project_dir"] == str(proj.root)


def test_interview_fixture_offsets_are_exact() -> None:
    text, codings = interview(3)
    for s, e, _ in codings:
        assert text[s:e].startswith("We talked about") and text[e] == "\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('task_runner = "ray"', "[flows]: task_runner = 'ray' must be one of ['thread', 'dask']"),
        ("dask_workers = 0", "[flows]: dask_workers = 0 must be at least 1 (default 2)"),
        ('dask_address = "10.0.0.6:8786"', 'must be a Dask scheduler address like "tcp://10.0.0.6:8786"'),
        ('work_pool = "a/b"', "[flows]: work_pool = 'a/b' must be a Prefect work pool name"),
        ('dask_workers = "2"', "[flows]: dask_workers = '2' must be a whole number (default 2)"),
    ],
)
def test_bad_flows_settings_are_one_config_error_naming_the_setting(proj, line: str, message: str) -> None:
    from pipeline.config import load_config
    from pipeline.errors import ConfigError
    from tests.flows.test_flows import set_config

    key, value = line.split(" = ")
    set_config(proj.root, **{key: __import__("json").loads(value)})
    with pytest.raises(ConfigError) as err:
        load_config(proj.root)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_flows_settings_defaults_and_cli_refusals(proj) -> None:
    import subprocess
    import sys

    from pipeline.config import load_config
    from tests.flows.test_flows import set_config

    f = load_config(proj.root).flows
    assert (f.task_runner, f.dask_address, f.dask_workers, f.work_pool) == ("thread", "", 2, "")
    set_config(proj.root, task_runner="dask", dask_address="tcp://127.0.0.1:8786", work_pool="qualflow")
    f = load_config(proj.root).flows
    assert (f.task_runner, f.dask_address, f.work_pool) == ("dask", "tcp://127.0.0.1:8786", "qualflow")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "cli", "--project", str(proj.root), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    # a work pool needs a server that outlives `qualflow serve`
    r = cli("serve", "--start-server", "--pool", "qualflow")
    assert r.returncode == 2 and "--start-server stops its Prefect server" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    set_config(proj.root, task_runner="threads")
    r = cli("process")
    assert r.returncode == 2 and "task_runner = 'threads' must be one of" in r.stderr


def test_dask_runner_settings() -> None:
    from flows.runners import dask_task_runner, fan_out
    from pipeline.config import FlowsConfig

    assert fan_out(FlowsConfig()) is None
    local = dask_task_runner(FlowsConfig(task_runner="dask", dask_workers=3))
    assert local.address is None and local.cluster_kwargs["n_workers"] == 3
    assert local.cluster_kwargs["threads_per_worker"] == 1
    remote = fan_out(FlowsConfig(task_runner="dask", dask_address="tcp://10.0.0.6:8786"))
    assert remote.address == "tcp://10.0.0.6:8786"


@pytest.mark.flow
def test_pool_deployments_name_the_module_a_worker_imports(proj) -> None:
    from flows.serve import build_deployments, worker_command

    process, retrain = build_deployments(proj.root, proj.config, "qualflow-suggester", for_pool=True)
    assert process.entrypoint == "flows.process.process_interviews"
    assert retrain.entrypoint == "flows.retrain.retrain_suggester"
    assert worker_command("qualflow") == "prefect worker start --pool qualflow"


def test_io_tasks_retry_a_passing_failure_but_never_a_user_error() -> None:
    from prefect.states import Failed
    from prefect.tasks import Task

    import flows.agreement
    import flows.process
    import flows.retrain
    import flows.rounds
    from flows.retries import retry_unless_user_error
    from pipeline.errors import ConfigError, NotFoundError

    assert retry_unless_user_error(None, None, Failed(data=OSError("database is locked"))) is True
    for err in (InputError("x"), NotFoundError("x"), ConfigError("x")):
        assert retry_unless_user_error(None, None, Failed(data=err)) is False
    retrying = {
        f"{module.__name__}.{name}": t.retry_condition_fn
        for module in (flows.process, flows.retrain, flows.agreement, flows.rounds)
        for name, t in vars(module).items()
        if isinstance(t, Task) and t.retries and t.fn.__module__ == module.__name__
    }
    assert len(retrying) == 19
    assert set(retrying.values()) == {retry_unless_user_error}


def test_logging_a_model_drops_only_mlflows_pickle_notice(tmp_path: Path) -> None:
    """mlflow.sklearn's real save path warns about cloudpickle on every save: not inside
    ``without_pickle_notice`` (which `qualflow train` logs its model in); other records still pass."""
    import logging

    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    from flows.tracking import PICKLE_NOTICE, without_pickle_notice

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("mlflow.sklearn")
    keep = Keep()
    logger.addHandler(keep)
    try:
        model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
        mlflow.sklearn.save_model(model, str(tmp_path / "loud"), serialization_format="cloudpickle")
        assert sum(m.startswith(PICKLE_NOTICE) for m in seen) == 1
        seen.clear()
        with without_pickle_notice():
            mlflow.sklearn.save_model(model, str(tmp_path / "quiet"), serialization_format="cloudpickle")
            logger.warning("another warning")
        assert seen == ["another warning"]
    finally:
        logger.removeHandler(keep)


def test_check_ready_refuses_new_files_without_a_codebook_before_storing_any(tmp_path: Path) -> None:
    from pipeline.errors import NotFoundError
    from pipeline.project import process as processing
    from pipeline.project.core import init_project
    from pipeline.store.schema import SourceRow

    proj = init_project(tmp_path / "p")
    try:
        assert processing.check_ready(proj) == []  # nothing new: nothing to refuse
        (proj.inbox / "int00.txt").write_text(interview(0)[0], encoding="utf-8")
        with pytest.raises(NotFoundError) as err:
            processing.check_ready(proj)
        assert str(err.value) == "the project has no codebook yet; run `qualflow codebook import FILE` first"
        with pytest.raises(InputError, match=r"^.*nowhere\.txt: no such file or folder$"):
            processing.check_ready(proj, [tmp_path / "nowhere.txt"])
        with proj.store.transaction() as s:
            assert s.scalars(select(SourceRow)).all() == []
    finally:
        proj.close()


def test_a_forced_promotion_over_an_incomparable_champion_says_so() -> None:
    """`train --force` over a champion that could not be scored (another embedding model, a language it
    does not cover) records that, not "no champion yet"."""
    from flows.retrain import gate
    from pipeline.project.retrain import Evaluation

    e = np.zeros((0, 1))
    challenger = Evaluation({"macro_f1": 0.5}, e, e, e, [])
    d = gate.fn(challenger, None, "macro_f1", 0.0, True, "qualflow-suggester@1", True)
    assert (d.promote, d.forced, d.champion) == (True, True, None)
    assert (
        d.reason
        == "forced with --force: qualflow-suggester@1 could not be compared with the challenger (see above)"
    )
    first = gate.fn(challenger, None, "macro_f1", 0.0, False, "no champion", False)
    assert first.reason == "no champion yet: the first model is promoted" and not first.forced


def test_a_store_copied_without_its_files_keeps_pointing_where_they_are(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """relocate_store rewrites a moved project's locations, but not those of an mlflow.db copied into a
    project whose mlruns/ lacks the experiment while the original folder still has it."""
    import sqlite3

    from flows.tracking import relocate_store

    old = tmp_path / "old" / "mlruns"
    (old / "qualflow").mkdir(parents=True)
    root = tmp_path / "new"
    (root / "mlruns").mkdir(parents=True)
    db = root / "mlflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE experiments (artifact_location TEXT)")
    con.execute("INSERT INTO experiments VALUES (?)", (f"{(old / 'qualflow').as_uri()}",))
    con.commit()
    con.close()
    uri = f"sqlite:///{db}"
    assert relocate_store(uri, root) == []  # the files are still at the old place: left alone
    (root / "mlruns" / "qualflow").mkdir()  # the project's own copy of them: moved here
    assert relocate_store(uri, root) == [f"{old.as_uri()}/"]
    con = sqlite3.connect(db)
    (loc,) = con.execute("SELECT artifact_location FROM experiments").fetchone()
    con.close()
    assert loc == f"{(root / 'mlruns').resolve().as_uri()}/qualflow"


def test_process_warns_when_a_new_version_is_another_interview(proj, tmp_path: Path) -> None:
    from pipeline.project import process as processing

    (first,) = [
        pf
        for pf in processing.parse_files(proj, processing.find_new_files(proj)).parsed
        if pf.name == "int00"
    ]
    assert processing.ingest_parsed(proj, first).warning == ""
    other = tmp_path / "elsewhere" / "int00.txt"
    other.parent.mkdir()
    other.write_text(
        "Interviewer: Where did you grow up?\nFarmer: On a sheep station near the coast.\n", "utf-8"
    )
    (pf,) = processing.parse_files(proj, processing.find_new_files(proj, [other])).parsed
    done = processing.ingest_parsed(proj, pf)
    assert done.status == "new-version"
    assert done.warning == (
        "int00: the new text shares only 0% with version 1 — a different interview with the same name? If it "
        "is another interview, `qualflow ingest` the transcript of version 1 again (its codings come back "
        "with it), then rename the new file and put it in the inbox"
    )


def test_a_user_error_that_fails_a_flow_is_logged_without_its_traceback() -> None:
    """README: errors are one line that says what to fix. Prefect logs a failed task's exception with
    its traceback (70 lines for `train` after an embedding change); for a QualflowError the record keeps
    its message and loses the traceback. Any other exception keeps it."""
    import io
    import logging

    from cli.flows_commands import quiet_user_error_tracebacks
    from pipeline.errors import ConfigError

    quiet_user_error_tracebacks()
    quiet_user_error_tracebacks()  # once is enough: no second filter
    logger = logging.getLogger("prefect.task_runs")
    assert sum(type(f).__name__ == "UserErrorWithoutTraceback" for f in logger.filters) == 1
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    # only to this handler: not to Prefect's API handler, which wants a flow run, nor to the console
    saved, logger.handlers = logger.handlers, [handler]
    propagate, logger.propagate = logger.propagate, False
    try:
        for exc in (
            ConfigError("the champion cannot be compared; run `qualflow train --force`"),
            RuntimeError("bug"),
        ):
            try:
                raise exc
            except Exception:
                logger.error("Task run failed with exception: %r", exc, exc_info=True)
    finally:
        logger.handlers, logger.propagate = saved, propagate
    text = out.getvalue()
    assert "the champion cannot be compared" in text and "RuntimeError: bug" in text
    assert text.count("Traceback") == 1  # the bug's only
