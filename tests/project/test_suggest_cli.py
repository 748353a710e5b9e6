"""`qualflow suggest` through the real command line: what it says it queued, and a second run with
nothing changed is a no-op (no new model version, nothing re-queued) unless `--force`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

TRANSCRIPTS = {
    "i1.txt": "Interviewer: How is the budget?\nParticipant: The budget is too small. We cannot hire staff.\n"
    "Interviewer: And trust?\nParticipant: Trust is low. They never answer letters.\n",
    "i2.txt": "Interviewer: Tell me about your work.\nParticipant: Staff leave every year. Salaries are low.\n"
    "Interviewer: Do you trust the ministry?\nParticipant: No, trust is gone.\n",
    "i3.txt": "Interviewer: Tell me.\nParticipant: One. Two. Three. Four. Five.\n",
}
CODEBOOK = (
    "name: cb\ncodes:\n  - name: budget\n    description: money\n"
    "  - name: trust\n    description: trust between agencies\n"
)
CODINGS = (
    "source,start,end,code,coder\ni1,45,69,budget,sara\ni1,45,69,budget,reza\ni1,129,142,trust,sara\n"
    "i1,129,142,trust,reza\ni2,75,92,budget,sara\ni2,146,164,trust,sara\ni2,146,164,trust,reza\n"
)


def qf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--project", "p", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    assert (
        subprocess.run([sys.executable, "-m", "cli", "init", "p"], cwd=tmp_path, timeout=120).returncode == 0
    )
    cfg = tmp_path / "p" / "qualflow.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace('model = "onnx-fp32:minilm"', 'model = "hashing"'))
    (tmp_path / "tx").mkdir()
    for name, text in TRANSCRIPTS.items():
        (tmp_path / "tx" / name).write_text(text, encoding="utf-8")
    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    (tmp_path / "codings.csv").write_text(CODINGS, encoding="utf-8")
    for args in (("ingest", "tx"), ("codebook", "import", "cb.yaml"), ("codings", "import", "codings.csv")):
        r = qf(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    return tmp_path


def exported(workdir: Path, state: str) -> dict[str, int]:
    """How many suggestions in ``state`` each model version made."""
    r = qf("suggestions", "export", "--state", state, "out.csv", cwd=workdir)
    assert r.returncode == 0, r.stderr
    out: dict[str, int] = {}
    with (workdir / "out.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out[row["model"]] = out.get(row["model"], 0) + 1
    return out


def test_suggest_twice_is_a_noop_until_something_changes(workdir: Path) -> None:
    lines = []
    for args in (("suggest",), ("suggest",)):
        r = qf(*args, cwd=workdir)
        assert r.returncode == 0, r.stderr
        lines.append(r.stdout)
    assert lines == [
        "local-evidence@1: 13 queued for review, 4 already coded by a human (state covered); "
        "12 segments, 2 abstained, 0 already queued\n",
        "nothing changed since local-evidence@1 (codebook, codings, segments, embedding model, settings, versions); "
        "13 suggestions pending review (--force refits anyway)\n",
    ]
    assert exported(workdir, "pending") == {"local-evidence@1": 13}
    assert exported(workdir, "covered") == {"local-evidence@1": 4}
    assert exported(workdir, "all") == {"local-evidence@1": 17}

    # new codings: a new version
    (workdir / "more.csv").write_text("source,start,end,code,coder\ni3,35,39,budget,sara\n", encoding="utf-8")
    assert qf("codings", "import", "more.csv", cwd=workdir).returncode == 0
    line = (
        "local-evidence@{}: 16 queued for review, 5 already coded by a human (state covered); "
        "12 segments, 0 abstained, 0 already queued\n"
    )
    assert qf("suggest", cwd=workdir).stdout == line.format(2)
    # --force: a new version though nothing changed; the older pending suggestions are superseded
    assert qf("suggest", "--force", cwd=workdir).stdout == line.format(3)
    assert exported(workdir, "pending") == {"local-evidence@3": 16}
    assert exported(workdir, "superseded") == {"local-evidence@1": 13, "local-evidence@2": 16}


def test_suggest_refits_after_another_suggester_replaced_its_queue(workdir: Path) -> None:
    assert qf("suggest", cwd=workdir).returncode == 0
    r = qf("suggest", "--suggester", "prototype", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert exported(workdir, "pending") == {
        "local-prototype@1": exported(workdir, "pending")["local-prototype@1"]
    }
    # the same inputs as local-evidence@1, but its queue was superseded since: not a no-op
    r = qf("suggest", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("local-evidence@2: 13 queued for review"), r.stdout
    assert set(exported(workdir, "pending")) == {"local-evidence@2"}


def test_evaluate_names_the_suggester_auto_stands_for(workdir: Path) -> None:
    """`name = "auto"` (what init writes) is evaluated as the rule's choice: the output says which."""
    r = qf("evaluate", "--folds", "2", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == (
        "auto (= evidence) on 7 segments of 2 coded sources (out-of-fold, folds grouped by source)"
    )
    # the JSON names both: what was asked for and what it stands for
    r = qf("evaluate", "--folds", "2", "--format", "json", cwd=workdir)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert (m["suggester"], m["resolved_suggester"]) == ("auto", "evidence")
    r = qf("evaluate", "--folds", "2", "--suggester", "prototype", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("prototype on ")
    r = qf("evaluate", "--folds", "2", "--suggester", "prototype", "--format", "json", cwd=workdir)
    m = json.loads(r.stdout)
    assert (m["suggester"], m["resolved_suggester"]) == ("prototype", "prototype")
