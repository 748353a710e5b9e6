"""A coder keeps the REFI-QDA User guid a project file gives it (``coders.guid``, migration 0009): an
export writes it back, so NVivo, MAXQDA or ATLAS.ti find their own users in the file they get back
instead of a new user per coder; a re-import adds nothing; a coder that has another guid keeps its own
(one warning); a file's user guid is a coder's guid in the file qualflow writes, once."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.domain import Code, Codebook, Coding, Source
from pipeline.errors import InputError
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.exchange import export_project_qdpx, import_project_qdpx
from pipeline.refi.qdc import stable_guid
from pipeline.refi.qdpx import export_user_guids, import_qdpx, project_qde
from pipeline.store.schema import CoderRow, CodingRow

T1 = "Interviewer: How is the budget?\nParticipant: The budget is too small. We cannot hire staff.\n"
COST = "11111111-1111-4111-8111-111111111111"
ANA = "D3B9DA0F-EB28-4C5A-9C1E-2B1F0A6E7C11"  # as NVivo writes them: upper case
BEN = "{6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}"  # with braces, as the schema allows
STRANGER = "CF7EAC62-16BE-410E-AE32-85B6EA861A9D"  # a creatingUser the file's Users do not list
NS = "{urn:QDA-XML:project:1.0}"


def _span(quote: str) -> tuple[int, int]:
    start = T1.index(quote)
    return start, start + len(quote)


def _qdpx(path: Path, users: list[tuple[str, str]], selections: list[tuple[str, str]]) -> Path:
    """One source 'i1' (T1), code 'cost'; ``users`` (guid, name); ``selections`` (quote, creatingUser)."""
    sels = "".join(
        f"<PlainTextSelection guid='33333333-3333-4333-8333-33333333333{i}' startPosition='{a}' "
        f"endPosition='{b}' creatingUser='{user}'><Coding guid='44444444-4444-4444-8444-44444444444{i}' "
        f"creatingUser='{user}'><CodeRef targetGUID='{COST}'/></Coding></PlainTextSelection>"
        for i, (quote, user) in enumerate(selections)
        for a, b in [_span(quote)]
    )
    xml = (
        "<?xml version='1.0' encoding='utf-8'?>"
        "<Project xmlns='urn:QDA-XML:project:1.0' name='t' origin='NVivo 14'>"
        "<Users>" + "".join(f"<User guid='{g}' name='{n}'/>" for g, n in users) + "</Users>"
        f"<CodeBook><Codes><Code guid='{COST}' name='cost' isCodable='true'/></Codes></CodeBook>"
        "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='i1' "
        f"plainTextPath='internal://i1.txt'>{sels}</TextSource></Sources></Project>"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", xml)
        zf.writestr("Sources/i1.txt", T1.encode("utf-8"))
    return path


def _nvivo_file(tmp_path: Path) -> Path:
    """ana (two codings), ben (one) and an unlisted user (one)."""
    return _qdpx(
        tmp_path / "nvivo.qdpx",
        [(ANA, "ana"), (BEN, "ben")],
        [("The budget", ANA), ("too small", ANA), ("hire staff", BEN), ("budget?", STRANGER)],
    )


def _users(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(guid, name) of each User of a .qdpx, and (selection text, creatingUser) of each selection."""
    with zipfile.ZipFile(path) as zf:
        root = ET.fromstring(zf.read("project.qde"))
        (source,) = root.iter(f"{NS}TextSource")
        text = zf.read(f"Sources/{source.get('guid')}.txt").decode()
    users = [(u.get("guid", ""), u.get("name", "")) for u in root.iter(f"{NS}User")]
    sels = [
        (text[int(s.get("startPosition", "")) : int(s.get("endPosition", ""))], s.get("creatingUser", ""))
        for s in root.iter(f"{NS}PlainTextSelection")
    ]
    return users, sels


def _coders(proj: Project) -> list[tuple[str, str | None]]:
    with proj.store.transaction() as s:
        return [(c.name, c.guid) for c in s.scalars(select(CoderRow).order_by(CoderRow.id))]


def _codings(proj: Project) -> int:
    with proj.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(CodingRow)) or 0)


