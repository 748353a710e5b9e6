"""Segmentation: exact offsets in every mode (property tests over generated transcripts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain import Turn
from pipeline.errors import InputError
from pipeline.segment import MODES, segment_text

WORDS = [
    "budget",
    "staff",
    "pilot",
    "the",
    "ministry",
    "سازمان",
    "تأمین",
    "اجتماعی",
    "data",
    "union",
    "é",
    "naïve",
]


@st.composite
def transcripts(draw):  # type: ignore[no-untyped-def]
    speakers = ["Interviewer", "Mina", "Reza"]
    parts: list[str] = []
    turns: list[Turn] = []
    pos = 0
    for _ in range(draw(st.integers(1, 6))):
        speaker = draw(st.sampled_from(speakers))
        label = f"{speaker}: "
        sentences = []
        for _ in range(draw(st.integers(1, 4))):
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=7))
            end = draw(st.sampled_from([".", "?", "!", "؟", ""]))
            sentences.append(" ".join(words) + end)
        sep = draw(st.sampled_from([" ", "  ", "\n", "\n\n"]))
        body = sep.join(sentences)
        start = pos + len(label)
        parts.append(label + body + "\n")
        turns.append(
            Turn(
                speaker,
                start,
                start + len(body),
                "interviewer" if speaker == "Interviewer" else "participant",
            )
        )
        pos += len(label) + len(body) + 1
    return "".join(parts), turns


@settings(max_examples=60, deadline=None)
@given(transcripts(), st.sampled_from(MODES), st.integers(1, 4), st.integers(1, 3))
def test_offsets_hold_in_every_mode(data, mode, window, stride):  # type: ignore[no-untyped-def]
    text, turns = data
    segs = segment_text(text, turns, mode=mode, window=window, stride=stride)
    assert [s.index for s in segs] == list(range(len(segs)))
    for s in segs:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
        turn = turns[s.turn_index]  # type: ignore[index]
        assert turn.start <= s.start < s.end <= turn.end  # never crosses a turn, never a label
        assert s.role == turn.role
    # sentence segments cover every non-space character of every turn exactly once
    if mode in ("sentence", "turn", "paragraph"):
        covered = sorted((s.start, s.end) for s in segs)
        assert all(a[1] <= b[0] for a, b in zip(covered, covered[1:], strict=False))
        for t in turns:
            inside = "".join(text[s.start : s.end] for s in segs if t.start <= s.start < t.end)
            assert inside.replace(" ", "").replace("\n", "") == text[t.start : t.end].replace(
                " ", ""
            ).replace("\n", "")


def test_sentence_and_window_exact() -> None:
    text = "P: One. Two? Three! Four."
    turns = [Turn("P", 3, len(text), "participant")]
    assert [s.text for s in segment_text(text, turns, mode="sentence")] == ["One.", "Two?", "Three!", "Four."]
    wins = [s.text for s in segment_text(text, turns, mode="window", window=2, stride=2)]
    assert wins == ["One. Two?", "Three! Four."]
    wins = [s.text for s in segment_text(text, turns, mode="window", window=3, stride=2)]
    assert wins == ["One. Two? Three!", "Two? Three! Four."]


def test_paragraph_mode_splits_at_blank_lines() -> None:
    text = "First para here.\nstill first.\n\nSecond para."
    turns = [Turn("", 0, len(text))]
    assert [s.text for s in segment_text(text, turns, mode="paragraph")] == [
        "First para here.\nstill first.",
        "Second para.",
    ]


def test_persian_question_mark_ends_a_sentence() -> None:
    text = "چرا این طرح کند بود؟ بودجه کافی نبود. کارکنان هم کم بودند."
    turns = [Turn("م", 0, len(text), "participant")]
    segs = segment_text(text, turns, mode="sentence", language="fa")
    assert [s.text for s in segs] == ["چرا این طرح کند بود؟", "بودجه کافی نبود.", "کارکنان هم کم بودند."]


def test_chinese_and_japanese_sentences_end_at_full_stops() -> None:
    zh = "它让我非常感动。音乐很美，最后我哭了！对我来说，这是艺术吗？"
    segs = segment_text(zh, [Turn("P", 0, len(zh), "participant")], mode="sentence", language="zh")
    assert [s.text for s in segs] == ["它让我非常感动。", "音乐很美，最后我哭了！", "对我来说，这是艺术吗？"]
    # spaCy's Japanese needs SudachiPy: the multi-language pipeline is used; a quoted question ends nothing
    ja = "映画はとても良かったです。「本当？」と聞かれた。"
    segs = segment_text(ja, [Turn("P", 0, len(ja), "participant")], mode="sentence", language="ja")
    assert [s.text for s in segs] == ["映画はとても良かったです。", "「本当？」と聞かれた。"]


def test_a_language_spacy_does_not_know_is_split_like_any_other() -> None:
    text = "Moni. Habari yako? Nzuri!"
    segs = segment_text(text, [Turn("P", 0, len(text), "participant")], mode="sentence", language="qq")
    assert [s.text for s in segs] == ["Moni.", "Habari yako?", "Nzuri!"]


def test_bad_mode_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"segmentation mode 'lines' is not one of"):
        segment_text("x", [Turn("", 0, 1)], mode="lines")
