"""REFI-QDA projects as tools write them (issue 16): memos (Description, Notes/NoteRef), cases and
variables, sets, users, inline PlainTextContent, .docx-only sources, PDF sources with and without a
text representation, and coded selections on audio and pictures (skipped and counted).

The projects are written by hand in each tool's shape (not produced by the tools): NVivo-like
(``origin="NVivo 14"``, lower-case guids, attributes on cases, a memo as a Note with NoteRef,
``PlainTextContent`` inline, a PDF with its ``Representation``) and ATLAS.ti-like
(``origin="ATLAS.ti 23.2.1"``, upper-case guids in braces, the document text only as a ``.docx`` at
``richTextPath``, comments as ``Description``, document groups as ``Sets``, an audio document with
coded ``AudioSelection``s and a picture with a ``PictureSelection``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.refi.qdpx import export_qdpx, import_qdpx
from tests.unit.test_refi import needs_xsd, schema  # noqa: F401  (the schema fixture)

NVIVO_TEXT = "Interviewer: How do you cope?\nRespondent: My sister helps. Other days are hard."
NVIVO = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Carers" origin="NVivo 14" creationDateTime="2024-03-01T10:00:00Z">
<Users>
<User guid="a0000000-0000-4000-8000-000000000001" name="Sara Ahmadi"/>
<User guid="a0000000-0000-4000-8000-000000000002" name="Reza K"/>
</Users>
<CodeBook>
<Codes>
<Code guid="c0000000-0000-4000-8000-000000000001" name="Support" isCodable="true">
<Description>Help from others.</Description>
<NoteRef targetGUID="e0000000-0000-4000-8000-000000000001"/>
<Code guid="c0000000-0000-4000-8000-000000000002" name="Family" isCodable="true"/>
<Code guid="c0000000-0000-4000-8000-000000000003" name="Other" isCodable="true"/>
</Code>
<Code guid="c0000000-0000-4000-8000-000000000004" name="Strain" isCodable="true">
<Code guid="c0000000-0000-4000-8000-000000000005" name="Other" isCodable="true"/>
</Code>
</Codes>
</CodeBook>
<Variables>
<Variable guid="f0000000-0000-4000-8000-000000000001" name="Gender" typeOfVariable="Text"/>
<Variable guid="f0000000-0000-4000-8000-000000000002" name="Age" typeOfVariable="Integer"/>
<Variable guid="f0000000-0000-4000-8000-000000000003" name="date" typeOfVariable="Date"/>
</Variables>
<Cases>
<Case guid="d0000000-0000-4000-8000-000000000001" name="P01">
<VariableValue><VariableRef targetGUID="f0000000-0000-4000-8000-000000000001"/><TextValue>female</TextValue></VariableValue>
<VariableValue><VariableRef targetGUID="f0000000-0000-4000-8000-000000000002"/><IntegerValue>54</IntegerValue></VariableValue>
<VariableValue><VariableRef targetGUID="f0000000-0000-4000-8000-000000000003"/><DateValue>2024-02-12</DateValue></VariableValue>
<SourceRef targetGUID="b0000000-0000-4000-8000-000000000001"/>
</Case>
</Cases>
<Sources>
<TextSource guid="b0000000-0000-4000-8000-000000000001" name="Interview P01" creatingUser="a0000000-0000-4000-8000-000000000001" creationDateTime="2024-03-01T10:05:00Z">
<Description>Recorded at home.</Description>
<PlainTextContent>{NVIVO_TEXT}</PlainTextContent>
<PlainTextSelection guid="90000000-0000-4000-8000-000000000001" name="My sister helps." startPosition="42" endPosition="58" creatingUser="a0000000-0000-4000-8000-000000000001" creationDateTime="2024-03-02T09:00:00Z">
<Coding guid="80000000-0000-4000-8000-000000000001" creatingUser="a0000000-0000-4000-8000-000000000001" creationDateTime="2024-03-02T09:00:00Z">
<CodeRef targetGUID="c0000000-0000-4000-8000-000000000002"/>
</Coding>
<NoteRef targetGUID="e0000000-0000-4000-8000-000000000002"/>
</PlainTextSelection>
<PlainTextSelection guid="90000000-0000-4000-8000-000000000002" name="Other days are hard." startPosition="59" endPosition="79" creatingUser="a0000000-0000-4000-8000-000000000002">
<Coding guid="80000000-0000-4000-8000-000000000002" creatingUser="a0000000-0000-4000-8000-000000000002">
<CodeRef targetGUID="c0000000-0000-4000-8000-000000000005"/>
</Coding>
</PlainTextSelection>
<NoteRef targetGUID="e0000000-0000-4000-8000-000000000003"/>
</TextSource>
<PDFSource guid="b0000000-0000-4000-8000-000000000002" name="Leaflet" path="internal://b0000000-0000-4000-8000-000000000002.pdf">
<PDFSelection guid="90000000-0000-4000-8000-000000000003" page="1" firstX="0" firstY="0" secondX="10" secondY="10">
<Coding guid="80000000-0000-4000-8000-000000000003"><CodeRef targetGUID="c0000000-0000-4000-8000-000000000001"/></Coding>
</PDFSelection>
<Representation guid="b0000000-0000-4000-8000-000000000003" plainTextPath="internal://b0000000-0000-4000-8000-000000000003.txt">
<PlainTextSelection guid="90000000-0000-4000-8000-000000000004" startPosition="0" endPosition="12" creatingUser="a0000000-0000-4000-8000-000000000002">
<Coding guid="80000000-0000-4000-8000-000000000004"><CodeRef targetGUID="c0000000-0000-4000-8000-000000000003"/></Coding>
</PlainTextSelection>
</Representation>
</PDFSource>
<PDFSource guid="b0000000-0000-4000-8000-000000000004" name="Scan" path="internal://b0000000-0000-4000-8000-000000000004.pdf"/>
</Sources>
<Notes>
<Note guid="e0000000-0000-4000-8000-000000000001" name="Memo: Support"><PlainTextContent>Ask about neighbours too.</PlainTextContent></Note>
<Note guid="e0000000-0000-4000-8000-000000000002" name="Annotation"><PlainTextContent>Sister lives next door.</PlainTextContent></Note>
<Note guid="e0000000-0000-4000-8000-000000000003" name="Memo: Interview P01" plainTextPath="internal://e0000000-0000-4000-8000-000000000003.txt"/>
</Notes>
</Project>
"""
NVIVO_FILES = {
    "sources/b0000000-0000-4000-8000-000000000002.pdf": b"%PDF-1.4 not really",
    "sources/b0000000-0000-4000-8000-000000000003.txt": b"Ask for help when you need it.",
    "sources/b0000000-0000-4000-8000-000000000004.pdf": b"%PDF-1.4 not really",
    "sources/e0000000-0000-4000-8000-000000000003.txt": b"Second interview planned.",
}

