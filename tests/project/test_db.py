"""The project database on SQLite and PostgreSQL: migrations, `qualflow db upgrade`, `qualflow db copy`,
and the queries that once worked on SQLite only (agreement and report with model coders)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner

from pipeline.errors import InputError
from pipeline.project.core import Project
from pipeline.store import Store
from pipeline.store.copy import copy_database, current_revision, head_revision, tables
from pipeline.store.schema import CoderRow, SuggestionRow
from review.testing import build_demo_project, demo_template


@pytest.fixture(scope="module")
def demo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The review demo project (transcripts, codebook, codings, suggestions, candidates) on SQLite."""
    return demo_template(tmp_path_factory.mktemp("dbdemo"))


def test_agreement_and_report_with_model_coders(db_url: str | None, tmp_path: Path) -> None:
    """`qualflow agreement` / `report` once failed on PostgreSQL (DISTINCT over JSON columns)."""
    from pipeline.project.agreement import model_coders, project_agreement
    from pipeline.project.report import write_project_report

    root = build_demo_project(tmp_path / "p", database_url=db_url)
    proj = Project.open(root)
    try:
        with proj.store.transaction() as s:
            models = model_coders(s)
        assert len(models) == 1 and models[0].startswith("model:")
        humans = sorted(project_agreement(proj, n_boot=50).coders)
        report = project_agreement(proj, coders=[*humans, models[0]], n_boot=50)
        assert models[0] in report.coders
        out = write_project_report(proj, tmp_path / "report")
        assert out.exists()
    finally:
        proj.close()


