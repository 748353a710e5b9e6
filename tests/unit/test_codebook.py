"""Codebook validation, hash and the YAML / CSV / QDC formats (pipeline.codebook)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codebook import codebook_hash, validate_codebook
from pipeline.codebook_files import (
    read_codebook,
    read_codebook_csv,
    read_codebook_yaml,
    supported_suffixes,
    write_codebook,
    write_codebook_csv,
    write_codebook_yaml,
)
from pipeline.domain import PARADIGM_DIMENSIONS, Code, Codebook
from pipeline.errors import InputError

YAML = """\
name: care study
codes:
  - name: trust
    description: |-
      The participant relies on the care team.
      Second line.
    inclusion: explicit statements of reliance
    exclusion: reliance on family
    examples:
      - I know they will call me back
      - "They always listen | really"
    dimension: context
    color: "#1f77b4"
    codes:
      - name: trust-building
        examples: [step by step]
  - name: distrust
    parent: trust
  - name: Ängste
    codable: false
    dimension: causal
    guid: 0f8fad5b-d9cb-469f-a165-70867728950e
"""

EXPECTED = [
    Code(
        name="trust",
        description="The participant relies on the care team.\nSecond line.",
        inclusion="explicit statements of reliance",
        exclusion="reliance on family",
        examples=["I know they will call me back", "They always listen | really"],
        dimension="context",
        color="#1f77b4",
    ),
    Code(name="trust-building", examples=["step by step"], parent="trust"),
    Code(name="distrust", parent="trust"),
    Code(name="Ängste", dimension="causal", guid="0f8fad5b-d9cb-469f-a165-70867728950e", is_codable=False),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _no_guid(cb: Codebook) -> list[Code]:
    return [dataclasses.replace(c, guid=None) for c in cb.codes]


@pytest.fixture
def yaml_book(tmp_path: Path) -> Codebook:
    return read_codebook_yaml(_write(tmp_path, "codebook.yaml", YAML))


def test_yaml_reads_nesting_and_parent_keys_in_tree_order(yaml_book: Codebook) -> None:
    assert yaml_book.name == "care study"
    assert yaml_book.codes == EXPECTED


def test_yaml_round_trip_is_exact(tmp_path: Path, yaml_book: Codebook) -> None:
    write_codebook_yaml(yaml_book, tmp_path / "out.yaml")
    again = read_codebook(tmp_path / "out.yaml")
    assert again == yaml_book
    text = (tmp_path / "out.yaml").read_text(encoding="utf-8")
    assert "parent:" not in text  # hierarchy by nesting
    assert "Ängste" in text


def test_yaml_csv_qdc_yaml_keeps_codes_and_hash(tmp_path: Path) -> None:
    # the CSV cannot hold '|' inside an example: drop that one for this chain
    book = read_codebook_yaml(_write(tmp_path, "codebook.yaml", YAML.replace(' | really"', '"')))
    digest = codebook_hash(book)
    write_codebook(book, tmp_path / "a.csv")
    from_csv = read_codebook(tmp_path / "a.csv")
    assert from_csv.codes == book.codes
    write_codebook(from_csv, tmp_path / "b.qdc")
    from_qdc = read_codebook(tmp_path / "b.qdc")
    assert _no_guid(from_qdc) == _no_guid(book)
    assert from_qdc.get("Ängste").guid == "0f8fad5b-d9cb-469f-a165-70867728950e"  # type: ignore[union-attr]
    write_codebook(from_qdc, tmp_path / "c.yml")
    back = read_codebook(tmp_path / "c.yml")
    assert codebook_hash(from_csv) == codebook_hash(from_qdc) == codebook_hash(back) == digest
    # the qdc derived guids for codes without one, and keeps them from then on
    write_codebook(back, tmp_path / "d.qdc")
    assert (tmp_path / "d.qdc").read_bytes() == (tmp_path / "b.qdc").read_bytes()


def test_csv_exact_content(tmp_path: Path) -> None:
    book = Codebook(
        [Code("a", examples=["x", "y"], color="#00ff00"), Code("b", parent="a", description='d,"q"')]
    )
    write_codebook_csv(book, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text(encoding="utf-8") == (
        "name,parent,description,inclusion,exclusion,examples,dimension,color,codable,guid\n"
        "a,,,,,x | y,,#00ff00,true,\n"
        'b,a,"d,""q""",,,,,,true,\n'
    )
    assert read_codebook_csv(tmp_path / "c.csv").codes == book.codes


