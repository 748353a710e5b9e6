"""The codebook lifecycle through the command line: re-importing an unchanged codebook, empty codebooks,
versions that leave out or rename codes codings use, and merging a REFI-QDA project's codebook."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.errors import InputError
from pipeline.project.codebooks import export_codebook, import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.exchange import export_project_qdpx
from pipeline.project.ingest import ingest
from pipeline.project.report import write_project_report
from pipeline.store.queries import load_codings, require_codebook
from pipeline.store.schema import CodebookVersionRow, CodingRow
from tests.project.test_cli_bad_input import qf

I1 = "Interviewer: How is the budget?\nMina: The budget is too small.\nInterviewer: And trust?\nMina: Trust is low.\n"
I2 = "Interviewer: Salaries?\nReza: Salaries are low. Nobody trusts them.\n"
CB = "name: cb\ncodes:\n  - name: budget\n    description: money\n  - name: trust\n    description: trust\n"
CB_SMALL = "name: cb\ncodes:\n  - name: budget\n    description: money\n"
# 'The budget' (i1 37-47), 'Trust is low' (i1 84-96), 'Salaries are low' (i2 29-45), 'Nobody trusts' (i2 47-60)
CODINGS = (
    "source,start,end,code,coder\n"
    "i1,37,47,budget,sara\ni1,84,96,trust,sara\ni1,84,96,trust,reza\ni2,29,45,budget,sara\n"
    "i2,47,60,trust,sara\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Folder with project ``p``: two interviews, codebook budget + trust, 5 codings (3 of trust)."""
    proj = init_project(tmp_path / "p")
    ingest(proj, [write(tmp_path / "i1.txt", I1), write(tmp_path / "i2.txt", I2)])
    import_codebook(proj, write(tmp_path / "cb.yaml", CB))
    assert import_codings(proj, write(tmp_path / "codings.csv", CODINGS)) == {"sara": 4, "reza": 1}
    proj.close()
    return tmp_path


def versions(folder: Path) -> list[int]:
    proj = Project.open(folder / "p")
    with proj.store.transaction() as s:
        ids = list(s.scalars(select(CodebookVersionRow.id).order_by(CodebookVersionRow.id)))
    proj.close()
    return ids


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_reimporting_an_unchanged_codebook_is_a_no_op(study: Path) -> None:
    r = qf("codebook", "import", "cb.yaml", cwd=study)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("unchanged codebook version 1 (2 codes, hash ") and r.stderr == ""
    proj = Project.open(study / "p")
    export_codebook(proj, study / "exported.csv")  # the same codebook as another format
    proj.close()
    r = qf("codebook", "import", "exported.csv", cwd=study)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("unchanged codebook version 1 (2 codes, hash ")
    assert versions(study) == [1]


def test_an_empty_codebook_is_refused_and_nothing_is_written(study: Path) -> None:
    write(study / "header.csv", "name,parent,description\n")
    r = qf("codebook", "import", "header.csv", cwd=study)
    assert r.returncode == 2
    assert one_line(r.stderr) == (
        "error: header.csv: the codebook has no codes; add at least one code and import it again"
    )
    proj = Project.open(study / "p")
    with pytest.raises(
        InputError, match=r"^\S*empty\.yaml: the codebook has no codes; add at least one code"
    ):
        import_codebook(proj, write(study / "empty.yaml", "name: cb\ncodes: []\n"))
    proj.close()
    assert versions(study) == [1]


def test_a_version_leaving_out_used_codes_is_refused_unless_allowed(study: Path) -> None:
    write(study / "cb_small.yaml", CB_SMALL)
    r = qf("codebook", "import", "cb_small.yaml", cwd=study)
    assert r.returncode == 2
    assert one_line(r.stderr) == (
        "error: cb_small.yaml: the new codebook leaves out code 'trust', used by 3 codings; add it back (a "
        "renamed code keeps its guid or path), or import with --allow-removed to keep those codings out of the "
        "report and export until a codebook has the code again"
    )
    assert versions(study) == [1]

    r = qf("codebook", "import", "--allow-removed", "cb_small.yaml", cwd=study)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == [
        "  3 codings use removed code 'trust' (3): kept, but left out of the report and export"
    ]
    assert versions(study) == [1, 2]
    note = (
        "note: left out 3 codings whose code is not in the current codebook: 'trust' (3 codings); import a "
        "codebook with that code to include them"
    )
    r = qf("report", "--out", "report", cwd=study)
    assert r.returncode == 0, r.stderr
    assert one_line(r.stderr) == note
    assert (study / "report" / "report.html").is_file()
    r = qf("export", "qdpx", "out.qdpx", cwd=study)
    assert r.returncode == 0, r.stderr
    assert one_line(r.stderr) == note
    assert r.stdout.strip() == "wrote out.qdpx: 2 sources, 1 code, 2 codings"

    proj = Project.open(study / "p")  # the codings stay stored and come back with the code
    import_codebook(proj, study / "cb.yaml")
    notes: list[str] = []
    write_project_report(proj, study / "report2", warn=notes.append)
    assert notes == [] and export_project_qdpx(proj, study / "back.qdpx", warn=notes.append) == (2, 2, 5)
    proj.close()