def test_import_then_export_gives_back_the_users_guids(project: Project, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL: every coder keeps its user's guid as the file writes it (upper case,
    braces), the unlisted user's too, and the export writes them back on the users and the codings."""
    report = import_project_qdpx(project, _nvivo_file(tmp_path))
    assert report.codings == {"ana": 2, "ben": 1, "user-cf7eac62": 1}
    assert _coders(project) == [("ana", ANA), ("ben", BEN), ("user-cf7eac62", STRANGER)]
    warned: list[str] = []
    export_project_qdpx(project, tmp_path / "back.qdpx", warn=warned.append)
    assert warned == []
    users, sels = _users(tmp_path / "back.qdpx")
    assert users == [(ANA, "ana"), (BEN, "ben"), (STRANGER, "user-cf7eac62")]
    assert sorted(sels) == sorted(
        [("The budget", ANA), ("too small", ANA), ("hire staff", BEN), ("budget?", STRANGER)]
    )


def test_a_reimport_adds_no_coder_and_no_coding(tmp_path: Path) -> None:
    """The same file again, and the file qualflow wrote from it: the same coders, codings and guids."""
    proj = init_project(tmp_path / "p", name="p")
    path = _nvivo_file(tmp_path)
    import_project_qdpx(proj, path)
    coders, n = _coders(proj), _codings(proj)
    again = import_project_qdpx(proj, path)
    assert (again.codings, again.warnings) == ({}, [])
    assert (_coders(proj), _codings(proj)) == (coders, n)
    export_project_qdpx(proj, tmp_path / "back.qdpx")
    back = import_project_qdpx(proj, tmp_path / "back.qdpx")
    assert (back.codings, back.warnings) == ({}, [])
    assert (_coders(proj), _codings(proj)) == (coders, n)
    proj.close()


def test_a_coder_imported_before_it_had_a_guid_gets_it_on_reimport(tmp_path: Path) -> None:
    """A coder named by an unlisted guid, imported before coders had guids: the same file maps to it
    again (no second coder, no coding added) and gives it its guid."""
    proj = init_project(tmp_path / "p", name="p")
    path = _nvivo_file(tmp_path)
    import_project_qdpx(proj, path)
    with proj.store.transaction() as s:
        for row in s.scalars(select(CoderRow)):
            row.guid = None  # as migration 0009 leaves them
    n = _codings(proj)
    again = import_project_qdpx(proj, path)
    assert (again.codings, again.warnings) == ({}, [])
    assert (_coders(proj), _codings(proj)) == (
        [("ana", ANA), ("ben", BEN), ("user-cf7eac62", STRANGER)],
        n,
    )
    proj.close()


def test_a_name_with_another_guid_keeps_the_stored_one_and_warns_once(tmp_path: Path) -> None:
    proj = init_project(tmp_path / "p", name="p")
    import_project_qdpx(proj, _nvivo_file(tmp_path))
    other = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    path = _qdpx(
        tmp_path / "maxqda.qdpx",
        [(other, "ana"), (BEN, "ben")],
        [("We cannot", other), ("Participant", other), ("cannot hire", BEN)],
    )
    report = import_project_qdpx(proj, path)
    assert report.codings == {"ana": 2, "ben": 1}
    assert report.warnings == [
        "coders with another REFI guid in the project than their user has in the file keep the project's "
        "(an export writes that one; the tool that wrote the file will see a new user): "
        f"'ana' (file: {other}; kept: {ANA})"
    ]
    assert _coders(proj) == [("ana", ANA), ("ben", BEN), ("user-cf7eac62", STRANGER)]
    export_project_qdpx(proj, tmp_path / "back.qdpx")
    assert _users(tmp_path / "back.qdpx")[0] == [(ANA, "ana"), (BEN, "ben"), (STRANGER, "user-cf7eac62")]
    proj.close()