def test_csv_minimal_columns_with_bom_and_child_before_parent(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_bytes("\ufeffname,parent\r\nchild,top\r\ntop,\r\n".encode())
    book = read_codebook(path)
    assert book.names() == ["top", "child"]
    assert book.name == "codes"


def test_hash_ignores_guid_and_name_but_not_content() -> None:
    a = Codebook([Code("a"), Code("b", parent="a")])
    assert codebook_hash(a) == codebook_hash(
        Codebook([Code("a", guid="0f8fad5b-d9cb-469f-a165-70867728950e"), Code("b", parent="a")], name="x")
    )
    assert codebook_hash(a) != codebook_hash(Codebook([Code("a"), Code("b")]))
    assert codebook_hash(a) != codebook_hash(Codebook([Code("a", description="d"), Code("b", parent="a")]))
    assert len(codebook_hash(a)) == 64


def test_supported_suffixes_and_unknown_suffix(tmp_path: Path) -> None:
    assert supported_suffixes() == [".yaml", ".yml", ".csv", ".qdc"]
    with pytest.raises(
        InputError, match=r"codes\.json: unknown codebook format '\.json'; use one of \['\.yaml'"
    ):
        read_codebook(tmp_path / "codes.json")
    with pytest.raises(InputError, match=r"unknown codebook format '\(no suffix\)'"):
        write_codebook(Codebook([Code("a")]), tmp_path / "codes")


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ([Code("Trust"), Code("trust")], r"codebook\.yaml: code 'trust' appears twice \(also as 'Trust'; "),
        ([Code("a"), Code("  ")], r"codebook\.yaml: code #2 has an empty name"),
        (
            [Code("a", parent="tust"), Code("trust")],
            r"code 'a' has parent 'tust', which is not in the codebook \(did you mean 'trust'\?\)",
        ),
        (
            [Code("a", parent="b"), Code("b", parent="c"), Code("c", parent="a")],
            r"^codebook\.yaml: codes form a cycle: a -> b -> c -> a; give one of them no parent$",
        ),
        ([Code("a", parent="a")], r"codes form a cycle: a -> a;"),
        (
            [Code("a", dimension="cause")],
            r"code 'a': unknown dimension 'cause'; choose one of \['phenomenon', 'causal', 'context', ",
        ),
        ([Code("a", color="red")], r"code 'a': colour 'red' is not #RRGGBB"),
        ([Code("a", color="#12345")], r"colour '#12345' is not #RRGGBB"),
        ([Code("a", guid="x1")], r"code 'a': guid 'x1' is not a GUID"),
        ([Code("a", examples=["ok", " "])], r"code 'a': example 2 is empty"),
        ([Code("a", description="bell\x07")], r"code 'a': description holds the control character U\+0007"),
        ([Code("a\nb")], r"the name must be one line"),
    ],
)
def test_validate_rejects(codes: list[Code], message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_codebook(Codebook(codes), "codebook.yaml")


def test_validate_lists_several_problems_in_one_line() -> None:
    with pytest.raises(
        InputError,
        match=r"^codebook\.yaml: 2 problems: code 'a': colour 'x' .*; code 'b': "
        r"unknown dimension 'y'",
    ) as info:
        validate_codebook(Codebook([Code("a", color="x"), Code("b", dimension="y")]), "codebook.yaml")
    assert "\n" not in str(info.value)


def test_validate_returns_tree_order_and_keeps_sibling_order() -> None:
    cb = Codebook([Code("c2", parent="b"), Code("a"), Code("c1", parent="a"), Code("b")])
    assert validate_codebook(cb, "x").names() == ["a", "c1", "b", "c2"]


# --- reader errors --------------------------------------------------------------------------------


def test_yaml_unknown_key_names_key_code_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "codebook.yaml", "codes:\n  - name: a\n  - name: trust\n    colour: '#112233'\n")
    with pytest.raises(
        InputError, match=r"codebook\.yaml line 3: code 'trust': unknown key 'colour'; valid keys"
    ):
        read_codebook(path)


def test_yaml_malformed_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "codebook.yaml", "codes:\n  - name: a\n    description: x: y\n")
    with pytest.raises(InputError, match=r"codebook\.yaml line 3: not valid YAML"):
        read_codebook(path)


def test_yaml_non_text_name_and_bad_codable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"codebook\.yaml line 2: name 2019 is not text; put it in quotes"):
        read_codebook(_write(tmp_path, "codebook.yaml", "codes:\n  - name: 2019\n"))
    with pytest.raises(InputError, match=r"code 'a': codable must be true or false, not 'nope'"):
        read_codebook(_write(tmp_path, "codebook.yaml", "codes:\n  - name: a\n    codable: nope\n"))


def test_yaml_nested_and_conflicting_parent(tmp_path: Path) -> None:
    text = "codes:\n  - name: a\n    codes:\n      - name: b\n        parent: c\n  - name: c\n"
    with pytest.raises(InputError, match=r"line 4: code 'b' is nested under 'a' but says parent: 'c'"):
        read_codebook(_write(tmp_path, "codebook.yaml", text))