def test_a_renamed_code_takes_its_codings_along(study: Path) -> None:
    proj = Project.open(study / "p")
    # by guid: the derived guid of 'trust' (what a .qdc export writes for it), now named 'confidence'
    from pipeline.refi.qdc import stable_guid

    renamed = CB.replace("name: trust", f"name: confidence\n    guid: {stable_guid('code', 'trust')}")
    r = import_codebook(proj, write(study / "renamed.yaml", renamed))
    assert (r.version, r.created, r.renamed, r.moved, r.left_out) == (2, True, {"trust": "confidence"}, 3, {})
    # by key: moving 'budget' under 'money' keeps its key (its name is unique)
    nested = "name: cb\ncodes:\n  - name: money\n    codes:\n      - name: budget\n  - name: confidence\n"
    r = import_codebook(proj, write(study / "nested.yaml", nested))
    assert (r.version, r.renamed, r.moved, r.left_out) == (3, {}, 0, {})
    # by path: a second 'Budget' elsewhere keys both by their paths; the codings follow 'money/budget'
    r = import_codebook(proj, write(study / "shared.yaml", nested + "  - name: Budget\n"))
    assert (r.version, r.renamed, r.moved, r.left_out) == (4, {"budget": "money/budget"}, 2, {})
    with proj.store.transaction() as s:
        assert sorted({c.code for c in load_codings(s)}) == ["confidence", "money/budget"]
    notes: list[str] = []
    assert export_project_qdpx(proj, study / "out.qdpx", warn=notes.append) == (2, 4, 5) and notes == []
    proj.close()


def test_importing_a_qdpx_merges_its_codebook(study: Path) -> None:
    other = init_project(study / "q")
    ingest(other, [write(study / "o1.txt", "Interviewer: Hello?\nKim: Hello there, the weather is bad.\n")])
    import_codebook(
        other, write(study / "w.yaml", "name: other\ncodes:\n  - name: weather\n  - name: trust\n")
    )
    import_codings(other, write(study / "oc.csv", "source,start,end,code,coder\no1,45,52,weather,kim\n"))
    export_project_qdpx(other, study / "other.qdpx")
    other.close()

    r = qf("import", "qdpx", "other.qdpx", cwd=study)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "imported from qualflow 0.1.0: 1 source, 2 codes, 1 coding; kim: 1",
        "  new codebook version 2 (1 code added)",
    ]
    proj = Project.open(study / "p")
    with proj.store.transaction() as s:
        _, cb = require_codebook(s)
        assert [(c.name, c.description) for c in cb.codes] == [
            ("budget", "money"),
            ("trust", "trust"),  # the project's definition wins
            ("weather", ""),
        ]
        assert sorted({(c.code, c.coder) for c in load_codings(s)}) == [
            ("budget", "sara"),
            ("trust", "reza"),
            ("trust", "sara"),
            ("weather", "kim"),
        ]
        assert s.scalar(select(func.count()).select_from(CodingRow)) == 6
    notes: list[str] = []
    assert export_project_qdpx(proj, study / "both.qdpx", warn=notes.append) == (3, 3, 6) and notes == []
    proj.close()


def test_merging_keeps_codes_at_other_places_apart() -> None:
    from pipeline.codebook import validate_codebook
    from pipeline.domain import Code, Codebook
    from pipeline.project.codebooks import merge_codebooks

    current = validate_codebook(
        Codebook([Code("B"), Code("Other", parent="B"), Code("trust")], name="p"), "p"
    )
    other = validate_codebook(
        Codebook(
            [
                Code("A"),
                Code("Other", parent="A"),
                Code("Trust", guid="{0F8FAD5B-D9CB-469F-A165-70867728950E}"),
            ]
        ),
        "o",
    )
    merged, keys = merge_codebooks(current, other, "other.qdpx")
    assert [(c.name, c.parent) for c in merged.codes] == [
        ("B", None),
        ("B/Other", "B"),
        ("trust", None),  # the same path ignoring case: one code, the project's
        ("A", None),
        ("A/Other", "A"),
    ]
    assert keys == {"A": "A", "Other": "A/Other", "Trust": "trust"}


