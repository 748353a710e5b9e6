"""What `qualflow import qdpx` says about what it did (audit): a source it makes a new version of gets
ingest's lines (codings carried forward, left behind) and a warning when the texts share almost
nothing; codings by a user the file does not list are warned about once, under a stable coder; a
re-import warns only about codings it adds; `--positions` chooses how positions are counted."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from sqlalchemy import func, select

from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.exchange import import_project_qdpx
from pipeline.project.ingest import ingest
from pipeline.store.schema import CoderRow, CodingRow

T1 = "Interviewer: How is the budget?\nParticipant: The budget is too small. We cannot hire staff.\n"
CB = "name: t\ncodes:\n  - name: cost\n  - name: staff\n"
COST = "11111111-1111-4111-8111-111111111111"
ANA = "00000000-0000-4000-8000-000000000001"


def _span(text: str, quote: str) -> tuple[int, int]:
    start = text.index(quote)
    return start, start + len(quote)


def _project(tmp_path: Path) -> Project:
    """i1 (T1) with three codings by sara: 'The budget' and 'too small' as cost, 'We cannot hire staff'."""
    (tmp_path / "i1.txt").write_text(T1, encoding="utf-8")
    proj = init_project(tmp_path / "p", name="p")
    ingest(proj, [tmp_path / "i1.txt"])
    (tmp_path / "cb.yaml").write_text(CB, encoding="utf-8")
    import_codebook(proj, tmp_path / "cb.yaml")
    rows = [("The budget", "cost"), ("too small", "cost"), ("We cannot hire staff", "staff")]
    csv = "source,start,end,code,coder\n" + "".join(
        "i1,{},{},{},sara\n".format(*_span(T1, quote), code) for quote, code in rows
    )
    (tmp_path / "codings.csv").write_text(csv, encoding="utf-8")
    import_codings(proj, tmp_path / "codings.csv")
    return proj


def _qdpx(
    path: Path,
    text: str,
    selections: list[tuple[int, int, str]],
    *,
    origin: str = "MAXQDA 24",
    users: str = "",
) -> Path:
    """A project file with one source 'i1' coded with 'cost' at (start, end) by the user guid given."""
    sels = "".join(
        f"<PlainTextSelection guid='33333333-3333-4333-8333-33333333333{i}' startPosition='{a}' "
        f"endPosition='{b}' creatingUser='{user}'><Coding guid='44444444-4444-4444-8444-44444444444{i}' "
        f"creatingUser='{user}'><CodeRef targetGUID='{COST}'/></Coding></PlainTextSelection>"
        for i, (a, b, user) in enumerate(selections)
    )
    xml = (
        f"<?xml version='1.0' encoding='utf-8'?><Project xmlns='urn:QDA-XML:project:1.0' name='t' origin='{origin}'>"
        f"<Users><User guid='{ANA}' name='ana'/>{users}</Users>"
        f"<CodeBook><Codes><Code guid='{COST}' name='cost' isCodable='true'/></Codes></CodeBook>"
        "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='i1' "
        f"plainTextPath='internal://i1.txt'>{sels}</TextSource></Sources></Project>"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", xml)
        zf.writestr("Sources/i1.txt", text.encode("utf-8"))
    return path


def _count(proj: Project, what: type[CoderRow] | type[CodingRow]) -> int:
    with proj.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(what)) or 0)


def test_an_edited_source_carries_the_codings_its_text_keeps_as_ingest_does(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    edited = T1.replace("too small", "too tiny")
    report = import_project_qdpx(proj, _qdpx(tmp_path / "e.qdpx", edited, [(*_span(edited, "budget"), ANA)]))
    ing = report.versions
    assert ing.new_versions == [("i1", 1, 2)]
    assert ing.carried_note("i1", 1) == (
        "; 2 codings carried forward, 1 left on version 1 (see `qualflow sources --versions`)"
    )
    assert [(c.start, c.end, c.code, c.coder, c.text) for c in ing.codings_left["i1"]] == [
        (*_span(T1, "too small"), "cost", "sara", "too small")
    ]
    assert report.warnings == []  # the same interview, edited: nothing to warn about
    proj.close()


def test_another_text_under_a_known_name_is_warned_about(tmp_path: Path) -> None:
    proj = _project(tmp_path)
    other = "Interviewer: Where did you train?\nParticipant: In Leeds, a long time ago, at the old college.\n"
    report = import_project_qdpx(proj, _qdpx(tmp_path / "o.qdpx", other, [(*_span(other, "Leeds"), ANA)]))
    assert report.versions.carried_note("i1", 1) == (
        "; 0 codings carried forward, 3 left on version 1 (see `qualflow sources --versions`)"
    )
    assert report.warnings == [
        "i1: the new text shares only 0% with version 1 — a different interview with the same name? "
        "Its 3 codings stay on version 1, out of reports, agreement, export and training; if it is another "
        "interview, `qualflow ingest` the transcript of version 1 again (its codings come back with it), "
        "rename the source in the QDA tool and import the file again"
    ]
    proj.close()


def test_another_text_under_a_known_name_without_codings_is_warned_about_too(tmp_path: Path) -> None:
    (tmp_path / "i1.txt").write_text(T1, encoding="utf-8")
    proj = init_project(tmp_path / "p", name="p")
    ingest(proj, [tmp_path / "i1.txt"])
    other = "Interviewer: Where did you train?\nParticipant: In Leeds, a long time ago, at the old college.\n"
    report = import_project_qdpx(proj, _qdpx(tmp_path / "o.qdpx", other, []))
    assert (report.versions.new_versions, report.versions.carried_note("i1", 1)) == ([("i1", 1, 2)], "")
    assert report.warnings == [
        "i1: the new text shares only 0% with version 1 — a different interview with the same name? "
        "If it is another interview, `qualflow ingest` the transcript of version 1 again (its codings come "
        "back with it), rename the source in the QDA tool and import the file again"
    ]
    proj.close()


def test_an_unlisted_user_is_warned_about_once_and_stays_one_coder(tmp_path: Path) -> None:
    proj = init_project(tmp_path / "p", name="p")
    stranger = "CF7EAC62-16BE-410E-AE32-85B6EA861A9D"
    path = _qdpx(tmp_path / "u.qdpx", T1, [(*_span(T1, "budget"), stranger), (*_span(T1, "staff"), stranger)])
    report = import_project_qdpx(proj, path)
    assert report.codings == {"user-cf7eac62": 2}
    assert report.warnings == [
        "codings by users the file's Users do not list, kept under a coder named by the guid's first 8 "
        "characters (the same on every import; agreement counts each as a coder): "
        f"creatingUser {stranger}: 2 codings as 'user-cf7eac62'"
    ]
    coders, codings = _count(proj, CoderRow), _count(proj, CodingRow)
    again = import_project_qdpx(proj, path)  # the same file: nothing added, nothing to say, no new coder
    assert (again.codings, again.warnings) == ({}, [])
    assert (_count(proj, CoderRow), _count(proj, CodingRow)) == (coders, codings)
    proj.close()


def test_positions_option_through_the_cli(tmp_path: Path) -> None:
    init_project(tmp_path / "p", name="p").close()
    text = "Interviewer: How was it? \U0001f600\nParticipant: Awful. We are short of staff.\n"
    start = len(text[: text.index("short")].encode("utf-16-le")) // 2  # NVivo counts UTF-16 code units
    _qdpx(tmp_path / "n.qdpx", text, [(start, start + len("short"), ANA)], origin="NVivo 14")

    def qf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "--project", "p", "import", "qdpx", "n.qdpx", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )

    bad = qf("--positions", "bytes")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: --positions 'bytes' is not one of ['auto', 'characters', 'utf16']"
    r = qf()
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "imported from NVivo 14: 1 source, 1 code, 1 coding; ana: 1",
        "  new codebook version 1 (1 code added)",
        "  note: positions counted in UTF-16 code units, as NVivo counts them (the file was written by NVivo "
        "14): 'i1' has characters outside the Basic Multilingual Plane (e.g. emoji), which UTF-16 counts as "
        "two; if codings after them look shifted, import the file into a fresh project with --positions "
        "characters",
    ]
    proj = Project.open(tmp_path / "p")
    with proj.store.transaction() as s:
        (row,) = s.scalars(select(CodingRow)).all()
        assert text[row.start : row.end] == "short"
    proj.close()
    # the same interview without the emoji, from another tool: a new version, said as ingest says it
    _qdpx(tmp_path / "n.qdpx", text.replace(" \U0001f600", ""), [])
    r = qf("--positions", "characters")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "imported from MAXQDA 24: 1 source, 1 code, 0 codings",
        "  unchanged codebook version 1 (0 codes added)",
        "  i1: version 1 -> 2; 1 codings carried forward, 0 left on version 1",
    ]