def test_migrations_and_db_upgrade(db_url: str | None, tmp_path: Path) -> None:
    """An old schema (0002) migrates to the newest with `qualflow db upgrade`; a second run changes nothing."""
    from alembic import command

    from cli.app import app
    from pipeline.project.core import init_project
    from pipeline.store import alembic_config

    proj = init_project(tmp_path / "p", database_url=db_url)
    url = proj.store.url
    proj.close()
    store = Store(url)
    with store.engine.begin() as conn:
        cfg = alembic_config(store.engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert current_revision(store.engine) == "0002"
    store.dispose()
    runner = CliRunner()
    r = runner.invoke(app, ["--project", str(tmp_path / "p"), "db", "upgrade"])
    assert r.exit_code == 0, r.output
    assert f"database migrated: 0002 -> {head_revision()}" in r.output
    r = runner.invoke(app, ["--project", str(tmp_path / "p"), "db", "upgrade"])
    assert r.exit_code == 0 and "already at the newest schema" in r.output
    store = Store(url)
    assert current_revision(store.engine) == head_revision()
    store.dispose()


def test_migration_0008_resolves_duplicate_codings_then_refuses_them(
    db_url: str | None, tmp_path: Path
) -> None:
    """A database at 0007 holding identical active codings: the oldest stays active with the others'
    distinct memos, the others are retracted, adjudications list the kept one; then the database refuses
    a second identical active coding and still takes retracted ones (history)."""
    from alembic import command
    from sqlalchemy import insert, inspect
    from sqlalchemy.exc import IntegrityError

    from pipeline.project.core import init_project
    from pipeline.store import alembic_config
    from pipeline.store.schema import AdjudicationRow, CodebookVersionRow, CodingRow, RoundRow, SourceRow

    proj = init_project(tmp_path / "p", database_url=db_url)
    url = proj.store.url
    proj.close()
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            cfg = alembic_config(store.engine)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        with store.engine.begin() as conn:

            def add(row: type, **values: object) -> int:
                key = conn.execute(insert(row.__table__).values(**values)).inserted_primary_key  # type: ignore[attr-defined]
                assert key is not None
                return int(key[0])

            src = add(
                SourceRow,
                name="int01",
                file_name="int01.txt",
                file_hash="f",
                text_hash="t",
                format="plain",
                language="en",
                text="We waited for months.",
            )
            cb = add(CodebookVersionRow, hash="h", name="cb")
            ana, ben = add(CoderRow, name="ana"), add(CoderRow, name="ben")

            def coding(
                coder: int, memo: str | None = None, code: str = "waiting", active: bool = True
            ) -> int:
                return add(
                    CodingRow,
                    source_id=src,
                    start=0,
                    end=9,
                    code=code,
                    codebook_version_id=cb,
                    coder_id=coder,
                    memo=memo,
                    active=active,
                )

            kept = coding(ana, "first")
            dups = [
                coding(ana, "second"),
                coding(ana, " first "),
                coding(ana),
                coding(ana, "second\n\nthird"),
            ]
            bens, other_code, retracted = (
                coding(ben, "ben's"),
                coding(ana, code="delay"),
                coding(ana, active=False),
            )
            rnd = add(RoundRow, name="r1", codebook_version_id=cb)
            adj = add(
                AdjudicationRow,
                round_id=rnd,
                source_id=src,
                start=0,
                end=9,
                lead_id=ben,
                choice="both",
                coding_ids=[dups[0], other_code],
                settled_coding_ids=[kept, dups[1], bens],
            )
        store.migrate()
        assert current_revision(store.engine) == head_revision()
        with store.transaction() as s:
            rows = {r.id: r for r in s.scalars(select(CodingRow))}
            assert {i for i, r in rows.items() if r.active} == {kept, bens, other_code}
            assert rows[kept].memo == "first\n\nsecond\n\nsecond\n\nthird"
            assert all(not rows[i].active for i in [*dups, retracted])
            assert [rows[i].memo for i in dups] == [
                "second",
                " first ",
                None,
                "second\n\nthird",
            ]  # as they were
            a = s.get(AdjudicationRow, adj)
            assert a is not None
            assert (a.coding_ids, a.settled_coding_ids) == ([kept, other_code], [kept, bens])
        indexes = {ix["name"]: ix for ix in inspect(store.engine).get_indexes("codings")}
        assert indexes["uq_codings_active"]["unique"]
        values = {
            "source_id": src,
            "start": 0,
            "end": 9,
            "code": "waiting",
            "codebook_version_id": cb,
            "coder_id": ana,
        }
        with pytest.raises(IntegrityError), store.engine.begin() as conn:
            conn.execute(insert(CodingRow.__table__).values(**values, active=True))
        # retracted codings are history: any number of them, and re-coding a retracted span works
        with store.engine.begin() as conn:
            conn.execute(insert(CodingRow.__table__).values(**values, active=False))
            conn.execute(update(CodingRow.__table__).where(CodingRow.id == kept).values(active=False))
            conn.execute(insert(CodingRow.__table__).values(**values, active=True))
        with store.engine.connect() as conn:
            n = conn.scalar(
                select(func.count()).where(
                    CodingRow.coder_id == ana, CodingRow.code == "waiting", CodingRow.active
                )
            )
            assert n == 1
    finally:
        store.dispose()


def test_migration_0009_gives_coders_a_guid_and_keeps_them(db_url: str | None, tmp_path: Path) -> None:
    """A database at 0008 with coders and a coding: 0009 adds ``coders.guid``, empty for every coder, and
    changes no row; a guid stored then is read back; the downgrade drops the column and keeps the rows."""
    from alembic import command
    from sqlalchemy import insert, inspect

    from pipeline.project.core import init_project
    from pipeline.store import alembic_config
    from pipeline.store.schema import CodebookVersionRow, CodingRow, SourceRow

    proj = init_project(tmp_path / "p", database_url=db_url)
    url = proj.store.url
    proj.close()
    store = Store(url)
    try:

        def to(revision: str) -> None:
            with store.engine.begin() as conn:
                cfg = alembic_config(store.engine)
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, revision)

        def columns() -> list[str]:
            return [c["name"] for c in inspect(store.engine).get_columns("coders")]

        to("0008")
        assert "guid" not in columns()
        with store.engine.begin() as conn:
            conn.execute(insert(CoderRow).values(id=1, name="ana", kind="human", role="lead"))
            conn.execute(insert(CoderRow).values(id=2, name="user-cf7eac62"))
            conn.execute(
                insert(SourceRow).values(
                    id=1,
                    name="i1",
                    file_name="i1.txt",
                    file_hash="f",
                    text_hash="t",
                    format="plain",
                    language="en",
                    text="We waited for months.",
                )
            )
            conn.execute(insert(CodebookVersionRow).values(id=1, hash="h", name="cb"))
            conn.execute(
                insert(CodingRow).values(
                    source_id=1, start=0, end=9, code="waiting", codebook_version_id=1, coder_id=2
                )
            )
        store.migrate()
        assert current_revision(store.engine) == head_revision() and "guid" in columns()
        guid = "CF7EAC62-16BE-410E-AE32-85B6EA861A9D"
        with store.transaction() as s:
            coders = s.scalars(select(CoderRow).order_by(CoderRow.id)).all()
            assert [(c.id, c.name, c.kind, c.role, c.guid) for c in coders] == [
                (1, "ana", "human", "lead", None),
                (2, "user-cf7eac62", "human", "coder", None),
            ]
            coders[1].guid = guid
        with store.transaction() as s:
            assert s.scalar(select(CoderRow.guid).where(CoderRow.id == 2)) == guid
            assert s.scalar(select(func.count()).select_from(CodingRow).where(CodingRow.coder_id == 2)) == 1
        to("0008")
        assert "guid" not in columns()
        with store.engine.connect() as conn:
            names = conn.execute(text("SELECT name FROM coders ORDER BY id")).scalars().all()
            assert names == ["ana", "user-cf7eac62"]
            assert conn.execute(text("SELECT count(*) FROM codings")).scalar() == 1
    finally:
        store.dispose()