def test_yaml_structure_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"codebook\.yaml: expected a mapping with name: and codes:"):
        read_codebook(_write(tmp_path, "codebook.yaml", "- a\n- b\n"))
    with pytest.raises(InputError, match=r"unknown top-level key 'code'"):
        read_codebook(_write(tmp_path, "codebook.yaml", "codes: []\ncode: []\n"))
    with pytest.raises(InputError, match=r"codebook\.yaml line 3: each entry under codes: must be a mapping"):
        read_codebook(_write(tmp_path, "codebook.yaml", "name: t\ncodes:\n  - budget\n"))
    nested = "codes:\n  - name: a\n    codes:\n      - name: b\n      - c\n"
    with pytest.raises(InputError, match=r"codebook\.yaml line 5: each entry under codes: must be a mapping"):
        read_codebook(_write(tmp_path, "codebook.yaml", nested))
    with pytest.raises(InputError, match=r"line 2: a code has an empty or missing name"):
        read_codebook(_write(tmp_path, "codebook.yaml", "codes:\n  - description: x\n"))
    with pytest.raises(InputError, match=r"codebook\.yaml: code 'b' has parent 'zz'"):
        read_codebook(_write(tmp_path, "codebook.yaml", "codes:\n  - name: b\n    parent: zz\n"))


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"codes\.csv line 3: empty name"):
        read_codebook(_write(tmp_path, "codes.csv", "name,parent\na,\n,a\n"))
    with pytest.raises(InputError, match=r"codes\.csv line 1: unknown column 'colour'; valid columns"):
        read_codebook(_write(tmp_path, "codes.csv", "name,colour\na,red\n"))
    with pytest.raises(InputError, match=r"codes\.csv line 1: missing column 'name'"):
        read_codebook(_write(tmp_path, "codes.csv", "parent\na\n"))
    with pytest.raises(InputError, match=r"codes\.csv line 4: codable must be true or false, not 'maybe'"):
        read_codebook(
            _write(tmp_path, "codes.csv", 'name,codable,description\na,true,"two\nlines"\nb,maybe,\n')
        )
    with pytest.raises(InputError, match=r"codes\.csv line 2: 3 cells but the header has 2 columns"):
        read_codebook(_write(tmp_path, "codes.csv", "name,parent\na,b,c\n"))
    with pytest.raises(InputError, match=r"codes\.csv: the file is empty"):
        read_codebook(_write(tmp_path, "codes.csv", ""))
    with pytest.raises(InputError, match=r"codes\.csv: code 'a' appears twice"):
        read_codebook(_write(tmp_path, "codes.csv", "name\nA\na\n"))


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_bytes(b"name\ncaf\xe9\n")
    with pytest.raises(InputError, match=r"codes\.csv line 2: not UTF-8"):
        read_codebook(tmp_path / "codes.csv")
    with pytest.raises(InputError, match=r"nope\.yaml: no such file"):
        read_codebook(tmp_path / "nope.yaml")


def test_failed_write_leaves_nothing_half_written(tmp_path: Path) -> None:
    target = tmp_path / "codes.csv"
    target.write_text("old content\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"code 'a': example 'x \| y' holds '\|'"):
        write_codebook_csv(Codebook([Code("a", examples=["x | y"])]), target)
    assert target.read_text(encoding="utf-8") == "old content\n"
    with pytest.raises(InputError, match=r"colour"):
        write_codebook(Codebook([Code("a", color="blue")]), tmp_path / "new.qdc")
    assert sorted(os.listdir(tmp_path)) == ["codes.csv"]


# --- property: random valid codebooks survive YAML and QDC ----------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    max_size=12,
)
_multiline = st.lists(_text, min_size=1, max_size=3).map("\n".join)
_field_like = st.sampled_from(
    ["Example: x", "Inclusion: ", "  ", "Dimension: causal", "\n\n", "a\n\nExample: b"]
)
_free = st.one_of(st.just(""), _multiline, _field_like, st.tuples(_multiline, _field_like).map("".join))
_name = _text.map(str.strip).filter(bool)
_example = st.one_of(_multiline, _field_like).filter(lambda s: s.strip() != "")


@st.composite
def codebooks(draw: st.DrawFn) -> Codebook:
    names = draw(st.lists(_name, min_size=1, max_size=6, unique_by=str.lower))
    codes = []
    for i, name in enumerate(names):
        parent = draw(st.one_of(st.none(), st.sampled_from(names[:i]))) if i else None
        codes.append(
            Code(
                name=name,
                description=draw(_free),
                inclusion=draw(_free),
                exclusion=draw(_free),
                examples=draw(st.lists(_example, max_size=3)),
                parent=parent,
                dimension=draw(st.one_of(st.none(), st.sampled_from(PARADIGM_DIMENSIONS))),
                color=draw(st.one_of(st.none(), st.from_regex(r"#[0-9a-fA-F]{6}", fullmatch=True))),
                is_codable=draw(st.booleans()),
            )
        )
    return validate_codebook(Codebook(codes, name=draw(_name)), "generated")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(book=codebooks())
def test_random_codebooks_survive_yaml_and_qdc(tmp_path: Path, book: Codebook) -> None:
    write_codebook(book, tmp_path / "cb.yaml")
    assert read_codebook(tmp_path / "cb.yaml") == book
    write_codebook(book, tmp_path / "cb.qdc")
    from_qdc = read_codebook(tmp_path / "cb.qdc")
    assert _no_guid(from_qdc) == book.codes
    assert codebook_hash(from_qdc) == codebook_hash(book)


def test_write_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"the folder .*nope does not exist"):
        write_codebook(Codebook([Code("a")]), tmp_path / "nope" / "cb.yaml")