def _suggest(
    s, mv: int, cb: int, seg, code: str, score: float, state: str = "pending", kind: str = "deductive"
):  # type: ignore[no-untyped-def]
    from pipeline.store.schema import SuggestionRow

    row = SuggestionRow(
        source_id=seg.source_id,
        segment_id=seg.id,
        start=seg.start,
        end=seg.end,
        code=code,
        score=score,
        rank=1,
        kind=kind,
        model_version_id=mv,
        codebook_version_id=cb,
        priority=score,
        state=state,
    )
    s.add(row)
    s.flush()
    return row.id


def test_a_renamed_code_takes_its_pending_suggestions_along(study: Path) -> None:
    """Audit: pending suggestions of a renamed code stayed under the old key (the queue showed a code
    the codebook no longer has). Decided ones keep their history, inductive ones their label; where the
    new key has a suggestion already, the higher score stays in the queue and the other is superseded."""
    from pipeline.project.decisions import decide
    from pipeline.project.suggest import register_model_version
    from pipeline.refi.qdc import stable_guid
    from pipeline.store.queries import get_or_create_coder
    from pipeline.store.schema import SegmentRow, SuggestionRow

    proj = Project.open(study / "p")
    with proj.store.transaction() as s:
        cb = int(s.scalar(select(func.max(CodebookVersionRow.id))) or 0)
        mv = register_model_version(
            s, name="fake", suggester="fake", params={}, embedding="none", codebook_version_id=cb
        ).id
        seg = list(s.scalars(select(SegmentRow).order_by(SegmentRow.id)))
        assert len(seg) >= 6
        ids = {
            "moves": _suggest(s, mv, cb, seg[0], "trust", 0.7),
            "decided": _suggest(s, mv, cb, seg[1], "trust", 0.8, state="accepted"),
            "other_code": _suggest(s, mv, cb, seg[1], "budget", 0.6),
            "inductive": _suggest(s, mv, cb, seg[2], "trust", 0.5, kind="inductive"),
            # the new key has a pending suggestion already, with a lower score: the higher one stays
            "higher": _suggest(s, mv, cb, seg[3], "trust", 0.9),
            "lower_there": _suggest(s, mv, cb, seg[3], "confidence", 0.4),
            # ... with a higher score
            "lower": _suggest(s, mv, cb, seg[4], "trust", 0.3),
            "higher_there": _suggest(s, mv, cb, seg[4], "confidence", 0.6),
            # ... answered already: its record stays, the renamed one leaves the queue
            "answered": _suggest(s, mv, cb, seg[5], "trust", 0.95),
            "rejected_there": _suggest(s, mv, cb, seg[5], "confidence", 0.5, state="rejected"),
        }
    renamed = CB.replace("name: trust", f"name: confidence\n    guid: {stable_guid('code', 'trust')}")
    r = import_codebook(proj, write(study / "renamed.yaml", renamed))
    assert (r.renamed, r.moved, r.suggestions_moved, r.suggestions_superseded) == (
        {"trust": "confidence"},
        3,
        1,
        3,
    )
    with proj.store.transaction() as s:
        got = {k: s.get(SuggestionRow, i) for k, i in ids.items()}
        state = {k: (row.code, row.state, row.score) for k, row in got.items() if row is not None}
    assert state == {
        "moves": ("confidence", "pending", 0.7),
        "decided": ("trust", "accepted", 0.8),
        "other_code": ("budget", "pending", 0.6),
        "inductive": ("trust", "pending", 0.5),
        "higher": ("trust", "superseded", 0.9),
        "lower_there": ("confidence", "pending", 0.9),  # with the higher score
        "lower": ("trust", "superseded", 0.3),
        "higher_there": ("confidence", "pending", 0.6),
        "answered": ("trust", "superseded", 0.95),
        "rejected_there": ("confidence", "rejected", 0.5),
    }
    with proj.store.transaction() as s:  # accepting the moved suggestion codes the code the codebook has
        ana = get_or_create_coder(s, "ana")
        res = decide(s, ids["moves"], ana, "accept")
        coding = s.get(CodingRow, res.coding_id)
        assert coding is not None and coding.code == "confidence"
    proj.close()


