"""YAML codebooks: nested anchors/aliases ("billion laughs") are refused while composing, before anything
is expanded, in bounded memory, with one line naming the file, the limit and how to raise it.

The bomb is generated here (never committed).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.codebook_files import read_codebook_yaml
from pipeline.errors import InputError
from pipeline.limits import YAML_ALIASES
from tests.unit.test_limits import peak_rss_mib


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """A ~600-byte codebook whose nested aliases expand to ``width ** levels`` codes (9**9 = 387 million)."""
    lines = ["name: laughs", "codes:", "  - &a0 {name: lol}"]
    for i in range(1, levels + 1):
        refs = ",".join(f"*a{i - 1}" for _ in range(width))
        lines.append(f"  - &a{i} {{name: l{i}, codes: [{refs}]}}")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(billion_laughs(), encoding="utf-8")
    assert bomb.stat().st_size < 700
    before = peak_rss_mib()
    t0 = time.perf_counter()
    with pytest.raises(InputError) as err:
        read_codebook_yaml(bomb)
    elapsed = time.perf_counter() - t0
    message = str(err.value)
    assert "\n" not in message
    assert str(bomb) in message
    assert "yaml_aliases = 100" in message
    assert YAML_ALIASES.env in message
    assert elapsed < 2.0, elapsed
    assert peak_rss_mib() - before < 50


def test_a_codebook_with_a_few_aliases_reads_and_the_limit_can_be_lowered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = tmp_path / "inner.yaml"
    inner.write_text(
        "name: inner\n"
        "codes:\n"
        "  - &p {name: p, examples: &e [e1], description: d}\n"
        "  - {name: q, examples: *e}\n",
        encoding="utf-8",
    )
    cb = read_codebook_yaml(inner)
    assert [c.name for c in cb.codes] == ["p", "q"]
    assert cb.codes[1].examples == ["e1"]
    monkeypatch.setenv(YAML_ALIASES.env, "1")
    assert len(read_codebook_yaml(inner).codes) == 2  # one alias: at the limit, not over it
    inner.write_text(inner.read_text() + "  - {name: r, examples: *e}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"is 2 aliases, over the limit yaml_aliases = 1"):
        read_codebook_yaml(inner)


def test_aliases_inside_anchors_count_once_per_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "expand.yaml"
    # *e inside the anchor &c: each of the 3 uses of *c also expands *e: 1 + 3 * (1 + 1) = 7
    path.write_text(
        "name: expand\n"
        "codes:\n"
        "  - {name: a, examples: &e [x]}\n"
        "  - {name: b, codes: &c [{name: c, examples: *e}]}\n"
        "  - {name: d, codes: *c}\n"
        "  - {name: f, codes: *c}\n"
        "  - {name: g, codes: *c}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(YAML_ALIASES.env, "6")
    with pytest.raises(InputError, match=r"is 7 aliases"):
        read_codebook_yaml(path)
    monkeypatch.setenv(YAML_ALIASES.env, "7")
    book = read_codebook_yaml(path)  # at the limit; 'c' under four parents is a valid codebook
    assert [c.name for c in book.codes if c.title == "c"] == ["b/c", "d/c", "f/c", "g/c"]


def test_an_oversized_codebook_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.codebook_files import read_codebook
    from pipeline.limits import CODEBOOK_FILE_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("name: big\ncodes: [{name: a}]\n", encoding="utf-8")
    assert [c.name for c in read_codebook(path).codes] == ["a"]
    monkeypatch.setenv(CODEBOOK_FILE_BYTES.env, "10")
    with pytest.raises(InputError, match=r"over the limit codebook_file_bytes = 10 bytes.*QUALFLOW_LIMIT_"):
        read_codebook(path)
