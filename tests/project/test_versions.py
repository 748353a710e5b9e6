"""Source versions, role overrides, duplicate suggestions and repeated imports (regressions from review)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.embed.base import HashingEmbedder
from pipeline.errors import InputError
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project
from pipeline.project.corpus import load_corpus
from pipeline.project.ingest import LeftCoding, ingest
from pipeline.project.suggest import suggest
from pipeline.project.summary import set_roles, summary
from pipeline.store.schema import CoderRow, CodingRow, SegmentRow, SourceRow, SuggestionRow, TurnRow

T1 = "Interviewer: Why was the rollout slow?\nMina: The budget was cut twice. We had no staff.\n"
T2 = T1.replace("twice", "three times")
CODEBOOK = "name: t\ncodes:\n  - name: budget\n    description: money budget cut\n  - name: staff\n    description: no staff people\n"


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def versions(project: Project) -> list[tuple[int, bool]]:
    with project.store.transaction() as s:
        rows = s.execute(select(SourceRow.version, SourceRow.is_current).order_by(SourceRow.version)).all()
        return [(int(v), bool(c)) for v, c in rows]


def test_same_text_other_bytes_is_unchanged(project: Project, tmp_path: Path) -> None:
    f = write(tmp_path / "int01.txt", T1)
    ingest(project, [f])
    write(f, T1.replace("\n", "\r\n").encode("utf-8"))  # re-saved on Windows: same text
    r = ingest(project, [f])
    assert r.unchanged == ["int01"] and versions(project) == [(1, True)]
    write(f, b"\xef\xbb\xbf" + T1.encode("utf-8"))  # with a BOM: same text
    assert ingest(project, [f]).unchanged == ["int01"]


def test_reverting_to_an_older_file_makes_it_current(project: Project, tmp_path: Path) -> None:
    f = write(tmp_path / "int01.txt", T1)
    ingest(project, [f])
    write(f, T2)
    ingest(project, [f])
    write(f, T1)
    r = ingest(project, [f])
    assert r.new_versions == [("int01", 2, 3)]
    assert versions(project) == [(1, False), (2, False), (3, True)]
    with project.store.transaction() as s:
        cur = s.scalar(select(SourceRow).where(SourceRow.is_current))
        assert cur is not None and cur.text == T1


def test_new_version_keeps_metadata_order_and_roles(project: Project, tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", T1)
    b = write(tmp_path / "b.txt", T1.replace("Mina", "Reza"))
    meta = write(tmp_path / "meta.csv", "source,participant,order\na,Mina,2\nb,Reza,1\n")
    ingest(project, [a, b], metadata_csv=meta)
    set_roles(project, "a", {"Interviewer": "participant", "Mina": "interviewer"})
    write(a, T2)
    ingest(project, [a])
    with project.store.transaction() as s:
        cur = s.scalar(select(SourceRow).where(SourceRow.name == "a", SourceRow.is_current))
        assert cur is not None and cur.version == 2
        assert cur.meta["participant"] == "Mina" and cur.meta["order"] == "2"
        assert cur.ingest_order == 1  # its place in the interview order is kept
        assert {t.speaker: t.role for t in cur.turns} == {"Interviewer": "participant", "Mina": "interviewer"}


def test_role_override_errors(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "a.txt", T1)])
    with pytest.raises(InputError, match="no speaker"):
        set_roles(project, "a", {"Nobody": "participant"})
    with pytest.raises(InputError, match="not one of"):
        set_roles(project, "a", {"Mina": "boss"})
    set_roles(project, "a", {"Mina": "interviewer"})
    with project.store.transaction() as s:
        assert (
            s.scalar(select(func.count()).select_from(SegmentRow).where(SegmentRow.role == "participant"))
            == 0
        )
        assert s.scalar(select(func.count()).select_from(TurnRow).where(TurnRow.role == "interviewer")) == 2


def test_interviewer_only_source_has_nothing_to_suggest(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "memo.txt", "Interviewer: Note one?\nInterviewer: Note two?\n")])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    with project.store.transaction() as s:
        assert load_corpus(s, project, sources=["memo"]).texts == []
        with pytest.raises(InputError, match="unknown source"):
            load_corpus(s, project, sources=["nope"])


def test_a_second_model_does_not_queue_the_same_pair_twice(project: Project, tmp_path: Path) -> None:
    ingest(project, [write(tmp_path / "a.txt", T1)])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    emb = HashingEmbedder()
    suggest(project, suggester="prototype", embedder=emb)
    again = suggest(project, suggester="prototype", embedder=emb)
    assert again.unchanged and again.model_label == "local-prototype@1" and again.pending > 0
    suggest(project, suggester="prototype", embedder=emb, force=True)  # a second version
    with project.store.transaction() as s:
        pending = s.execute(
            select(SuggestionRow.segment_id, SuggestionRow.code).where(SuggestionRow.state == "pending")
        ).all()
        assert pending and len(pending) == len(set(pending))  # each (segment, code) pending once
        n_superseded = s.scalar(
            select(func.count()).select_from(SuggestionRow).where(SuggestionRow.state == "superseded")
        )
        assert n_superseded == len(pending)


def test_resegment_after_a_mode_change(project: Project, tmp_path: Path) -> None:
    from pipeline.project.ingest import resegment

    ingest(project, [write(tmp_path / "a.txt", T1)])
    project.config.segmentation.mode = "turn"
    assert resegment(project) == 2  # one segment per turn
    assert resegment(project) == 0  # nothing left to do
    with project.store.transaction() as s:
        schemes = sorted(set(s.scalars(select(SegmentRow.scheme))))
    assert schemes == ["sentence", "turn"]


def test_unsegmented_sources_name_what_resegment_would_segment(project: Project, tmp_path: Path) -> None:
    """After a [segmentation] change the old sources have no segments of the new scheme: the commands
    that would silently leave them out (suggest, agreement, evaluate, summary) say so by name."""
    from pipeline.project.ingest import resegment, unsegmented_sources

    ingest(project, [write(tmp_path / "a.txt", T1), write(tmp_path / "b.txt", T1.replace("Mina", "Reza"))])
    assert unsegmented_sources(project) == []
    project.config.segmentation.mode = "turn"
    assert unsegmented_sources(project) == ["a", "b"]
    resegment(project)
    assert unsegmented_sources(project) == []


def test_summary_says_to_resegment_after_a_mode_change(tmp_path: Path) -> None:
    import subprocess
    import sys

    def qf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "--project", "p", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )

    assert qf("init", "p").returncode == 0
    write(tmp_path / "tx" / "a.txt", T1)
    assert qf("ingest", "tx").returncode == 0
    assert "resegment" not in qf("summary").stderr
    cfg = tmp_path / "p" / "qualflow.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace('mode = "sentence"', 'mode = "turn"'), encoding="utf-8"
    )
    r = qf("summary")
    assert r.returncode == 0, r.stderr
    assert "note: 1 source has no segments" in r.stderr and "(mode = 'turn'): a;" in r.stderr
    assert "`qualflow resegment`" in r.stderr
    assert qf("resegment").returncode == 0
    assert "resegment" not in qf("summary").stderr


# --- codings follow a fixed typo to the new version ------------------------------------------------

CODINGS = (  # on T1: "The budget was cut" (sara), "We had no staff" (sara), "The budget was cut twice." (reza)
    "source,start,end,code,coder\nint01,45,63,budget,sara\nint01,71,86,staff,sara\nint01,45,70,budget,reza\n"
)


def codings_by_version(project: Project) -> list[tuple[int, int, int, str, str]]:
    with project.store.transaction() as s:
        rows = s.execute(
            select(SourceRow.version, CodingRow.start, CodingRow.end, CodingRow.code, CoderRow.name)
            .join(SourceRow, CodingRow.source_id == SourceRow.id)
            .join(CoderRow, CodingRow.coder_id == CoderRow.id)
            .where(CodingRow.active)
            .order_by(SourceRow.version, CodingRow.start, CodingRow.end, CoderRow.name)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_codings_are_carried_to_a_new_version_when_their_text_is_unchanged(
    project: Project, tmp_path: Path
) -> None:
    f = write(tmp_path / "int01.txt", T1)
    ingest(project, [f])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    import_codings(project, write(tmp_path / "c.csv", CODINGS))

    # v2: an edit before every coding (+4 characters): all shift
    v2 = T1.replace("rollout slow", "roll-out so slow")
    r = ingest(project, [write(f, v2)])
    assert r.new_versions == [("int01", 1, 2)]
    assert r.codings_carried == {"int01": 3} and r.codings_left_on_old == {} and r.codings_left == {}
    assert codings_by_version(project) == [
        (2, 49, 67, "budget", "sara"),
        (2, 49, 74, "budget", "reza"),
        (2, 75, 90, "staff", "sara"),
    ]

    # v3: an edit right after "We had no staff": nothing moves
    v3 = v2.replace("staff.", "staff!")
    assert ingest(project, [write(f, v3)]).codings_carried == {"int01": 3}
    assert [c[1:3] for c in codings_by_version(project)] == [(49, 67), (49, 74), (75, 90)]

    # v4: an edit inside reza's coding ("twice"): it stays on v3, the others come along
    v4 = v3.replace("twice", "three times")
    r = ingest(project, [write(f, v4)])
    assert r.codings_carried == {"int01": 2} and r.codings_left_on_old == {"int01": 1}
    assert r.codings_left == {"int01": [LeftCoding(3, 49, 74, "budget", "reza", "The budget was cut twice.")]}
    assert codings_by_version(project) == [
        (3, 49, 74, "budget", "reza"),
        (4, 49, 67, "budget", "sara"),
        (4, 81, 96, "staff", "sara"),
    ]
    assert [c.source for c in load_codings_current(project)] == ["int01", "int01"]

    # v5: the original file again: every coding is back on its first offsets, reza's from v3 too
    r = ingest(project, [write(f, T1)])
    assert r.new_versions == [("int01", 4, 5)] and r.codings_carried == {"int01": 3} and not r.codings_left
    assert codings_by_version(project) == [
        (5, 45, 63, "budget", "sara"),
        (5, 45, 70, "budget", "reza"),
        (5, 71, 86, "staff", "sara"),
    ]
    s = summary(project, versions=True)
    assert [(x["version"], x["current"], x["codings"]) for x in s.sources] == [
        (1, False, 0),
        (2, False, 0),
        (3, False, 0),
        (4, False, 0),
        (5, True, 3),
    ]


def load_codings_current(project: Project):  # type: ignore[no-untyped-def]
    from pipeline.store.queries import load_codings

    with project.store.transaction() as s:
        return load_codings(s)


def test_a_failed_ingest_carries_nothing(project: Project, tmp_path: Path) -> None:
    f = write(tmp_path / "int01.txt", T1)
    ingest(project, [f])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    import_codings(project, write(tmp_path / "c.csv", CODINGS))
    write(f, T1.replace("rollout", "roll-out"))
    bad_meta = write(tmp_path / "meta.csv", "source,participant\nnobody,X\n")  # fails inside the transaction
    with pytest.raises(InputError, match="unknown source"):
        ingest(project, [f], metadata_csv=bad_meta)
    assert versions(project) == [(1, True)]
    assert [c[:3] for c in codings_by_version(project)] == [(1, 45, 63), (1, 45, 70), (1, 71, 86)]


def test_cli_ingest_says_what_was_carried_and_sources_versions_shows_the_rest(
    project: Project, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    f = write(tmp_path / "int01.txt", T1)
    ingest(project, [f])
    import_codebook(project, write(tmp_path / "cb.yaml", CODEBOOK))
    import_codings(project, write(tmp_path / "c.csv", CODINGS))
    write(f, T1.replace("twice", "three times"))
    runner = CliRunner()
    out = runner.invoke(app, ["ingest", str(f), "--project", str(project.root)])
    assert out.exit_code == 0, out.output
    assert (
        "int01: version 1 -> 2; 2 codings carried forward, 1 left on version 1 "
        "(see `qualflow sources --versions`)\n"
        "    left on v1 45-70 budget (reza): 'The budget was cut twice.'\n"
    ) in out.output
    out = runner.invoke(app, ["sources", "--versions", "--project", str(project.root)])
    assert out.exit_code == 0, out.output
    rows = [
        line.split("│")[1:3] + line.split("│")[8:9] for line in out.output.splitlines() if "int01" in line
    ]
    assert [[c.strip() for c in r] for r in rows] == [["int01", "1 (old)", "1"], ["int01", "2", "2"]]