def test_a_guid_another_coder_has_is_not_kept_and_the_export_stays_distinct(tmp_path: Path) -> None:
    """qualflow wrote ana with the guid derived from her name; the tool renamed her 'Ana M.': that user
    becomes a coder of its own (coders are matched by name) and does not take ana's guid."""
    proj = init_project(tmp_path / "p", name="p")
    import_project_qdpx(proj, _qdpx(tmp_path / "first.qdpx", [(BEN, "ben")], [("hire staff", BEN)]))
    (tmp_path / "c.csv").write_text(
        "source,start,end,code,coder\ni1,{},{},cost,ana\n".format(*_span("budget"))
    )
    import_codings(proj, tmp_path / "c.csv")
    derived = stable_guid("user", "ana")
    report = import_project_qdpx(
        proj, _qdpx(tmp_path / "renamed.qdpx", [(derived, "Ana M.")], [("too small", derived)])
    )
    assert report.warnings == [
        "users whose guid in the file is another coder's in the project, their coder keeping a guid of its "
        "own (an export writes that one; the tool that wrote the file will see a new user): "
        f"'Ana M.' (file: {derived}, which is coder 'ana''s)"
    ]
    assert _coders(proj) == [("ben", BEN), ("ana", None), ("Ana M.", None)]
    export_project_qdpx(proj, tmp_path / "back.qdpx")
    assert _users(tmp_path / "back.qdpx")[0] == [
        (BEN, "ben"),
        (derived, "ana"),
        (stable_guid("user", "Ana M."), "Ana M."),
    ]
    proj.close()


def test_stored_guids_two_coders_share_are_written_once(tmp_path: Path) -> None:
    """Two coders with one stored guid (upper and lower case): the first in the project keeps it, the
    other is written with the guid derived from its name, in one line of warning."""
    proj = init_project(tmp_path / "p", name="p")
    import_project_qdpx(proj, _nvivo_file(tmp_path))
    with proj.store.transaction() as s:
        s.scalars(select(CoderRow).where(CoderRow.name == "ben")).one().guid = ANA.lower()
    warned: list[str] = []
    export_project_qdpx(proj, tmp_path / "back.qdpx", warn=warned.append)
    assert warned == [
        "coders written with a guid derived from their name instead of the one a project file gave them "
        "(the tool that wrote that file will see them as new users): "
        f"'ben': its guid {ANA.lower()} is the guid of user 'ana'"
    ]
    users, sels = _users(tmp_path / "back.qdpx")
    assert users == [(ANA, "ana"), (stable_guid("user", "ben"), "ben"), (STRANGER, "user-cf7eac62")]
    assert ("hire staff", stable_guid("user", "ben")) in sels
    proj.close()


def test_export_user_guids_and_project_qde() -> None:
    derived = stable_guid("user", "ana")
    # a kept guid that is the one derived from another user's name: that user derives another
    guids, not_kept = export_user_guids(["ana", "Ana M."], {"Ana M.": derived.upper()})
    assert (guids, not_kept) == (
        {"ana": stable_guid("user", "ana#2"), "Ana M.": derived.upper()},
        {},
    )
    guids, not_kept = export_user_guids(["ana", "ben"], {"ana": "nope", "ben": BEN})
    assert guids == {"ana": derived, "ben": BEN}
    assert not_kept == {"ana": "its guid 'nope' is not a GUID"}
    text = "We waited."
    args = {
        "sources": [Source(name="s", text=text, turns=[], format="txt")],
        "codebook": Codebook(codes=[Code(name="waiting")]),
        "codings": [Coding("s", 0, 9, "waiting", "ana")],
        "users": ["ana"],
    }
    qde, _ = project_qde(**args, user_guids={"ana": ANA})  # type: ignore[arg-type]
    root = ET.fromstring(qde)
    assert [u.get("guid") for u in root.iter(f"{NS}User")] == [ANA]
    assert [c.get("creatingUser") for c in root.iter(f"{NS}Coding")] == [ANA]
    with pytest.raises(InputError, match="user 'ana': its guid 'nope' is not a GUID"):
        project_qde(**args, user_guids={"ana": "nope"})  # type: ignore[arg-type]


def test_import_qdpx_reports_each_users_guid(tmp_path: Path) -> None:
    qp = import_qdpx(
        _qdpx(
            tmp_path / "f.qdpx",
            [(ANA, "ana"), (f" {BEN} ", "ben"), ("not-a-guid", "eve"), (ANA.lower(), "ana")],
            [("budget", STRANGER), ("staff", ANA)],
        )
    )
    assert qp.users == ["ana", "ben", "eve", "user-cf7eac62"]
    assert qp.user_guids == {"ana": ANA, "ben": BEN, "user-cf7eac62": STRANGER}
