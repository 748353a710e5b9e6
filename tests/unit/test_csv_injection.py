"""CSV formula injection: every export neutralises cells a spreadsheet would run (OWASP: a leading ``'``
before ``= + - @``, tab or CR), numbers stay numbers, the codings and codebook CSV readers give back the
original text, and ``QUALFLOW_CSV_RAW=1`` writes cells as they are."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.agreement_report import agreement_panel, to_csv
from pipeline.codebook_files import codebook_to_csv, read_codebook_csv
from pipeline.codings_csv import codings_to_csv, read_codings_csv
from pipeline.domain import Code, Codebook, Coding, Segment
from pipeline.fileio import CSV_RAW_ENV, csv_safe, csv_unsafe
from pipeline.project import suggest
from pipeline.report import build_report

HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "@SUM(A1)", "-cmd", "\tx", "\r=1+1", "'=quoted"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_safe(text: str) -> None:
    """No cell of ``text`` starts with a trigger character, except negative numbers."""
    for row in cells(text):
        for cell in row:
            if cell[:1] in TRIGGERS:
                float(cell)  # only a number may start with "-" (or "+")
                assert cell.startswith("-"), cell


@given(st.text(max_size=12))
def test_unsafe_undoes_safe(text: str) -> None:
    assert csv_unsafe(csv_safe(text)) == text
    assert csv_safe(text)[:1] not in TRIGGERS or csv_safe(text).startswith("-")


def test_numbers_are_left_alone() -> None:
    for value in (-0.5, "-0.5", "-3", "-1e-05", "-inf", 0, 12, "0.25"):
        assert csv_safe(value) == value
    for value in ("+1", "-cmd", "-", "=1", "@x", "\t1", "\r1", "-1+2"):
        assert csv_safe(value) == "'" + value


def hostile_codebook() -> Codebook:
    """Codes named and described by the hostile values (a codebook refuses CR, and names are stripped)."""
    codes = [
        Code(
            name=v.strip() if v.strip()[:1] in TRIGGERS else f"{v.strip()} {i}",
            description=v.replace("\r", ""),
        )
        for i, v in enumerate(HOSTILE)
    ]
    return Codebook(codes=codes, name="hostile")


def test_codings_export_is_safe_and_round_trips(tmp_path: Path) -> None:
    cb = hostile_codebook()
    sources = {"=src": "abcdefghij", "@two": "0123456789"}
    codings = [
        Coding("=src", 0, 5, cb.codes[0].name, "-coder", memo='=HYPERLINK("http://x","y")'),
        Coding("@two", 2, 4, cb.codes[1].name, "+ben", memo="\tx"),
        Coding("=src", 1, 3, cb.codes[6].name, "@ana", memo="-0.5"),
    ]
    text = codings_to_csv(codings)
    assert_safe(text)
    assert cells(text)[1][:5] == ["'=src", "0", "5", "'" + cb.codes[0].name, "'-coder"]
    path = tmp_path / "codings.csv"
    path.write_text(text, encoding="utf-8")
    back = read_codings_csv(path, cb, sources)
    assert [(c.source, c.start, c.end, c.code, c.coder, c.memo) for c in back] == [
        (c.source, c.start, c.end, c.code, c.coder, c.memo) for c in codings
    ]


def test_codebook_export_is_safe_and_round_trips(tmp_path: Path) -> None:
    cb = hostile_codebook()
    text = codebook_to_csv(cb)
    assert_safe(text)
    path = tmp_path / "hostile.csv"
    path.write_text(text, encoding="utf-8")
    back = read_codebook_csv(path)
    assert [(c.name, c.description) for c in back.codes] == [(c.name, c.description) for c in cb.codes]


def test_agreement_csv_is_safe() -> None:
    text = "=HYPERLINK(1) and more text here."
    segments = [Segment("=s", 0, 0, 12, text[:12]), Segment("=s", 1, 13, len(text), text[13:])]
    codings = [
        Coding("=s", 0, 12, "@evil", "+sara"),
        Coding("=s", 0, 12, "@evil", "-omid"),
        Coding("=s", 13, len(text), "=other", "+sara"),
    ]
    report = agreement_panel(
        codings,
        segments,
        {"=s": text},
        coders=["+sara", "-omid"],
        codes=["@evil", "=other"],
        n_boot=50,
        seed=0,
    )
    out = to_csv(report)
    assert_safe(out)
    assert "'@evil" in out and "'=other" in out


def test_report_csvs_are_safe() -> None:
    from tests.unit.test_report import CODEBOOK, demo_bundle, demo_project

    sources, segments, codings = demo_project(accepted=False)
    s0 = sources[0]
    quote = '=HYPERLINK("http://x","y")'
    start = len(s0.text) + len("Participant: ")
    s0.text += f"Participant: {quote}\n"
    codings.append(Coding(s0.name, start, start + len(quote), "@SUM(A1)", "ana"))
    cb = Codebook([*CODEBOOK.codes, Code("@SUM(A1)", description="-cmd")], name=CODEBOOK.name)
    _, csvs = build_report(
        demo_bundle(codebook=cb, codings=codings, source_texts={s.name: s.text for s in sources})
    )
    for text in csvs.values():
        assert_safe(text)
    assert "'@SUM(A1)" in csvs["codebook.csv"] and "'-cmd" in csvs["codebook.csv"]


@pytest.fixture()
def fake_project(monkeypatch: pytest.MonkeyPatch) -> Any:
    rows = [
        {
            "source": "=s",
            "segment": 0,
            "start": 0,
            "end": 3,
            "code": "@c",
            "score": -0.5,
            "rank": 1,
            "model": "+m",
            "kind": "suggested",
        },
        {
            "source": "s",
            "segment": 1,
            "start": 3,
            "end": 6,
            "code": "c",
            "score": 0.25,
            "rank": 2,
            "model": "m",
            "kind": "-x",
        },
    ]
    monkeypatch.setattr(suggest, "suggestion_rows", lambda session, state=None: rows)

    @contextlib.contextmanager
    def transaction() -> Iterator[None]:
        yield None

    return SimpleNamespace(store=SimpleNamespace(transaction=transaction))


def test_suggestions_export_is_safe(tmp_path: Path, fake_project: Any) -> None:
    path = tmp_path / "s.csv"
    assert suggest.export_suggestions(fake_project, path, state="all") == 2
    text = path.read_text(encoding="utf-8")
    assert_safe(text)
    rows = cells(text)
    assert rows[1][0] == "'=s" and rows[1][4] == "'@c" and rows[1][5] == "-0.5" and rows[1][7] == "'+m"
    assert rows[2][8] == "'-x"


def test_raw_opt_out(tmp_path: Path, fake_project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CSV_RAW_ENV, "1")
    cb = hostile_codebook()
    assert cells(codebook_to_csv(cb))[1][0] == HOSTILE[0]
    assert cells(codings_to_csv([Coding("=s", 0, 1, "@c", "+a")]))[1][:5] == ["=s", "0", "1", "@c", "+a"]
    path = tmp_path / "s.csv"
    suggest.export_suggestions(fake_project, path, state="all")
    assert cells(path.read_text(encoding="utf-8"))[1][0] == "=s"
    # a raw file reads back as written, except text that starts with ' and then a trigger (documented)
    path = tmp_path / "raw.csv"
    path.write_text(codebook_to_csv(cb), encoding="utf-8")
    names = [c.name for c in read_codebook_csv(path).codes]
    assert names[:-1] == [c.name for c in cb.codes][:-1]
    assert names[-1] == "=quoted 6"
