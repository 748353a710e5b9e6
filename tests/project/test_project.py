"""Projects and the store: init, ingest versions, one-transaction writes, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.config import load_config
from pipeline.errors import ConfigError, InputError
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.project.summary import summary
from pipeline.store.schema import CodingRow, SegmentRow, SourceRow

T1 = "Interviewer: Why was the rollout slow?\nMina: The budget was cut twice. We had no staff.\n"
CODEBOOK = """name: tiny
codes:
  - name: resources
    description: Lack of budget or staff.
    codes:
      - name: budget
        description: Money.
  - name: pace
    description: Speed of work.
"""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def count(project: Project, table) -> int:  # type: ignore[no-untyped-def]
    with project.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_init_writes_config_and_database(tmp_path: Path) -> None:
    proj = init_project(tmp_path / "p")
    assert (tmp_path / "p" / "qualflow.toml").is_file()
    assert (tmp_path / "p" / "qualflow.db").is_file()
    assert proj.store.is_initialised()
    cfg = load_config(tmp_path / "p")
    assert cfg.segmentation.mode == "sentence" and cfg.database_url == "sqlite:///qualflow.db"
    with pytest.raises(ConfigError, match="already exists"):
        init_project(tmp_path / "p")


def test_not_a_project_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a qualflow project"):
        Project.open(tmp_path)


def test_ingest_twice_is_a_noop_and_a_change_is_a_new_version(project: Project, tmp_path: Path) -> None:
    f = write(tmp_path / "in" / "int01.txt", T1)
    r1 = ingest(project, [f])
    assert r1.added == ["int01"] and r1.segments == 3  # 1 interviewer + 2 participant sentences
    n_seg = count(project, SegmentRow)
    r2 = ingest(project, [f])
    assert r2.unchanged == ["int01"] and not r2.added
    assert count(project, SegmentRow) == n_seg and count(project, SourceRow) == 1

    write(tmp_path / "cb.yaml", CODEBOOK)
    import_codebook(project, tmp_path / "cb.yaml")
    start = T1.index("The budget")
    write(tmp_path / "c.csv", f"source,start,end,code,coder\nint01,{start},{start + 26},budget,sara\n")
    assert import_codings(project, tmp_path / "c.csv") == {"sara": 1}

    write(f, T1.replace("twice", "three times"))
    r3 = ingest(project, [f])
    assert r3.new_versions == [("int01", 1, 2)]
    assert r3.codings_left_on_old == {"int01": 1}
    with project.store.transaction() as s:
        versions = s.execute(
            select(SourceRow.version, SourceRow.is_current).order_by(SourceRow.version)
        ).all()
        assert [tuple(v) for v in versions] == [(1, False), (2, True)]
        coding = s.scalar(select(CodingRow))
        old = s.get(SourceRow, coding.source_id)  # type: ignore[union-attr]
        assert old is not None and old.version == 1  # the coding stays on the version it was made on


def test_segments_match_source_text(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "a.txt", T1)])
    with project.store.transaction() as s:
        src = s.scalar(select(SourceRow))
        assert src is not None
        for seg in s.scalars(select(SegmentRow)):
            assert src.text[seg.start : seg.end] == seg.text
        roles = {t.speaker: t.role for t in src.turns}
    assert roles == {"Interviewer": "interviewer", "Mina": "participant"}


def test_bad_file_in_a_batch_writes_nothing(project: Project, tmp_path: Path) -> None:
    good = write(tmp_path / "in" / "a.txt", T1)
    write(tmp_path / "in" / "b.txt", b"\x00\x01\x02binary\xff\xfe\x00")
    with pytest.raises(InputError, match="b.txt"):
        ingest(project, [good.parent])
    assert count(project, SourceRow) == 0 and count(project, SegmentRow) == 0


def test_folder_skips_office_lock_hidden_and_other_files(tmp_path: Path) -> None:
    from pipeline.project.ingest import collect_files

    folder = tmp_path / "in"
    good = write(folder / "i1.docx", b"PK")  # never opened: collecting only looks at names
    write(folder / "~$i1.docx", b"\x0bsara\x00\x00junk")  # Word's lock file while i1.docx is open
    write(folder / "sub" / "~$notes.txt", "lock")
    write(folder / ".DS_Store", b"\x00\x00")
    write(folder / "notes.pages", b"PK")
    write(folder / "sub" / "Thumbs.db", b"\x00")
    write(folder / "desktop.ini", "[.ShellClassInfo]")
    kept = write(folder / "sub" / "i2.txt", T1)
    assert collect_files([folder]) == [good, kept]
    skipped: list[Path] = []  # the caller names files of other types; OS junk is not named
    assert collect_files([folder], skipped) == [good, kept] and skipped == [folder / "notes.pages"]
    lock = folder / "~$i1.docx"
    assert collect_files([lock]) == [lock]  # a file named on its own is read (and refused if junk)


def test_lock_file_in_a_folder_does_not_block_ingest(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "i1.txt", T1)
    write(folder / "~$i1.docx", b"\x0bsara\x00\x00junk")
    assert ingest(project, [folder]).added == ["i1"]


def test_codings_with_unknown_code_write_nothing(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "int01.txt", T1)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    csv = "source,start,end,code,coder\nint01,0,5,budget,sara\nint01,0,5,trust,reza\n"
    with pytest.raises(InputError, match=r"line 3.*'trust'"):
        import_codings(project, write(tmp_path / "c.csv", csv))
    assert count(project, CodingRow) == 0


def test_summary_counts(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "int01.txt", T1)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    s = summary(project)
    assert [r["name"] for r in s.sources] == ["int01"]
    assert s.sources[0]["turns"] == 2 and s.sources[0]["interviewer_turns"] == 1
    assert s.codes == 3 and s.codebook_versions == 1


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    r = run_cli("init", "p", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    write(tmp_path / "bad.txt", b"")
    r = run_cli("--project", "p", "ingest", "bad.txt", cwd=tmp_path)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.txt" in lines[0] and "Traceback" not in r.stderr
    r = run_cli("sources", "--project", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert r.returncode == 2 and "not a qualflow project" in r.stderr


@pytest.mark.parametrize("args", [("models", "list"), ("--help",)])
def test_cli_output_to_a_closed_pipe_stops_quietly(args: tuple[str, ...]) -> None:
    """`qualflow models list | head -0`: the reader is gone before anything is written (rich's console
    and click's echo alike): nothing on stderr, the status of a Unix tool stopped by SIGPIPE."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(timeout=120), err) == (141, b"")


def test_models_list_names_the_defaults_qualflow_toml_has() -> None:
    """`qualflow init` writes model = "onnx-fp32:minilm" and name = "auto": the list says so, instead of
    calling a resolved suggester the default."""
    r = subprocess.run(
        [sys.executable, "-m", "cli", "models", "list"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "default 'onnx-fp32:minilm'" in r.stdout
    assert "default 'auto': evidence, or linear for an exclusive codebook" in r.stdout
    assert "(default)" not in r.stdout


def test_cli_help_is_fast_and_light() -> None:
    code = (
        "import sys, time; t=time.time(); import cli.app; "
        "heavy=[m for m in ('torch','spacy','sentence_transformers','prefect','mlflow','sklearn') if m in sys.modules];"
        "print(heavy)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_library_imports_neither_prefect_nor_mlflow() -> None:
    code = (
        "import sys, importlib, pkgutil, pipeline, models\n"
        "for pkg in (pipeline, models):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if '.migrations' in m.name: continue\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(k for k in ('prefect', 'mlflow') if k in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
