"""REFI-QDA exchange: .qdc codebooks and .qdpx projects (pipeline.refi)."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codebook import codebook_hash
from pipeline.codebook_files import read_codebook, write_codebook
from pipeline.domain import Code, Codebook, Coding, Source
from pipeline.errors import InputError
from pipeline.refi.qdc import NS_CODEBOOK, NS_PROJECT, codebook_to_qdc, read_qdc
from pipeline.refi.qdpx import QdpxProject, export_qdpx, import_qdpx, project_qde, unknown_user_warning

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "refi"
SHARED = (
    Path(os.environ["QUALFLOW_SHARED"])
    if os.environ.get("QUALFLOW_SHARED")
    else Path(__file__).resolve().parents[3] / "shared"
)
XSD = SHARED / "refi-qda" / "Project-mrt2019.xsd"
needs_xsd = pytest.mark.skipif(not XSD.is_file(), reason=f"REFI-QDA schema not found at {XSD}")
C = f"{{{NS_CODEBOOK}}}"
P = f"{{{NS_PROJECT}}}"


@pytest.fixture(scope="module")
def schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(XSD))


BOOK = Codebook(
    [
        Code(
            "Vertrauen",
            description="Reliance.",
            inclusion="explicit",
            examples=["Ich vertraue"],
            color="#2364a2",
            dimension="context",
        ),
        Code("Vertrauen aufbauen", parent="Vertrauen"),
        Code("Angst", is_codable=False, guid="{AE6D04CE-D987-4FC8-AF97-D72CA6FFD08F}"),
        Code("Diagnose", parent="Angst", description="Example: not a field\n\nInclusion: looks like one"),
    ],
    name="pflege",
)
SOURCES = [
    Source("int01", "Ärztin: Ich vertraue dem Team — wirklich. 😀\nWir bauen Vertrauen auf.", [], "txt"),
    Source(
        "int02",
        "B: Die Angst vor der Diagnose.",
        [],
        "txt",
        metadata={"refi_guid": "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"},
    ),
]
T1, T2 = SOURCES[0].text, SOURCES[1].text
CODINGS = [
    Coding("int01", 8, 29, "Vertrauen", "ana", created_at="2024-05-01T14:30:00Z"),
    Coding(
        "int01",
        T1.index("Wir"),
        len(T1) - 1,
        "Vertrauen aufbauen",
        "bob",
        "model-accepted",
        None,
        "model linear@3, score 0.82, accepted by bob",
    ),
    Coding("int02", 7, 29, "Diagnose", "ana", "human", "2024-05-02T09:00:00+02:00", "memo\nzwei Zeilen"),
    Coding("int02", 7, 29, "Diagnose", "bob"),
]


# --- .qdc -----------------------------------------------------------------------------------------


def test_qdc_structure_by_hand() -> None:
    root = ET.fromstring(codebook_to_qdc(BOOK))
    assert root.tag == f"{C}CodeBook"
    (codes,) = list(root)
    assert codes.tag == f"{C}Codes"
    top = codes.findall(f"{C}Code")
    assert [c.get("name") for c in top] == ["Vertrauen", "Angst"]
    for code in root.iter(f"{C}Code"):
        assert list(code.attrib)[:3] == ["guid", "name", "isCodable"]
        assert code.get("isCodable") in ("true", "false")
        tags = [child.tag for child in code]
        assert set(tags) <= {f"{C}Description", f"{C}Code"}
        assert f"{C}Description" not in tags[1:]  # Description first
    trust = top[0]
    assert trust.get("color") == "#2364a2"
    assert (
        trust.findtext(f"{C}Description")
        == "Reliance.\n\nInclusion: explicit\nExample: Ich vertraue\nDimension: context"
    )
    assert [c.get("name") for c in trust.findall(f"{C}Code")] == ["Vertrauen aufbauen"]
    assert top[1].get("guid") == "{AE6D04CE-D987-4FC8-AF97-D72CA6FFD08F}"
    assert top[1].get("isCodable") == "false"


@needs_xsd
def test_qdc_codes_validate_against_the_project_schema(schema: Any) -> None:
    codebook = ET.fromstring(codebook_to_qdc(BOOK).decode().replace(NS_CODEBOOK, NS_PROJECT))
    project = ET.Element(f"{P}Project", {"name": "x"})
    project.append(codebook)
    schema.validate(ET.tostring(project, encoding="unicode"))


def test_a_codebook_without_codes_is_not_written_as_qdc(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"^the codebook has no codes, and a REFI-QDA \.qdc needs at least one; "
    ):
        write_codebook(Codebook([]), tmp_path / "empty.qdc")
    assert not (tmp_path / "empty.qdc").exists()


@needs_xsd
def test_the_schema_refuses_a_codebook_without_codes(schema: Any) -> None:
    project = f'<Project xmlns="{NS_PROJECT}" name="x"><CodeBook/></Project>'
    assert not schema.is_valid(project)
    assert schema.is_valid(f'<Project xmlns="{NS_PROJECT}" name="x"/>')  # what export qdpx writes instead


def test_qdc_round_trip_keeps_everything_and_guids_are_stable(tmp_path: Path) -> None:
    write_codebook(BOOK, tmp_path / "a.qdc")
    back = read_codebook(tmp_path / "a.qdc")
    assert [dataclasses.replace(c, guid=None) for c in back.codes] == [
        dataclasses.replace(c, guid=None) for c in BOOK.codes
    ]
    assert back.get("Angst").guid == "{AE6D04CE-D987-4FC8-AF97-D72CA6FFD08F}"  # type: ignore[union-attr]
    assert codebook_hash(back) == codebook_hash(BOOK)
    write_codebook(BOOK, tmp_path / "b.qdc")
    write_codebook(back, tmp_path / "c.qdc")
    assert (
        (tmp_path / "a.qdc").read_bytes()
        == (tmp_path / "b.qdc").read_bytes()
        == (tmp_path / "c.qdc").read_bytes()
    )


def test_foreign_qdc_imports() -> None:
    book = read_qdc(FIXTURES / "foreign.qdc")
    assert book.name == "foreign"
    assert book.codes == [
        Code(
            "Emotionen",
            description="Oberkategorie.\n\nNicht direkt codieren.",
            color="#aabbcc",
            guid="{AE6D04CE-D987-4FC8-AF97-D72CA6FFD08F}",
            is_codable=False,
        ),
        Code(
            "Angst",
            description="Sorge vor der Diagnose.",
            examples=["Die Angst vor der Diagnose"],
            parent="Emotionen",
            color="#E0A000",
            guid="5C931701-6CD4-4A2B-A553-F1DDE2EAC46D",
        ),
        Code("Vertrauen", guid="95916796-D0A0-4B49-80B0-5A5C8B94AE13"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<CodeBook xmlns='urn:QDA-XML:codebook:1.0'>\n<Codes>\n<Code name='a'>\n</Codes>",
            r"book\.qdc line 4, column 2: not well-formed XML \(mismatched tag\)",
        ),
        (
            "<Project xmlns='urn:QDA-XML:project:1.0' name='p'/>",
            r"book\.qdc: not a REFI-QDA codebook \(root element \{urn:QDA-XML:project:1\.0\}Project",
        ),
        ("<CodeBook xmlns='urn:other'/>", r"book\.qdc: not a REFI-QDA codebook"),
        (
            "<CodeBook xmlns='urn:QDA-XML:codebook:1.0'><Codes><Code guid='g1' isCodable='true'/></Codes></CodeBook>",
            r"book\.qdc: the Code with guid g1 has no name",
        ),
        (
            "<CodeBook xmlns='urn:QDA-XML:codebook:1.0'><Codes><Code name='a' isCodable='ja'/></Codes></CodeBook>",
            r"book\.qdc: code 'a': isCodable='ja' is not true or false",
        ),
        (
            "<CodeBook xmlns='urn:QDA-XML:codebook:1.0'><Codes><Code name='a' color='red'/></Codes></CodeBook>",
            r"book\.qdc: code 'a': colour 'red' is not #RRGGBB",
        ),
    ],
)
def test_qdc_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "book.qdc").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_qdc(tmp_path / "book.qdc")


# --- .qdpx export ---------------------------------------------------------------------------------


def _export(path: Path, **overrides: Any) -> None:
    args: dict[str, Any] = dict(
        sources=SOURCES,
        codebook=BOOK,
        codings=CODINGS,
        users=["ana", "bob"],
        notes={"Projektmemo": "Notiz über die Studie."},
    )
    args.update(overrides)
    export_qdpx(path, **args)


@needs_xsd
def test_exported_project_validates_against_the_schema(tmp_path: Path, schema: Any) -> None:
    _export(tmp_path / "p.qdpx")
    with zipfile.ZipFile(tmp_path / "p.qdpx") as zf:
        assert zf.namelist()[0] == "project.qde"
        schema.validate(zf.read("project.qde").decode("utf-8"))


def test_export_layout(tmp_path: Path) -> None:
    _export(tmp_path / "p.qdpx")
    with zipfile.ZipFile(tmp_path / "p.qdpx") as zf:
        root = ET.fromstring(zf.read("project.qde"))
        assert [child.tag for child in root] == [f"{P}Users", f"{P}CodeBook", f"{P}Sources", f"{P}Notes"]
        users = {u.get("guid"): u.get("name", "") for u in root.iter(f"{P}User")}
        assert sorted(users.values()) == ["ana", "bob"]
        sources = root.findall(f"{P}Sources/{P}TextSource")
        assert sources[1].get("guid") == "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"
        for source in sources:
            guid = source.get("guid")
            assert source.get("plainTextPath") == f"internal://{guid}.txt"
            text = zf.read(f"Sources/{guid}.txt").decode("utf-8")
            assert text == next(s.text for s in SOURCES if s.name == source.get("name"))
        selection = sources[0].findall(f"{P}PlainTextSelection")[1]
        assert (selection.get("startPosition"), selection.get("endPosition")) == ("44", "67")
        assert T1[44:67] == "Wir bauen Vertrauen auf"
        assert users[selection.get("creatingUser")] == "bob"
        assert selection.findtext(f"{P}Description") == (
            "model linear@3, score 0.82, accepted by bob\n[qualflow] origin: model-accepted"
        )
        ref = selection.find(f"{P}Coding/{P}CodeRef")
        code_guid = next(
            c.get("guid") for c in root.iter(f"{P}Code") if c.get("name") == "Vertrauen aufbauen"
        )
        assert ref is not None and ref.get("targetGUID") == code_guid


def _canonical(project: QdpxProject) -> tuple[Any, ...]:
    return (
        [(s.name, s.text) for s in project.sources],
        [dataclasses.replace(c, guid=None) for c in project.codebook.codes],
        sorted(project.codings, key=repr),
        project.users,
        project.notes,
    )


def test_round_trip_export_import_export(tmp_path: Path) -> None:
    _export(tmp_path / "a.qdpx")
    imported = import_qdpx(tmp_path / "a.qdpx")
    assert [(s.name, s.text, s.format, s.turns) for s in imported.sources] == [
        (s.name, s.text, "refi", []) for s in SOURCES
    ]
    assert [dataclasses.replace(c, guid=None) for c in imported.codebook.codes] == [
        dataclasses.replace(c, guid=None) for c in BOOK.codes
    ]
    assert sorted(imported.codings, key=repr) == sorted(CODINGS, key=repr)
    assert imported.users == ["ana", "bob"]
    assert imported.notes == {"Projektmemo": "Notiz über die Studie."}
    assert imported.origin == "qualflow 0.1.0"
    export_qdpx(
        tmp_path / "b.qdpx",
        sources=imported.sources,
        codebook=imported.codebook,
        codings=imported.codings,
        users=imported.users,
        notes=imported.notes,
    )
    assert _canonical(import_qdpx(tmp_path / "b.qdpx")) == _canonical(imported)
    assert (tmp_path / "a.qdpx").read_bytes() == (tmp_path / "b.qdpx").read_bytes()


def test_export_errors_leave_no_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"coder 'carla' is not among the users \['ana', 'bob'\]"):
        _export(tmp_path / "p.qdpx", codings=[Coding("int01", 0, 5, "Vertrauen", "carla")])
    with pytest.raises(InputError, match=r"code 'Hoffnung' is not in the codebook"):
        _export(tmp_path / "p.qdpx", codings=[Coding("int01", 0, 5, "Hoffnung", "ana")])
    with pytest.raises(InputError, match=r"offsets outside source 'int02' \(30 characters\)"):
        _export(tmp_path / "p.qdpx", codings=[Coding("int02", 20, 31, "Angst", "ana")])
    with pytest.raises(InputError, match=r"source 'int09' is not among the sources exported"):
        _export(tmp_path / "p.qdpx", codings=[Coding("int09", 0, 1, "Angst", "ana")])
    assert os.listdir(tmp_path) == []


# --- .qdpx import ---------------------------------------------------------------------------------


def test_maxqda_like_fixture_imports_at_the_right_offsets() -> None:
    project = import_qdpx(FIXTURES / "maxqda_like.qdpx")
    assert project.origin == "MAXQDA 2020 (Release 20.2.1)"
    assert project.users == ["Francesca", "Jonas"]
    assert [s.name for s in project.sources] == ["Interview Ärztin", "Interview B"]
    texts = {s.name: s.text for s in project.sources}
    assert "\r" not in texts["Interview B"] and not texts["Interview B"].startswith("\ufeff")
    assert [(c.source, texts[c.source][c.start : c.end], c.code, c.coder) for c in project.codings] == [
        ("Interview Ärztin", "Ich vertraue dem Team", "Vertrauen", "Francesca"),
        ("Interview Ärztin", "Wir bauen Vertrauen auf", "Vertrauen aufbauen", "Jonas"),
        ("Interview B", "Die Angst vor der Diagnose", "Angst", "Francesca"),
        ("Interview B", "die Pflege hilft", "Vertrauen", "Jonas"),
    ]
    assert project.codings[0].created_at == "2020-09-29T11:39:59Z"
    assert {c.origin for c in project.codings} == {"imported"}
    assert project.codings[3].memo == "Pflege als Vertrauensquelle"
    assert [(c.name, c.parent, c.color) for c in project.codebook.codes] == [
        ("Vertrauen", None, "#2364a2"),
        ("Vertrauen aufbauen", "Vertrauen", "#a2236e"),
        ("Angst", None, "#e0a000"),
    ]
    assert project.sources[0].metadata == {"refi_guid": "46ACDB89-832F-4998-A542-D579FCBE8F1F"}


def test_maxqda_like_fixture_is_what_its_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_maxqda_like", FIXTURES / "make_maxqda_like.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "x.qdpx")
    assert (tmp_path / "x.qdpx").read_bytes() == (FIXTURES / "maxqda_like.qdpx").read_bytes()


@needs_xsd
def test_maxqda_like_fixture_is_valid_and_reexports_valid(tmp_path: Path, schema: Any) -> None:
    with zipfile.ZipFile(FIXTURES / "maxqda_like.qdpx") as zf:
        schema.validate(zf.read("project.qde").decode("utf-8"))
    project = import_qdpx(FIXTURES / "maxqda_like.qdpx")
    export_qdpx(
        tmp_path / "re.qdpx",
        sources=project.sources,
        codebook=project.codebook,
        codings=project.codings,
        users=project.users,
    )
    with zipfile.ZipFile(tmp_path / "re.qdpx") as zf:
        schema.validate(zf.read("project.qde").decode("utf-8"))
    assert _canonical(import_qdpx(tmp_path / "re.qdpx"))[:3] == _canonical(project)[:3]


def _qdpx(
    tmp_path: Path,
    body: str,
    files: dict[str, bytes] | None = None,
    *,
    name: str = "p.qdpx",
    users: str = "<Users><User guid='00000000-0000-4000-8000-000000000001' name='ana'/></Users>",
    origin: str = "",
) -> Path:
    origin_attr = f" origin='{origin}'" if origin else ""
    xml = (
        "<?xml version='1.0' encoding='utf-8'?>"
        f"<Project xmlns='urn:QDA-XML:project:1.0' name='t'{origin_attr}>{users}"
        "<CodeBook><Codes><Code guid='11111111-1111-4111-8111-111111111111' name='Angst' isCodable='true'/>"
        "</Codes></CodeBook>"
        f"{body}</Project>"
    )
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", xml)
        for member, data in (files or {}).items():
            zf.writestr(member, data)
    return path


def _sel(guid: str, start: int, end: int, code: str = "11111111-1111-4111-8111-111111111111") -> str:
    return (
        f"<PlainTextSelection guid='{guid}' startPosition='{start}' endPosition='{end}' "
        "creatingUser='00000000-0000-4000-8000-000000000001'>"
        f"<Coding guid='{guid}'><CodeRef targetGUID='{code}'/></Coding></PlainTextSelection>"
    )


def test_docx_source_and_inline_text_and_whole_source_coding(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Erste Zeile")
    document.add_paragraph("Zweite Zeile mit Angst")
    buffer = io.BytesIO()
    document.save(buffer)
    body = (
        "<Sources>"
        "<TextSource guid='22222222-2222-4222-8222-222222222222' name='rich' richTextPath='internal://r.docx'>"
        f"{_sel('33333333-3333-4333-8333-333333333333', 29, 34)}</TextSource>"
        "<TextSource guid='44444444-4444-4444-8444-444444444444' name='inline'>"
        "<PlainTextContent>Ganz kurz.</PlainTextContent>"
        "<Coding guid='55555555-5555-4555-8555-555555555555'>"
        "<CodeRef targetGUID='{11111111-1111-4111-8111-111111111111}'/></Coding></TextSource>"
        "<PDFSource guid='66666666-6666-4666-8666-666666666666' name='scan' path='internal://s.pdf'/>"
        "</Sources>"
    )
    project = import_qdpx(_qdpx(tmp_path, body, {"sources/r.docx": buffer.getvalue()}))
    texts = {s.name: s.text for s in project.sources}
    assert texts == {"rich": "Erste Zeile\nZweite Zeile mit Angst", "inline": "Ganz kurz."}
    assert [(c.source, texts[c.source][c.start : c.end], c.coder) for c in project.codings] == [
        ("rich", "Angst", "ana"),
        ("inline", "Ganz kurz.", "unknown"),
    ]
    assert project.users == ["ana", "unknown"]
    assert project.skipped == ["PDFSource 'scan'"]


def _emoji_source(tmp_path: Path, *, origin: str = "", text: str = "😀 Angst") -> Path:
    """A source whose "Angst" is at 3-8 in UTF-16 code units (the emoji counts as two), 2-7 in characters."""
    body = (
        "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' "
        "plainTextPath='internal://s.txt'>"
        + _sel("33333333-3333-4333-8333-333333333333", 3, 8)
        + "</TextSource></Sources>"
    )
    return _qdpx(tmp_path, body, {"Sources/s.txt": text.encode()}, origin=origin)


def test_utf16_positions_for_nvivo(tmp_path: Path) -> None:
    path = _emoji_source(tmp_path)
    project = import_qdpx(path, positions="utf16")
    coding = project.codings[0]
    assert project.sources[0].text[coding.start : coding.end] == "Angst"
    assert (project.positions, project.notices, project.skipped) == ("utf16", [], [])
    # counted in characters, the selection ends past the text: skipped, with the option that reads it
    project = import_qdpx(path)
    assert (project.codings, project.skipped_selections) == ([], 1)
    assert project.skipped == [
        "TextSource 's': 1 selection past the end of its text (7 characters): 3-8; if the file counts "
        "positions differently, import it with --positions utf16"
    ]
    assert import_qdpx(path, positions="utf16").notices == []  # chosen, not guessed: nothing to say


AUTO_NVIVO = (
    "positions counted in UTF-16 code units, as NVivo counts them (the file was written by NVivo 14): 's' has "
    "characters outside the Basic Multilingual Plane (e.g. emoji), which UTF-16 counts as two; if codings "
    "after them look shifted, import the file into a fresh project with --positions characters"
)


def test_auto_positions_count_utf16_code_units_in_a_file_nvivo_wrote(tmp_path: Path) -> None:
    project = import_qdpx(_emoji_source(tmp_path, origin="NVivo 14"), positions="auto")
    (coding,) = project.codings
    assert project.sources[0].text[coding.start : coding.end] == "Angst"
    assert (project.positions, project.notices) == ("utf16", [AUTO_NVIVO])


def test_auto_positions_count_characters_in_other_files_and_say_so_only_where_it_matters(
    tmp_path: Path,
) -> None:
    project = import_qdpx(_emoji_source(tmp_path, origin="MAXQDA 24", text="😀  Angst"), positions="auto")
    (coding,) = project.codings
    assert project.sources[0].text[coding.start : coding.end] == "Angst"
    assert project.positions == "characters"
    assert project.notices == [
        "positions counted in characters, as the REFI-QDA standard counts them (the file was written by "
        "MAXQDA 24): 's' has characters outside the Basic Multilingual Plane (e.g. emoji), which UTF-16 "
        "counts as two; if codings after them look shifted, import the file into a fresh project with "
        "--positions utf16"
    ]
    # no character outside the BMP: both countings agree, nothing to say (NVivo or not)
    for origin in ("NVivo 14", "MAXQDA 24"):
        plain = import_qdpx(_emoji_source(tmp_path, origin=origin, text="abc Angst"), positions="auto")
        assert [(c.start, c.end) for c in plain.codings] == [(3, 8)] and plain.notices == []


def test_selections_with_no_text_or_past_the_end_are_skipped_and_named(tmp_path: Path) -> None:
    # an ATLAS.ti point coding (start == end), a reversed span, and selections past the end: the rest imports
    sels = [("a1", 2, 2), ("a2", 4, 2), ("a3", 0, 5), ("a4", 2, 6), ("a5", 3, 7), ("a6", 4, 8), ("a7", 5, 9)]
    body = (
        "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' plainTextPath='internal://s.txt'>"
        + "".join(_sel(f"33333333-3333-4333-8333-3333333333{g}", a, b) for g, a, b in sels)
        + "</TextSource></Sources>"
    )
    project = import_qdpx(_qdpx(tmp_path, body, {"Sources/s.txt": b"short"}))
    assert [(c.start, c.end) for c in project.codings] == [(0, 5)]
    assert project.skipped_selections == 6
    assert project.skipped == [
        "TextSource 's': 2 selections with no text between their positions (2-2, 4-2)",
        "TextSource 's': 4 selections past the end of its text (5 characters): 2-6, 3-7, 4-8 and 1 more; "
        "if the file counts positions differently, import it with --positions utf16",
    ]
    assert import_qdpx(_qdpx(tmp_path, body, {"Sources/s.txt": b"short"}), positions="utf16").skipped[1] == (
        "TextSource 's': 4 selections past the end of its text (5 UTF-16 code units): 2-6, 3-7, 4-8 and 1 "
        "more; if the file counts positions differently, import it with --positions characters"
    )


def test_a_creating_user_the_file_does_not_list_is_a_coder_named_by_its_guid(tmp_path: Path) -> None:
    stranger = "CF7EAC62-16BE-410E-AE32-85B6EA861A9D"
    body = (
        "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s'>"
        "<PlainTextContent>Angst und Angst</PlainTextContent>"
        + _sel("33333333-3333-4333-8333-333333333333", 0, 5).replace(
            "00000000-0000-4000-8000-000000000001", stranger
        )
        + _sel("33333333-3333-4333-8333-333333333334", 10, 15).replace(
            "00000000-0000-4000-8000-000000000001", "{" + stranger.lower() + "}"
        )
        + _sel("33333333-3333-4333-8333-333333333335", 6, 9)
        + "</TextSource></Sources>"
    )
    project = import_qdpx(_qdpx(tmp_path, body))
    assert [c.coder for c in project.codings] == ["user-cf7eac62", "user-cf7eac62", "ana"]
    assert project.users == ["ana", "user-cf7eac62"]
    assert project.unknown_users == {"user-cf7eac62": stranger}
    assert unknown_user_warning(project.unknown_users, project.codings) == [
        "codings by users the file's Users do not list, kept under a coder named by the guid's first 8 "
        "characters (the same on every import; agreement counts each as a coder): "
        "creatingUser CF7EAC62-16BE-410E-AE32-85B6EA861A9D: 2 codings as 'user-cf7eac62'"
    ]
    assert unknown_user_warning(project.unknown_users, project.codings[2:]) == []


def test_every_set_keeps_its_guid_and_code_sets_are_named_as_skipped(tmp_path: Path) -> None:
    body = (
        "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s'>"
        "<PlainTextContent>Angst</PlainTextContent></TextSource></Sources>"
        "<Sets>"
        "<Set guid='5E000000-0000-4000-8000-000000000001' name='Nurses'>"
        "<MemberSource targetGUID='22222222-2222-4222-8222-222222222222'/></Set>"
        "<Set guid='5E000000-0000-4000-8000-000000000002' name='Wave 1'>"
        "<MemberSource targetGUID='22222222-2222-4222-8222-222222222222'/></Set>"
        "<Set guid='5E000000-0000-4000-8000-000000000003' name='Wave 2'>"
        "<MemberSource targetGUID='22222222-2222-4222-8222-222222222222'/>"
        "<MemberCode targetGUID='11111111-1111-4111-8111-111111111111'/></Set>"
        "</Sets>"
    )
    project = import_qdpx(_qdpx(tmp_path, body))
    assert project.sources[0].metadata["sets"] == "Wave 1; Wave 2"
    assert project.skipped == ["Set 'Wave 2': its 1 code (qualflow has no code sets)"]
    qde, _ = project_qde(sources=project.sources, codebook=project.codebook, codings=[], users=project.users)
    sets = ET.fromstring(qde).findall(f"{P}Sets/{P}Set")
    assert [(s.get("name"), s.get("guid")) for s in sets] == [
        ("Nurses", "5E000000-0000-4000-8000-000000000001"),
        ("Wave 1", "5E000000-0000-4000-8000-000000000002"),
        ("Wave 2", "5E000000-0000-4000-8000-000000000003"),
    ]


def test_case_references_are_not_codings(tmp_path: Path) -> None:
    case = "77777777-7777-4777-8777-777777777777"
    body = (
        f"<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s'>"
        f"<PlainTextContent>abc</PlainTextContent>{_sel('33333333-3333-4333-8333-333333333333', 0, 2, case)}"
        f"</TextSource></Sources><Cases><Case guid='{case}' name='Fall 1'/></Cases>"
    )
    assert import_qdpx(_qdpx(tmp_path, body)).codings == []


@pytest.mark.parametrize(
    ("body", "files", "message"),
    [
        (
            "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' plainTextPath='internal://s.txt'>"
            "<PlainTextSelection guid='g9' startPosition='a' endPosition='2'/></TextSource></Sources>",
            {"Sources/s.txt": b"short"},
            r"selection g9 of source 's': startPosition/endPosition 'a'/'2' are not whole",
        ),
        (
            "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' plainTextPath='internal://s.txt'>"
            f"{_sel('33333333-3333-4333-8333-333333333333', 0, 2, '99999999-9999-4999-8999-999999999999')}"
            "</TextSource></Sources>",
            {"Sources/s.txt": b"short"},
            r"selection 3333.* of source 's': a Coding refers to code guid '99999999-9999-4999-8999-999999999999', "
            r"which is not in the codebook",
        ),
        (
            "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' "
            "plainTextPath='absolute:///home/me/s.txt'/></Sources>",
            {},
            r"p\.qdpx: source 's' refers to the external file absolute:///home/me/s.txt; export the project",
        ),
        (
            "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' "
            "plainTextPath='internal://gone.txt'/></Sources>",
            {},
            r"source 's' refers to internal://gone\.txt, which is not inside the archive",
        ),
        (
            "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s'/></Sources>",
            {},
            r"source 's' has no plain text",
        ),
        (
            "<Sources><TextSource guid='22222222-2222-4222-8222-222222222222' name='s' plainTextPath='internal://s.txt'/>"
            "</Sources>",
            {"Sources/s.txt": b"caf\xe9"},
            r"source 's': internal://s\.txt is not UTF-8 text",
        ),
        (
            "<Sources><TextSource guid='1' name='s'><PlainTextContent>a</PlainTextContent></TextSource>"
            "<TextSource guid='2' name='s'><PlainTextContent>b</PlainTextContent></TextSource></Sources>",
            {},
            r"two sources are named 's'",
        ),
    ],
)
def test_import_errors(tmp_path: Path, body: str, files: dict[str, bytes], message: str) -> None:
    with pytest.raises(InputError, match=message):
        import_qdpx(_qdpx(tmp_path, body, files))


def test_import_rejects_what_is_not_a_refi_project(tmp_path: Path) -> None:
    (tmp_path / "x.qdpx").write_text("hello", encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.qdpx: not a zip archive"):
        import_qdpx(tmp_path / "x.qdpx")
    with zipfile.ZipFile(tmp_path / "empty.qdpx", "w") as zf:
        zf.writestr("Sources/a.txt", "a")
    with pytest.raises(InputError, match=r"empty\.qdpx: no project\.qde inside"):
        import_qdpx(tmp_path / "empty.qdpx")
    for name, xml, message in [
        (
            "ns.qdpx",
            "<Project xmlns='urn:QDA-XML:codebook:1.0' name='x'/>",
            r"ns\.qdpx: project\.qde is not a REFI-QDA project \(root element \{urn:QDA-XML:codebook:1\.0\}Project",
        ),
        (
            "root.qdpx",
            "<CodeBook xmlns='urn:QDA-XML:project:1.0'/>",
            r"root\.qdpx: project\.qde is not a REFI-QDA",
        ),
        (
            "bad.qdpx",
            "<Project xmlns='urn:QDA-XML:project:1.0'>\n<Users>\n</Project>",
            r"bad\.qdpx!project\.qde line 3, column 2: not well-formed XML",
        ),
    ]:
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            zf.writestr("project.qde", xml)
        with pytest.raises(InputError, match=message):
            import_qdpx(tmp_path / name)
    with pytest.raises(InputError, match=r"missing\.qdpx: no such file"):
        import_qdpx(tmp_path / "missing.qdpx")


def test_project_qde_is_deterministic() -> None:
    args: dict[str, Any] = dict(sources=SOURCES, codebook=BOOK, codings=CODINGS, users=["ana", "bob"])
    assert project_qde(**args) == project_qde(**{**args, "codings": list(reversed(CODINGS))})


# --- property: random codings on random texts survive a .qdpx round trip -------------------------

_chars = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")


@st.composite
def projects(draw: st.DrawFn) -> tuple[list[Source], list[Coding]]:
    texts = draw(st.lists(st.text(_chars | st.just("\n"), min_size=1, max_size=40), min_size=1, max_size=3))
    sources = [Source(f"s{i}", t, [], "txt") for i, t in enumerate(texts)]
    codings = []
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(texts) - 1))
        start = draw(st.integers(0, len(texts[i]) - 1))
        end = draw(st.integers(start + 1, len(texts[i])))
        memo = draw(st.one_of(st.none(), st.text(_chars | st.just("\n"), min_size=1, max_size=20)))
        codings.append(
            Coding(
                f"s{i}",
                start,
                end,
                draw(st.sampled_from(BOOK.names())),
                draw(st.sampled_from(["ana", "bob"])),
                draw(st.sampled_from(["human", "model-accepted", "imported"])),
                None,
                memo,
            )
        )
    return sources, codings


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=projects())
def test_random_projects_round_trip(tmp_path: Path, data: tuple[list[Source], list[Coding]]) -> None:
    sources, codings = data
    export_qdpx(tmp_path / "r.qdpx", sources=sources, codebook=BOOK, codings=codings, users=["ana", "bob"])
    project = import_qdpx(tmp_path / "r.qdpx")
    assert [(s.name, s.text) for s in project.sources] == [(s.name, s.text) for s in sources]
    assert sorted(project.codings, key=repr) == sorted(codings, key=repr)
