"""Source versions, role overrides, duplicate suggestions and repeated imports (regressions from review)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.embed.base import HashingEmbedder
from pipeline.errors import InputError
from pipeline.project.codebooks import import_codebook
from pipeline.project.core import Project
from pipeline.project.corpus import load_corpus
from pipeline.project.ingest import ingest
from pipeline.project.suggest import suggest
from pipeline.project.summary import set_roles
from pipeline.store.schema import SegmentRow, SourceRow, SuggestionRow, TurnRow

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