ATLAS = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:QDA-XML:project:1.0 http://schema.qdasoftware.org/versions/Project/v1.0/Project.xsd" name="Barriers study" origin="ATLAS.ti 23.2.1 (2931)">
<Users>
<User guid="{5A6B7C8D-0000-4000-8000-00000000000A}" name="Mina"/>
</Users>
<CodeBook>
<Codes>
<Code guid="{C1000000-0000-4000-8000-000000000001}" name="Barriers" isCodable="true" color="#FF0000">
<Description>Code comment: anything in the way.</Description>
</Code>
<Code guid="{C1000000-0000-4000-8000-000000000002}" name="Access" isCodable="true"/>
</Codes>
</CodeBook>
<Sources>
<TextSource guid="{B1000000-0000-4000-8000-000000000001}" name="D1 Mina interview" richTextPath="internal://{B1000000-0000-4000-8000-000000000001}.docx">
<Description>Document comment.</Description>
<PlainTextSelection guid="{91000000-0000-4000-8000-000000000001}" name="no bus" startPosition="16" endPosition="22" creatingUser="{5A6B7C8D-0000-4000-8000-00000000000A}">
<Description>Quotation comment.</Description>
<Coding guid="{81000000-0000-4000-8000-000000000001}" creatingUser="{5A6B7C8D-0000-4000-8000-00000000000A}"><CodeRef targetGUID="{C1000000-0000-4000-8000-000000000002}"/></Coding>
</PlainTextSelection>
</TextSource>
<AudioSource guid="{B1000000-0000-4000-8000-000000000002}" name="D2 audio" path="internal://{B1000000-0000-4000-8000-000000000002}.m4a">
<AudioSelection guid="{91000000-0000-4000-8000-000000000002}" begin="0" end="1000"><Coding guid="{81000000-0000-4000-8000-000000000002}"><CodeRef targetGUID="{C1000000-0000-4000-8000-000000000001}"/></Coding></AudioSelection>
<AudioSelection guid="{91000000-0000-4000-8000-000000000003}" begin="2000" end="3000"><Coding guid="{81000000-0000-4000-8000-000000000003}"><CodeRef targetGUID="{C1000000-0000-4000-8000-000000000001}"/></Coding></AudioSelection>
</AudioSource>
<PictureSource guid="{B1000000-0000-4000-8000-000000000003}" name="D3 map" path="internal://{B1000000-0000-4000-8000-000000000003}.png">
<PictureSelection guid="{91000000-0000-4000-8000-000000000004}" firstX="0" firstY="0" secondX="5" secondY="5"><Coding guid="{81000000-0000-4000-8000-000000000004}"><CodeRef targetGUID="{C1000000-0000-4000-8000-000000000001}"/></Coding></PictureSelection>
</PictureSource>
</Sources>
<Sets>
<Set guid="{5E000000-0000-4000-8000-000000000001}" name="Rural"><MemberSource targetGUID="{B1000000-0000-4000-8000-000000000001}"/></Set>
</Sets>
</Project>
"""


KEPT_GUIDS = {
    "nvivo": [
        "c0000000-0000-4000-8000-000000000005",
        "b0000000-0000-4000-8000-000000000001",
        "b0000000-0000-4000-8000-000000000002",
        "d0000000-0000-4000-8000-000000000001",
        "f0000000-0000-4000-8000-000000000002",
    ],
    "atlas": [
        "{C1000000-0000-4000-8000-000000000002}",
        "{B1000000-0000-4000-8000-000000000001}",
        "{5E000000-0000-4000-8000-000000000001}",
    ],
}


def _docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _write(path: Path, qde: str, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.qde", qde)
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def nvivo(tmp_path: Path) -> Path:
    return _write(tmp_path / "nvivo.qdpx", NVIVO, NVIVO_FILES)


@pytest.fixture
def atlas(tmp_path: Path) -> Path:
    files = {
        "sources/{B1000000-0000-4000-8000-000000000001}.docx": _docx(["Q: Why late?", "A: no bus today."]),
        "sources/{B1000000-0000-4000-8000-000000000002}.m4a": b"\x00" * 16,
        "sources/{B1000000-0000-4000-8000-000000000003}.png": b"\x89PNG",
    }
    return _write(tmp_path / "atlas.qdpx", ATLAS, files)


@needs_xsd
def test_hand_made_projects_are_schema_valid(schema: Any) -> None:  # noqa: F811
    schema.validate(NVIVO)
    schema.validate(ATLAS)


def test_nvivo_like_memos_cases_variables_users_and_pdf_text(nvivo: Path) -> None:
    p = import_qdpx(nvivo)
    assert p.origin == "NVivo 14"
    assert p.users == ["Sara Ahmadi", "Reza K"]
    assert p.codebook.names() == ["Support", "Family", "Support/Other", "Strain", "Strain/Other"]
    assert p.codebook.codes[0].description == "Help from others.\n\nAsk about neighbours too."
    interview, leaflet = p.sources
    assert (interview.name, leaflet.name) == ("Interview P01", "Leaflet")
    assert interview.text == NVIVO_TEXT and leaflet.text == "Ask for help when you need it."
    assert interview.metadata == {
        "refi_guid": "b0000000-0000-4000-8000-000000000001",
        "participant": "P01",
        "refi_case_guid": "d0000000-0000-4000-8000-000000000001",
        "Gender": "female",
        "refi_var_guid:Gender": "f0000000-0000-4000-8000-000000000001",
        "Age": "54",
        "refi_var_guid:Age": "f0000000-0000-4000-8000-000000000002",
        "date": "2024-02-12",
        "refi_var_guid:date": "f0000000-0000-4000-8000-000000000003",
        "memo": "Recorded at home.\n\nSecond interview planned.",
    }
    got = [
        (
            c.source,
            c.code,
            interview.text[c.start : c.end] if c.source == interview.name else "",
            c.coder,
            c.memo,
        )
        for c in p.codings
    ]
    assert got == [
        ("Interview P01", "Family", "My sister helps.", "Sara Ahmadi", "Sister lives next door."),
        ("Interview P01", "Strain/Other", "Other days are hard.", "Reza K", None),
        ("Leaflet", "Support/Other", "", "Reza K", None),
    ]
    assert p.skipped_selections == 1
    assert p.skipped == ["PDFSource 'Leaflet': 1 PDF selection (its text imported)", "PDFSource 'Scan'"]


def test_atlas_like_docx_sets_comments_and_skipped_media(atlas: Path) -> None:
    p = import_qdpx(atlas)
    (doc,) = p.sources
    assert doc.text == "Q: Why late?\nA: no bus today."
    (coding,) = p.codings
    assert doc.text[coding.start : coding.end] == "no bus"
    assert (coding.code, coding.coder, coding.memo) == ("Access", "Mina", "Quotation comment.")
    assert doc.metadata["group"] == "Rural" and doc.metadata["memo"] == "Document comment."
    assert p.skipped_selections == 3
    assert p.skipped == [
        "AudioSource 'D2 audio' (2 coded selections)",
        "PictureSource 'D3 map' (1 coded selection)",
    ]


@pytest.mark.parametrize("which", ["nvivo", "atlas"])
def test_export_of_an_import_keeps_guids_and_reimports_the_same(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    first = import_qdpx(request.getfixturevalue(which))
    out = tmp_path / "again.qdpx"
    export_qdpx(out, sources=first.sources, codebook=first.codebook, codings=first.codings, users=first.users)
    second = import_qdpx(out)
    assert second.codebook.codes == first.codebook.codes
    assert [(s.name, s.text, s.metadata) for s in second.sources] == [
        (s.name, s.text, s.metadata) for s in first.sources
    ]
    strip = [(c.source, c.start, c.end, c.code, c.coder, c.memo) for c in first.codings]
    assert [(c.source, c.start, c.end, c.code, c.coder, c.memo) for c in second.codings] == strip
    with zipfile.ZipFile(out) as zf:
        qde = zf.read("project.qde").decode()
    for guid in KEPT_GUIDS[which]:  # codes, sources, cases, variables and sets keep their guids
        assert f'"{guid}"' in qde, guid


@needs_xsd
@pytest.mark.parametrize("which", ["nvivo", "atlas"])
def test_export_of_an_import_is_schema_valid(
    which: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    schema: Any,  # noqa: F811
) -> None:
    first = import_qdpx(request.getfixturevalue(which))
    out = tmp_path / "again.qdpx"
    export_qdpx(out, sources=first.sources, codebook=first.codebook, codings=first.codings, users=first.users)
    with zipfile.ZipFile(out) as zf:
        schema.validate(zf.read("project.qde").decode())
