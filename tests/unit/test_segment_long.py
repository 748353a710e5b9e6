"""Turns longer than spaCy's max_length (1,000,000 characters) are segmented in chunks, offsets exact."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.chunking import chunk_spans
from pipeline.domain import Turn
from pipeline.ingest import read_transcript
from pipeline.segment import segment_text

SENTENCE = "The budget was cut again and nobody told us why. "


def one_line_transcript(n_chars: int) -> str:
    body = (SENTENCE * (n_chars // len(SENTENCE) + 1))[:n_chars]
    return "Mina: " + body + "\n"


def test_a_turn_over_a_million_characters_is_segmented(tmp_path: Path) -> None:
    path = tmp_path / "pasted.txt"
    path.write_text(one_line_transcript(1_100_000), encoding="utf-8")
    parsed = read_transcript(path)
    assert max(t.end - t.start for t in parsed.turns) > 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    segs = segment_text(parsed.text, parsed.turns, mode="sentence")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert len(segs) > 20_000
    assert all(parsed.text[s.start : s.end] == s.text for s in segs)
    assert segs[1].text == SENTENCE.strip() and grown < 500, grown


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab .\n?!؟", max_size=300), st.integers(2, 40), st.data())
def test_chunks_cover_the_text_exactly(text: str, size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = chunk_spans(text, start, end, size)
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(b - a <= size for a, b in spans)
    assert all(a < b for a, b in spans) or spans == [(start, end)]
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="Ab cd.?!\n", min_size=1, max_size=120), min_size=1, max_size=4),
    st.integers(2, 30),
    st.sampled_from(["sentence", "window"]),
)
def test_chunked_segments_keep_exact_offsets(bodies: list[str], size: int, mode: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUALFLOW_LIMIT_SEGMENT_CHUNK_CHARS", str(size))
        check_chunked_segments(bodies, mode)


def check_chunked_segments(bodies: list[str], mode: str) -> None:
    text, turns, pos = "", [], 0
    for i, body in enumerate(bodies):
        label = f"S{i}: "
        text += label + body + "\n"
        turns.append(Turn(f"S{i}", pos + len(label), pos + len(label) + len(body)))
        pos = len(text)
    segs = segment_text(text, turns, mode=mode)
    for s in segs:
        assert text[s.start : s.end] == s.text and s.text == s.text.strip() and s.text
        t = turns[s.turn_index]
        assert t.start <= s.start < s.end <= t.end
    if mode == "sentence":  # sentences of one turn do not overlap and stay in order
        ends = [(s.turn_index, s.start, s.end) for s in segs]
        assert all(a[2] <= b[1] for a, b in zip(ends, ends[1:], strict=False) if a[0] == b[0])


def qf(*args: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_ingests_a_one_line_1_1_mb_transcript_and_refuses_past_the_documented_size(
    tmp_path: Path,
) -> None:
    assert qf("init", "p", cwd=tmp_path).returncode == 0
    (tmp_path / "pasted.txt").write_text(one_line_transcript(1_100_000), encoding="utf-8")
    r = qf("--project", "p", "ingest", "pasted.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    (tmp_path / "long.txt").write_text(one_line_transcript(3000), encoding="utf-8")
    r = qf(
        "--project",
        "p",
        "ingest",
        "long.txt",
        cwd=tmp_path,
        env_extra={"QUALFLOW_LIMIT_TRANSCRIPT_CHARS": "2000"},
    )
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "long.txt" in line and "transcript_chars = 2000" in line
    assert "QUALFLOW_LIMIT_TRANSCRIPT_CHARS" in line
