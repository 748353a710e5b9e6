"""Roles: configured interviewer names, known labels, the question rule."""

from __future__ import annotations

from pathlib import Path

from pipeline.domain import Turn
from pipeline.ingest import read_transcript
from pipeline.ingest.roles import assign_roles

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def make(*turns: tuple[str, str]) -> tuple[list[Turn], str]:
    """Turns laid out back to back, one per line."""
    text = ""
    out: list[Turn] = []
    for speaker, words in turns:
        out.append(Turn(speaker, len(text), len(text) + len(words)))
        text += words + "\n"
    return out, text


def roles(turns: list[Turn], text: str, names: list[str] | None = None) -> list[str]:
    return [t.role for t in assign_roles(turns, text, names)]


def test_configured_names_are_case_insensitive() -> None:
    turns, text = make(("ANNA", "Hi."), ("Ben", "Why?"), ("anna", "Yes."), ("", "[noise]"))
    assert roles(turns, text, ["Anna"]) == ["interviewer", "participant", "interviewer", "unknown"]


def test_configured_persian_name_matches_across_letter_variants() -> None:
    turns, text = make(("علي", "سلام"), ("مینا", "سلام؟"))
    assert roles(turns, text, ["علی"]) == ["interviewer", "participant"]


def test_known_labels_win_over_questions() -> None:
    turns, text = make(("Interviewer", "Tell me."), ("Maria", "Why? Why? Why?"), ("Maria", "Who?"))
    assert roles(turns, text) == ["interviewer", "participant", "participant"]


def test_known_labels_with_numbers_and_abbreviations() -> None:
    turns, text = make(("I", "So."), ("P01", "Ok."), ("R2", "Yes."), ("Int.", "And?"))
    assert roles(turns, text) == ["interviewer", "participant", "participant", "interviewer"]
    turns, text = make(("Q", "Ok"), ("A", "Ok"))
    assert roles(turns, text) == ["interviewer", "participant"]


def test_session_and_study_labels() -> None:
    # AnnoMI: the client often asks more than the therapist, so the question rule alone got it wrong
    turns, text = make(("Therapist", "Mm-hmm."), ("Client", "Why me? Why now?"), ("Therapist", "You wonder."))
    assert roles(turns, text) == ["interviewer", "participant", "interviewer"]
    turns, text = make(("Researcher", "Go on."), ("Expert 3", "How? Which one?"))
    assert roles(turns, text) == ["interviewer", "participant"]
    turns, text = make(("Counsellor", "Ok."), ("Patient", "What?"), ("Informant", "Who?"))
    assert roles(turns, text) == ["interviewer", "participant", "participant"]
    turns, text = make(("پژوهشگر", "خوب."), ("شرکت‌کننده ۲", "چرا؟"), ("پاسخگو", "کی؟"))
    assert roles(turns, text) == ["interviewer", "participant", "participant"]


def test_persian_labels() -> None:
    for interviewer in ("مصاحبه‌گر", "مصاحبه گر", "مصاحبه کننده", "مصاحبه‌كننده"):
        turns, text = make((interviewer, "خوب."), ("مینا", "چرا؟"))
        assert roles(turns, text) == ["interviewer", "participant"], interviewer
    turns, text = make(("مصاحبه‌شونده", "بله؟"), ("سارا", "و بعد؟"))
    assert roles(turns, text) == ["participant", "interviewer"]


def test_question_rule_uses_rate_not_count() -> None:
    turns, text = make(
        ("Speaker 1", "How did it start?"),
        ("Speaker 2", "With a letter."),
        ("Speaker 1", "And then?"),
        ("Speaker 2", "Sorry? Nothing."),
        ("Speaker 1", "Nothing at all?"),
        ("Speaker 2", "Nothing."),
        ("Speaker 2", "Really nothing."),
    )
    assert roles(turns, text) == [
        "interviewer",
        "participant",
        "interviewer",
        "participant",
        "interviewer",
        "participant",
        "participant",
    ]


def test_one_stray_question_does_not_make_an_interviewer() -> None:
    turns, text = make(("Ana", "Sorry?"), ("Ben", "Where?"), ("Ben", "Why?"), ("Ben", "How?"), ("Ben", "Ok."))
    assert roles(turns, text)[:2] == ["participant", "interviewer"]


def test_persian_question_mark_counts() -> None:
    turns, text = make(("سارا", "از کی؟"), ("مینا", "از سال ۱۳۸۵."))
    assert roles(turns, text) == ["interviewer", "participant"]


def test_single_speaker_and_no_questions_are_participants() -> None:
    turns, text = make(("Ana", "Who knows?"), ("", "[pause]"), ("Ana", "Anyway."))
    assert roles(turns, text) == ["participant", "unknown", "participant"]
    turns, text = make(("Ana", "Fine."), ("Ben", "Good."))
    assert roles(turns, text) == ["participant", "participant"]


def test_empty_names_list_means_infer() -> None:
    turns, text = make(("Ana", "Why?"), ("Ben", "Because."))
    assert roles(turns, text, []) == ["interviewer", "participant"]


def test_roles_on_fixtures() -> None:
    p = read_transcript(FIXTURES / "persian.txt")
    assert [t.role for t in assign_roles(p.turns, p.text)] == ["interviewer", "participant"] * 2
    p = read_transcript(FIXTURES / "otter.txt")
    assert [t.role for t in assign_roles(p.turns, p.text)] == ["interviewer", "participant", "interviewer"]
    p = read_transcript(FIXTURES / "interview.txt")
    got = assign_roles(p.turns, p.text)
    assert [t.role for t in got] == ["unknown"] + ["interviewer", "participant"] * 2 + ["interviewer"]
    assert [(t.speaker, t.start, t.end) for t in got] == [(t.speaker, t.start, t.end) for t in p.turns]