def test_codes_swapping_names_swap_their_pending_suggestions(study: Path) -> None:
    from pipeline.project.codebooks import move_pending_suggestions
    from pipeline.project.suggest import register_model_version
    from pipeline.store.schema import SegmentRow, SuggestionRow

    proj = Project.open(study / "p")
    with proj.store.transaction() as s:
        cb = int(s.scalar(select(func.max(CodebookVersionRow.id))) or 0)
        mv = register_model_version(
            s, name="fake", suggester="fake", params={}, embedding="none", codebook_version_id=cb
        ).id
        seg = s.scalars(select(SegmentRow).order_by(SegmentRow.id)).first()
        a = _suggest(s, mv, cb, seg, "budget", 0.7)
        b = _suggest(s, mv, cb, seg, "trust", 0.2)
        assert move_pending_suggestions(s, {"budget": "trust", "trust": "budget"}) == (2, 0)
        assert [(x.code, x.score) for x in (s.get(SuggestionRow, a), s.get(SuggestionRow, b)) if x] == [
            ("trust", 0.7),
            ("budget", 0.2),
        ]
    proj.close()


def test_codes_swapping_names_swap_the_codings_of_one_passage(study: Path) -> None:
    """A coder gave one passage both codes: the swap moves each coding to the other key, though the
    database takes one active coding per passage, code and coder (moved in two steps). Two old codes
    that become one keep one active coding there, with both memos."""
    from pipeline.project.codebooks import move_codings

    proj = Project.open(study / "p")
    with proj.store.transaction() as s:
        rows = s.scalars(select(CodingRow).where(CodingRow.start == 84).order_by(CodingRow.id)).all()
        trust = rows[0]  # sara's 'Trust is low', coded trust
        budget = CodingRow(
            source_id=trust.source_id,
            start=84,
            end=96,
            code="budget",
            codebook_version_id=trust.codebook_version_id,
            coder_id=trust.coder_id,
            memo="money too",
        )
        s.add(budget)
        s.flush()
        assert move_codings(s, {"budget": "trust", "trust": "budget"}) == 6
        assert (s.get(CodingRow, trust.id).code, s.get(CodingRow, budget.id).code) == ("budget", "trust")  # type: ignore[union-attr]
        trust.memo = "low"
        # an adjudication that settled the coding the merge retracts lists the one kept afterwards
        from pipeline.store.schema import AdjudicationRow, RoundRow

        rnd = RoundRow(name="R1", codebook_version_id=trust.codebook_version_id)
        s.add(rnd)
        s.flush()
        adj = AdjudicationRow(
            round_id=rnd.id, source_id=trust.source_id, start=84, end=96, lead_id=trust.coder_id,
            choice="both", settled_coding_ids=[budget.id, trust.id],
        )  # fmt: skip
        s.add(adj)
        s.flush()
        assert move_codings(s, {"trust": "budget"}) == 3  # the old budget codings, the added one among them
        kept, gone = s.get(CodingRow, trust.id), s.get(CodingRow, budget.id)
        assert kept is not None and gone is not None
        assert (kept.code, kept.active, kept.memo) == ("budget", True, "low\n\nmoney too")
        assert (gone.code, gone.active) == ("budget", False)
        assert adj.settled_coding_ids == [trust.id]
    proj.close()


def test_a_category_renamed_in_an_exported_codebook_keeps_its_codes_and_codings(tmp_path: Path) -> None:
    """`codebook export` writes every code's guid, so renaming a category in the file (its children's
    keys are paths: both categories have a 'strong') keeps the children and moves their codings, instead
    of refusing them as removed (audit finding)."""
    proj = init_project(tmp_path / "p")
    ingest(proj, [write(tmp_path / "i1.txt", I1)])
    cb = (
        "name: cb\ncodes:\n"
        "  - name: Look\n    codable: false\n    codes:\n      - name: strong\n      - name: weak\n"
        "  - name: Sound\n    codable: false\n    codes:\n      - name: strong\n"
    )
    import_codebook(proj, write(tmp_path / "cb.yaml", cb))
    import_codings(
        proj, write(tmp_path / "c.csv", "source,start,end,code,coder\ni1,37,47,Look/strong,sara\n")
    )
    out = tmp_path / "export.yaml"
    export_codebook(proj, out)
    text = out.read_text(encoding="utf-8")
    assert text.count("guid:") == 5
    edited = text.replace("name: Look", "name: Feelings")
    assert edited != text
    import_codebook(proj, write(tmp_path / "edited.yaml", edited))
    with proj.store.transaction() as s:
        codes = [(c.code, c.coder) for c in load_codings(s)]
        _, current = require_codebook(s)
    assert codes == [("Feelings/strong", "sara")]
    assert [c.name for c in current.codes] == ["Feelings", "Feelings/strong", "weak", "Sound", "Sound/strong"]
    proj.close()
