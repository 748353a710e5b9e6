"""Code identity by guid and path (issue 16): names unique among siblings only.

Fixtures in tests/fixtures/identity are written by hand in the shape the tools write: a QualCoder
codebook whose categories share their names with one of their codes (lower-case guids, the
``xsi:schemaLocation`` QualCoder writes), and a MAXQDA codebook with "Other" under three parents
(upper-case guids, one in braces, ``origin`` on the root, short colours).
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.codebook import (
    code_paths,
    codebook_hash,
    display_name,
    find_codes,
    join_path,
    resolve_code,
    split_path,
    validate_codebook,
)
from pipeline.codebook_files import read_codebook, write_codebook
from pipeline.codings_csv import codings_to_csv, read_codings_csv
from pipeline.domain import Code, Codebook, Coding, Source
from pipeline.errors import InputError
from pipeline.refi.qdc import NS_CODEBOOK, codebook_to_qdc
from pipeline.refi.qdpx import export_qdpx, import_qdpx

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "identity"
QUALCODER_KEYS = ["Barriers", "Barriers/Barriers", "cost", "Support", "Support/support", "Family"]
MAXQDA_KEYS = [
    "Barriers",
    "Barriers/Other",
    "Time/Money",
    "Facilitators",
    "Facilitators/Other",
    "Outcomes",
    "Outcomes/Other",
]
MAXQDA_GUIDS = {
    "Barriers/Other": "B2E5D3F1-6C8E-4F4B-8D22-1E3F4A5B6C71",
    "Facilitators/Other": "E5B8A6C4-9FB1-4C7E-9A55-4B6C7D8E9FA4",
    "Outcomes/Other": "{07DAC8E6-B1D3-4E9A-9C77-6D8E9FA0B1C6}",
}
TEXT = "Too busy. No time in the evening. My sister helps. " * 2


def _no_guid(cb: Codebook) -> list[Code]:
    return [dataclasses.replace(c, guid=None) for c in cb.codes]


@pytest.mark.parametrize("name", ["qualcoder_categories.qdc", "qualcoder_categories.yaml"])
def test_category_sharing_its_name_with_a_code_imports(name: str) -> None:
    cb = read_codebook(FIX / name)
    assert cb.names() == QUALCODER_KEYS
    assert [c.title for c in cb.codes] == ["Barriers", "Barriers", "cost", "Support", "support", "Family"]
    assert [c.parent for c in cb.codes] == [None, "Barriers", "Barriers", None, "Support", "Support"]
    assert [c.is_codable for c in cb.codes] == [False, True, True, False, True, True]
    assert cb.codes[1].guid == "0e1f2a3b-4c5d-4e6f-9a0b-1c2d3e4f5a6b"


def test_qdc_yaml_and_csv_read_the_same_codebooks(tmp_path: Path) -> None:
    qdc = read_codebook(FIX / "qualcoder_categories.qdc")
    assert read_codebook(FIX / "qualcoder_categories.yaml").codes == qdc.codes
    maxqda = read_codebook(FIX / "maxqda_other.qdc")
    assert maxqda.names() == MAXQDA_KEYS
    assert read_codebook(FIX / "maxqda_other.csv").codes == maxqda.codes
    for cb in (qdc, maxqda):  # every format round-trips, keys, names, guids and hash
        for suffix in (".yaml", ".csv", ".qdc"):
            path = tmp_path / f"{cb.name}{suffix}"
            write_codebook(cb, path)
            back = read_codebook(path)
            assert back.codes == cb.codes, suffix
            assert codebook_hash(back) == codebook_hash(cb)


def test_qdc_export_keeps_original_guids_and_names() -> None:
    cb = read_codebook(FIX / "maxqda_other.qdc")
    root = ET.fromstring(codebook_to_qdc(cb))
    written = [(el.get("name"), el.get("guid")) for el in root.iter(f"{{{NS_CODEBOOK}}}Code")]
    original = ET.parse(FIX / "maxqda_other.qdc").getroot()
    assert written == [(el.get("name"), el.get("guid")) for el in original.iter(f"{{{NS_CODEBOOK}}}Code")]
    assert [n for n, _ in written].count("Other") == 3


def test_csv_export_writes_the_path_where_a_name_is_shared(tmp_path: Path) -> None:
    write_codebook(read_codebook(FIX / "qualcoder_categories.qdc"), tmp_path / "c.csv")
    rows = [line.split(",")[:2] for line in (tmp_path / "c.csv").read_text().splitlines()[1:]]
    assert rows == [
        ["Barriers", ""],
        ["Barriers", "Barriers"],  # the top-level Barriers: its path is its name
        ["cost", "Barriers"],
        ["Support", ""],
        ["support", "Support"],
        ["Family", "Support"],
    ]
    deeper = Codebook(
        [*read_codebook(FIX / "qualcoder_categories.qdc").codes, Code("price", parent="Barriers/Barriers")]
    )
    write_codebook(validate_codebook(deeper, "x"), tmp_path / "d.csv")
    assert "price,Barriers/Barriers," in (tmp_path / "d.csv").read_text()
    assert read_codebook(tmp_path / "d.csv").get("price").parent == "Barriers/Barriers"  # type: ignore[union-attr]


def test_codings_name_codes_by_path_guid_or_unique_name() -> None:
    cb = read_codebook(FIX / "maxqda_other.qdc")
    codings = read_codings_csv(FIX / "codings_by_path.csv", cb, {"int01": TEXT})
    assert [c.code for c in codings] == [
        "Barriers/Other",
        "Facilitators/Other",  # paths compare ignoring case
        "Outcomes/Other",  # by guid, braces and case as MAXQDA writes them
        "Time/Money",  # a unique name with a '/', here as its escaped path
        "Barriers",
    ]
    # exported codings name the codes by key, which reads back
    assert "int01,0,8,Barriers/Other,ana" in codings_to_csv(codings)


def test_exported_codings_read_back(tmp_path: Path) -> None:
    cb = read_codebook(FIX / "maxqda_other.qdc")
    codings = read_codings_csv(FIX / "codings_by_path.csv", cb, {"int01": TEXT})
    (tmp_path / "again.csv").write_text(codings_to_csv(codings), encoding="utf-8")
    assert read_codings_csv(tmp_path / "again.csv", cb, {"int01": TEXT}) == codings


def test_an_ambiguous_name_is_refused_with_its_candidates_by_path(tmp_path: Path) -> None:
    cb = read_codebook(FIX / "maxqda_other.qdc")
    path = tmp_path / "codings.csv"
    path.write_text("source,start,end,code,coder\nint01,0,8,Other,ana\nint01,0,8,Outcomes/Other,ana\n")
    with pytest.raises(InputError) as err:
        read_codings_csv(path, cb, {"int01": TEXT})
    message = str(err.value)
    assert "\n" not in message
    assert message.endswith(
        "codings.csv: 1 bad line: line 2: code 'Other' is ambiguous: it names 3 codes "
        "(Barriers/Other, Facilitators/Other, Outcomes/Other); write its path or guid"
    )
    with pytest.raises(InputError, match=r"^code 'other' is ambiguous: it names 3 codes \(Barriers/Other, "):
        resolve_code("other", cb)


def test_an_ambiguous_parent_is_refused_with_its_candidates(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text("name,parent\nA,\nOther,A\nB,\nOther,B\nmore,Other\n")
    with pytest.raises(
        InputError,
        match=r"^.*codes\.csv: code 'more' has parent 'Other', which names 2 codes \(A/Other, B/Other\); "
        r"write the parent's path or guid$",
    ):
        read_codebook(path)
    path.write_text("name,parent\nA,\nOther,A\nB,\nOther,B\nmore,b/other\n")
    assert read_codebook(path).get("more").parent == "B/Other"  # type: ignore[union-attr]


def test_names_are_unique_among_siblings_only() -> None:
    with pytest.raises(InputError, match=r"code 'other' appears twice under 'A' \(also as 'Other'; "):
        validate_codebook(Codebook([Code("A"), Code("Other", parent="A"), Code("other", parent="A")]), "x")
    with pytest.raises(InputError, match=r"code 'a' appears twice \(also as 'A'; "):
        validate_codebook(Codebook([Code("A"), Code("a")]), "x")
    # a name that is also another code's path is refused: keys must stay unique
    with pytest.raises(
        InputError, match=r"codes 'x' and 'A/x' are both known as 'A/x' \(one by its name, one by its path\)"
    ):
        validate_codebook(Codebook([Code("A"), Code("x", parent="A"), Code("x"), Code("A/x")]), "y")


def test_escape_for_slash_in_names() -> None:
    assert join_path(["a/b", "c\\d", "e"]) == "a\\/b/c\\\\d/e"
    assert split_path("a\\/b/c\\\\d/e") == ["a/b", "c\\d", "e"]
    cb = validate_codebook(
        Codebook([Code("yes/no"), Code("Other", parent="yes/no"), Code("x"), Code("Other", parent="x")]), "v"
    )
    assert cb.names() == ["yes/no", "yes\\/no/Other", "x", "x/Other"]
    assert code_paths(cb)["yes\\/no/Other"] == "yes\\/no/Other"
    assert [c.name for c in find_codes("yes\\/no/other", cb)] == ["yes\\/no/Other"]
    assert validate_codebook(cb, "again").codes == cb.codes


def test_codebooks_without_shared_names_are_keyed_by_name_as_before() -> None:
    cb = validate_codebook(Codebook([Code("a"), Code("b", parent="a")]), "x")
    assert cb.names() == ["a", "b"] and all(c.given_name is None for c in cb.codes)
    assert display_name("b", cb) == "b" and display_name(cb.codes[1], cb) == "b"
    other = read_codebook(FIX / "maxqda_other.qdc")
    assert display_name("Other", other) == "Other"  # ambiguous: shown as stored
    assert display_name("{07dac8e6-b1d3-4e9a-9c77-6d8e9fa0b1c6}", other) == "Outcomes/Other"


def test_qdpx_round_trip_keeps_guids_names_and_coded_paths(tmp_path: Path) -> None:
    cb = read_codebook(FIX / "qualcoder_categories.qdc")
    sources = [Source("int01", TEXT, [], "txt")]
    codings = [
        Coding("int01", 0, 9, "Barriers/Barriers", "ana"),
        Coding("int01", 10, 33, "cost", "ana"),
        Coding("int01", 34, 50, "Support/support", "bob"),
    ]
    export_qdpx(tmp_path / "p.qdpx", sources=sources, codebook=cb, codings=codings, users=["ana", "bob"])
    project = import_qdpx(tmp_path / "p.qdpx")
    assert project.codebook.codes == cb.codes
    assert [(c.code, c.start, c.end, c.coder) for c in project.codings] == [
        (c.code, c.start, c.end, c.coder) for c in codings
    ]
    export_qdpx(
        tmp_path / "q.qdpx",
        sources=project.sources,
        codebook=project.codebook,
        codings=project.codings,
        users=project.users,
    )
    assert (tmp_path / "p.qdpx").read_bytes() == (tmp_path / "q.qdpx").read_bytes()


def test_paradigm_and_cooccurrence_show_paths_where_names_collide() -> None:
    from pipeline.cooccurrence import cooccurrence
    from pipeline.domain import Segment
    from pipeline.paradigm import build_paradigm

    cb = read_codebook(FIX / "maxqda_other.qdc")
    cb = Codebook([dataclasses.replace(c, dimension="causal") if c.parent is None else c for c in cb.codes])
    codings = [
        Coding("int01", 0, 8, "Barriers/Other", "ana"),
        Coding("int01", 0, 8, "Outcomes/Other", "ana"),
    ]
    segments = [Segment("int01", 0, 0, 9, TEXT[:9])]
    result = cooccurrence(segments, codings, ["Barriers/Other", "Outcomes/Other"])
    assert result.codes == ["Barriers/Other", "Outcomes/Other"] and int(result.counts[0, 1]) == 1
    model = build_paradigm(cb, codings, {"int01": TEXT})
    shown = {e.code for entries in model.entries.values() for e in entries}
    assert {"Barriers/Other", "Outcomes/Other"} <= shown
    assert set(MAXQDA_GUIDS) <= set(cb.names())
