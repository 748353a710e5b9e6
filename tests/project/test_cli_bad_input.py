"""Bad input through the real command line: one line naming the file/line/code, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
GOOD_TXT = "Interviewer: Why?\nMina: Because the budget was cut.\n"
CODEBOOK = "name: t\ncodes:\n  - name: budget\n    description: Money.\n"
CYCLE = "name: t\ncodes:\n  - name: a\n    parent: b\n  - name: b\n    parent: a\n"


def qf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--project", "p", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def docx_bytes() -> bytes:
    return (FIXTURES / "interview.docx").read_bytes()


CASES = {
    "binary.txt": ("ingest", b"\x00\x01\x02\x03\xff\xfe binary junk \x00", "binary.txt"),
    "empty.txt": ("ingest", b"", "empty.txt"),
    "truncated.docx": ("ingest", None, "truncated.docx"),
    "broken.vtt": ("ingest", b"WEBVTT\n\n00:00:0x.000 --> 00:00:02.000\n<v A>hello\n", "broken.vtt line 3"),
    "cycle.yaml": ("codebook", CYCLE.encode(), "cycle"),
    "codings.csv": ("codings", b"source,start,end,code,coder\nint01,0,5,trust,sara\n", "line 2"),
    "plain.yaml": (
        "codebook",
        b"name: t\ncodes:\n  - budget\n",
        "plain.yaml line 3: each entry under codes:",
    ),
    "header.csv": ("codebook", b"name,parent,description\n", "header.csv: the codebook has no codes"),
    "none.yaml": ("codebook", b"name: t\ncodes: []\n", "none.yaml: the codebook has no codes"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    assert subprocess.run([sys.executable, "-m", "cli", "init", "p"], cwd=d, timeout=120).returncode == 0
    (d / "int01.txt").write_text(GOOD_TXT, encoding="utf-8")
    (d / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    assert qf("ingest", "int01.txt", cwd=d).returncode == 0
    assert qf("codebook", "import", "cb.yaml", cwd=d).returncode == 0
    return d


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(workdir: Path, name: str) -> None:
    kind, data, needle = CASES[name]
    path = workdir / name
    path.write_bytes(docx_bytes()[:200] if data is None else data)
    before = qf("summary", cwd=workdir).stdout
    args = {
        "ingest": ("ingest", name),
        "codebook": ("codebook", "import", name),
        "codings": ("codings", "import", name),
    }
    r = qf(*args[kind], cwd=workdir)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "Traceback" not in r.stderr
    if kind == "codings":
        assert "'trust'" in lines[0]
    assert qf("summary", cwd=workdir).stdout == before  # nothing written


def test_flow_commands_check_their_input_before_prefect_starts(workdir: Path) -> None:
    """`train` / `agreement --log` with codings on no source, `process` of a missing path, `round close`
    with no round: one line, exit 2, at once (the flows' own first step, run before Prefect's temporary
    server starts; nothing is retried)."""
    cases = {
        ("train",): "retraining needs codings on at least 2 sources (found none); "
        "code some segments of another interview first",
        ("process", "nowhere.txt"): "nowhere.txt: no such file or folder",
        ("agreement", "--log"): "agreement --log scores the champion as `qualflow train` does, and "
        "retraining needs codings on at least 2 sources (found none); code some segments of another interview first",
        ("round", "close"): "no open round; start one with `qualflow round start NAME`",
    }
    for args, message in cases.items():
        r = qf(*args, cwd=workdir)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"error: {message}\n")
    assert not (workdir / "p" / ".qualflow" / "prefect").exists()


@pytest.mark.parametrize(
    "extra, named",
    [
        (("--coders", "sara,reza"), "--coders"),
        (("--unit", "overlap", "--format", "html", "--out", "a.html"), "--unit, --format, --out"),
    ],
)
def test_agreement_log_refuses_the_options_it_would_ignore(
    workdir: Path, extra: tuple[str, ...], named: str
) -> None:
    """`agreement --log` logs the panel of every coder and the champion: a --coders or --format the
    user gave would silently not apply, so it is one line naming them, before Prefect starts."""
    r = qf("agreement", "--log", *extra, cwd=workdir)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"{named} would be ignored" in lines[0], r.stderr
    assert not (workdir / "a.html").exists()
