"""Checks on the demo project in ``data/demo``: codebook structure, codings, agreement, transcripts.

The demo data is what a researcher sees first, so these tests pin its shape: the codebook reader's
nested YAML layout, codings that lie inside participant turns, two coders who agree realistically
(Cohen's kappa between 0.5 and 0.85), and transcripts in the promised formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from pipeline.domain import PARADIGM_DIMENSIONS

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
TRANSCRIPTS = DEMO / "transcripts"
SHARED = ("int01", "int02", "int03")
CODED_FILES = {"int01": "int01.txt", "int02": "int02.txt", "int03": "int03.txt", "int04": "int04.md"}
ALL_FILES = {
    "int01": "int01.txt",
    "int02": "int02.txt",
    "int03": "int03.txt",
    "int04": "int04.md",
    "int05": "int05.txt",
    "int06": "int06.docx",
    "int07": "int07.vtt",
    "int08": "int08.srt",
    "int09_fa": "int09_fa.txt",
}
LEAVES = {
    "inter-agency-coordination",
    "organisational-structure",
    "implementation-prerequisites",
    "cultural-background",
    "social-background",
    "legal-background",
    "institutional-background",
    "environmental-change",
    "stakeholder-pressure",
    "resource-shortage",
    "inter-organisational-misalignment",
    "tools",
    "mechanisms",
    "phased-design",
    "implementation-and-evaluation",
    "efficiency",
    "public-participation",
    "cost-reduction",
    "service-improvement",
    "increased-complexity",
    "reduced-accountability",
}
TOP_CATEGORIES = {
    "network-governance": "phenomenon",
    "causal-conditions": "causal",
    "contextual-conditions": "context",
    "intervening-conditions": "intervening",
    "strategies": "strategy",
    "consequences": "consequence",
}
# "Name: " or "**Name:** " at the start of a line; a Markdown heading is not a label.
LABEL = re.compile(r"(\*\*)?(?P<name>[^\s:*#][^:*\n]*):(\*\*)? ")
INTERVIEWERS = ("Interviewer", "مصاحبه‌گر")
KEBAB = re.compile(r"[a-z]+(-[a-z]+)*")
COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def _load_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMO / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(stem: str) -> str:
    return (TRANSCRIPTS / ALL_FILES[stem]).read_text(encoding="utf-8")


def _turns(text: str) -> list[tuple[str, int, int]]:
    """(speaker, start, end) of every labelled line; start/end cover the words after the label."""
    turns = []
    pos = 0
    for line in text.split("\n"):
        match = LABEL.match(line)
        if match:
            turns.append((match.group("name"), pos + match.end(), pos + len(line)))
        pos += len(line) + 1
    return turns


def _participant_turns(text: str) -> list[tuple[int, int]]:
    return [(s, e) for name, s, e in _turns(text) if name not in INTERVIEWERS]


def _walk(codes: list[dict[str, Any]], depth: int = 0) -> list[tuple[dict[str, Any], int]]:
    out = []
    for code in codes:
        out.append((code, depth))
        out.extend(_walk(code.get("codes", []), depth + 1))
    return out


@pytest.fixture(scope="module")
def codebook() -> dict[str, Any]:
    return yaml.safe_load((DEMO / "codebook.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def codings() -> list[dict[str, str]]:
    with (DEMO / "codings.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- codebook


def test_codebook_top_level_categories(codebook: dict[str, Any]) -> None:
    assert codebook["name"] == "Network governance in social security"
    top = {c["name"]: c for c in codebook["codes"]}
    assert set(top) == set(TOP_CATEGORIES)
    for name, dimension in TOP_CATEGORIES.items():
        assert top[name]["codable"] is False
        assert top[name]["dimension"] == dimension
        assert top[name]["codes"], name


def test_codebook_names_unique_kebab_and_leaves_complete(codebook: dict[str, Any]) -> None:
    nodes = _walk(codebook["codes"])
    names = [c["name"] for c, _ in nodes]
    assert len(names) == len(set(names))
    assert all(KEBAB.fullmatch(n) for n in names), names
    leaves = {c["name"] for c, _ in nodes if "codes" not in c}
    assert leaves == LEAVES


def test_codebook_every_node_well_formed(codebook: dict[str, Any]) -> None:
    for code, _ in _walk(codebook["codes"]):
        assert code["dimension"] in PARADIGM_DIMENSIONS, code["name"]
        assert COLOR.fullmatch(code["color"]), code["name"]
        assert code["description"].strip(), code["name"]
        if "codes" in code:
            assert code["codable"] is False, code["name"]
            assert all(child["dimension"] == code["dimension"] for child in code["codes"])
        else:
            assert code.get("codable", True) is True
            assert code["inclusion"].strip() and code["exclusion"].strip(), code["name"]
            assert 2 <= len(code["examples"]) <= 3, code["name"]
            assert all(isinstance(e, str) and e.strip() for e in code["examples"])


def test_codebook_examples_are_not_copied_from_transcripts(codebook: dict[str, Any]) -> None:
    texts = "\n".join(_text(stem) for stem in ALL_FILES if stem != "int06")
    for code, _ in _walk(codebook["codes"]):
        for example in code.get("examples", []):
            assert example.strip('"') not in texts, (code["name"], example)


# ---------------------------------------------------------------- codings


def test_codings_header_and_codes(codings: list[dict[str, str]]) -> None:
    assert list(codings[0]) == ["source", "start", "end", "code", "coder"]
    assert {r["code"] for r in codings} <= LEAVES
    assert {r["source"] for r in codings} == set(CODED_FILES)
    assert {r["coder"] for r in codings} == {"sara", "reza"}


def test_every_coding_lies_inside_a_participant_turn(codings: list[dict[str, str]]) -> None:
    texts = {stem: _text(stem) for stem in CODED_FILES}
    turns = {stem: _participant_turns(text) for stem, text in texts.items()}
    for line, row in enumerate(codings, start=2):
        start, end = int(row["start"]), int(row["end"])
        span = texts[row["source"]][start:end]
        assert 0 <= start < end and span.strip() == span != "", f"codings.csv line {line}"
        inside = [t for t in turns[row["source"]] if t[0] <= start and end <= t[1]]
        assert len(inside) == 1, f"codings.csv line {line}: {span[:40]!r} is not inside a participant turn"


def test_coders_on_shared_and_single_transcripts(codings: list[dict[str, str]]) -> None:
    coders = {stem: {r["coder"] for r in codings if r["source"] == stem} for stem in CODED_FILES}
    assert all(coders[stem] == {"sara", "reza"} for stem in SHARED)
    assert coders["int04"] == {"sara"}


def _turn_code_sets(codings: list[dict[str, str]], stem: str) -> dict[str, list[set[str]]]:
    turns = _participant_turns(_text(stem))
    sets: dict[str, list[set[str]]] = {"sara": [set() for _ in turns], "reza": [set() for _ in turns]}
    for row in codings:
        if row["source"] == stem and row["coder"] in sets:
            start, end = int(row["start"]), int(row["end"])
            index = next(i for i, (s, e) in enumerate(turns) if s <= start and end <= e)
            sets[row["coder"]][index].add(row["code"])
    return sets


def test_each_coder_codes_most_but_not_all_turns(codings: list[dict[str, str]]) -> None:
    for stem in SHARED:
        for coder, per_turn in _turn_code_sets(codings, stem).items():
            share = sum(1 for s in per_turn if s) / len(per_turn)
            assert 0.6 <= share <= 0.8, (stem, coder, share)
            assert max(len(s) for s in per_turn) <= 2


def test_turn_level_kappa_between_coders(codings: list[dict[str, str]]) -> None:
    from sklearn.metrics import cohen_kappa_score

    sara: list[int] = []
    reza: list[int] = []
    for stem in SHARED:
        sets = _turn_code_sets(codings, stem)
        for a, b in zip(sets["sara"], sets["reza"], strict=True):
            for code in sorted(LEAVES):
                sara.append(int(code in a))
                reza.append(int(code in b))
    kappa = cohen_kappa_score(sara, reza)
    assert 0.5 <= kappa <= 0.85, kappa


def test_make_codings_reproduces_the_csv(codings: list[dict[str, str]]) -> None:
    rows = _load_module("make_codings").build_rows()
    assert [{k: str(v) for k, v in r.items()} for r in rows] == codings


def test_make_codings_rejects_a_quote_that_is_not_unique() -> None:
    module = _load_module("make_codings")
    with pytest.raises(ValueError, match="found 0 times"):
        module.resolve_span("Mina: We met.\n", "absent words")
    with pytest.raises(ValueError, match="not in a participant turn"):
        module.resolve_span("Interviewer: Why?\nMina: We met.\n", "Why?")


# ---------------------------------------------------------------- metadata and transcripts


def test_metadata_lists_every_transcript() -> None:
    with (DEMO / "metadata.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["source", "participant", "group", "date", "order"]
    assert [r["source"] for r in rows] == list(ALL_FILES)
    assert [int(r["order"]) for r in rows] == list(range(1, 10))
    assert all(dt.date.fromisoformat(r["date"]).year == 2025 for r in rows)
    groups = {"headquarters", "provincial-branch", "partner-agency", "social-partner"}
    assert {r["group"] for r in rows} <= groups


@pytest.mark.parametrize("stem", [s for s in ALL_FILES if s != "int06"])
def test_text_transcripts_are_small_utf8_with_lf(stem: str) -> None:
    raw = (TRANSCRIPTS / ALL_FILES[stem]).read_bytes()
    assert len(raw) < 20_000
    assert b"\r" not in raw
    assert raw.decode("utf-8").endswith("\n")


@pytest.mark.parametrize("stem", ["int01", "int02", "int03", "int04", "int09_fa"])
def test_labelled_transcripts_alternate_speakers(stem: str) -> None:
    text = _text(stem)
    turns = _turns(text)
    low, high = (10, 14) if stem == "int09_fa" else (25, 45)
    assert low <= len(turns) <= high
    speakers = [name for name, _, _ in turns]
    assert all(a != b for a, b in zip(speakers, speakers[1:], strict=False))
    assert len(set(speakers)) == 2
    for name, start, end in turns:
        if name in INTERVIEWERS:
            assert text[start:end].endswith(("?", "؟")), text[start:end]


def test_persian_transcript_uses_persian_letters_and_zwnj() -> None:
    text = _text("int09_fa")
    assert "\u200c" in text
    assert not set(text) & {"\u064a", "\u0643"}  # Arabic yeh and kaf
    assert text.startswith("مصاحبه‌گر: ")


def test_otter_export_layout() -> None:
    blocks = _text("int05").rstrip("\n").split("\n\n")
    assert 25 <= len(blocks) <= 45
    for block in blocks:
        header, body = block.split("\n")
        assert re.fullmatch(r"(Interviewer|Nasrin)  \d+:\d\d", header), header
        assert body.strip()


def test_vtt_and_srt_parse_with_speakers() -> None:
    import re

    from pipeline.ingest import read_transcript

    raw = (TRANSCRIPTS / "int07.vtt").read_text(encoding="utf-8")
    voices = re.findall(r"<v ([^>]+)>", raw)
    assert set(voices) == {"Interviewer", "Parisa"}
    assert any(a == b for a, b in zip(voices, voices[1:], strict=False))  # some turns span several cues
    vtt = read_transcript(TRANSCRIPTS / "int07.vtt")
    assert {t.speaker for t in vtt.turns} == {"Interviewer", "Parisa"}
    assert len(vtt.turns) < len(voices)  # consecutive cues of one speaker merged into one turn
    srt = read_transcript(TRANSCRIPTS / "int08.srt")
    assert {t.speaker for t in srt.turns} == {"Interviewer", "Arash"}


def test_docx_holds_the_turns_of_make_docx() -> None:
    import docx

    paragraphs = [p.text for p in docx.Document(str(TRANSCRIPTS / "int06.docx")).paragraphs]
    module = _load_module("make_docx")
    assert paragraphs == [module.TITLE, *module.TURNS]
    assert 25 <= len(module.TURNS) <= 45