def test_db_copy_sqlite_to_postgresql(demo_sqlite: Path, pg_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every row, every table, counts equal; new rows get fresh ids; a non-empty target is refused."""
    from cli.app import app

    root = tmp_path / "p"
    shutil.copytree(demo_sqlite, root)
    src = f"sqlite:///{root / 'qualflow.db'}"
    dst = pg_cluster.create_database()
    r = CliRunner().invoke(app, ["db", "copy", src, dst])
    assert r.exit_code == 0, r.output
    assert "every count equal" in r.output
    rows = [line.split() for line in r.output.splitlines()]
    counts = {w[0]: w[1:3] for w in rows if len(w) == 3 and w[1].isdigit() and not w[0].endswith(":")}
    assert set(counts) == {t.name for t in tables()}
    assert all(a == b for a, b in counts.values()) and int(counts["suggestions"][0]) > 0
    # the copy is the same data: the project works on it, and new rows get ids past the copied ones
    from tests.pg import point_project_at

    point_project_at(root, dst)
    proj = Project.open(root)
    try:
        with proj.store.transaction() as s:
            before = s.scalar(select(func.max(CoderRow.id)))
            s.add(CoderRow(name="new person", kind="human", role="coder"))
            s.flush()
            assert s.scalar(select(func.max(CoderRow.id))) == (before or 0) + 1
            assert s.scalar(select(func.count()).select_from(SuggestionRow)) == int(counts["suggestions"][0])
    finally:
        proj.close()
    with pytest.raises(InputError, match="already holds rows"):
        copy_database(src, dst)
    r = CliRunner().invoke(app, ["db", "copy", src, dst])
    assert r.exit_code != 0


def test_db_copy_refuses_an_old_or_missing_source(pg_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.project.core import init_project

    dst = pg_cluster.create_database()
    with pytest.raises(InputError, match="no SQLite database"):
        copy_database(f"sqlite:///{tmp_path / 'missing.db'}", dst)
    proj = init_project(tmp_path / "p")
    url = proj.store.url
    proj.close()
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    store.dispose()
    with pytest.raises(InputError, match="qualflow db upgrade"):
        copy_database(url, dst)
