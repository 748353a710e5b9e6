"""normalize(), normalized_hash() and detect_language()."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.text import detect_language, normalize, normalized_hash

ZWNJ = "\u200c"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("علي", "علی"),  # Arabic yeh -> Persian yeh
        ("مصطفى", "مصطفی"),  # alef maksura -> Persian yeh
        ("كتاب", "کتاب"),  # Arabic kaf -> Persian kaf
        ("کـتـاب", "کتاب"),  # tatweel
        ("كِتَابٌ", "کتاب"),  # harakat
        ("رحمٰن", "رحمن"),  # superscript alef U+0670
        (f"می{ZWNJ}{ZWNJ}{ZWNJ}روم", f"می{ZWNJ}روم"),  # ZWNJ run collapsed, kept between letters
        (f"می{ZWNJ} روم", "می روم"),  # ZWNJ next to a space dropped
        (f"{ZWNJ}سلام{ZWNJ}", "سلام"),  # at the ends
        (f"کتاب{ZWNJ}.", "کتاب."),  # before punctuation
        ("آ", "آ"),  # alef + madda (U+0627 U+0653) composes to U+0622 and stays
        ("  a \t\n b\u00a0 c  ", "a b c"),
        ("cafe\u0301", "caf\u00e9"),  # NFC
        ("e\u064e\u0301 e\u200c\u0301", "\u00e9 \u00e9"),  # NFC again after removals
        ("\u200fسلام\u200e", "سلام"),  # bidi marks
        ("Interviewer", "Interviewer"),  # case kept
        ("", ""),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalized_hash_is_a_key_over_variants() -> None:
    assert normalized_hash("كتاب  علي") == normalized_hash("کتاب علی")
    assert normalized_hash("a") != normalized_hash("b")
    assert normalized_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


PIECES = list("abce ابيكىـ\u064e\u0670\u0653\u200c\u200f\n\t.؟") + ["\u0301"]


@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
@settings(max_examples=100, deadline=None)
def test_normalize_properties(text: str) -> None:
    out = normalize(text)
    assert normalize(out) == out
    assert out == out.strip() and "  " not in out
    assert unicodedata.is_normalized("NFC", out)
    assert not set(out) & set("يىكـ\u064e\u0670\u200f\n\t")
    for i, c in enumerate(out):
        if c == ZWNJ:
            assert 0 < i < len(out) - 1 and out[i - 1].isalpha() and out[i + 1].isalpha()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Interviewer: How did it start?", "en"),
        ("مصاحبه‌گر: چطور شروع شد؟", "fa"),
        ("مصاحبه‌گر: چطور شروع شد؟ We used SAP.", "fa"),
        ("We talked about تأمین اجتماعی for an hour, mostly in English.", "en"),
        ("١٢٣ 123 ...", "en"),
        ("", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "languages"


@pytest.mark.parametrize("name", ["de01", "en01", "fa01", "fr01", "ru01", "zh01"])
def test_detect_language_of_a_transcript(name: str) -> None:
    # the file name says the language; the speaker labels are English or Persian in every file
    assert detect_language((FIXTURES / f"{name}.txt").read_text(encoding="utf-8")) == name[:2]


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Das Treffen war gut, aber wir hatten zu wenig Zeit für die wichtigen Fragen.", "de"),
        ("Nous avons eu trop peu de temps pour les questions importantes.", "fr"),
        ("Tuvimos muy poco tiempo para las preguntas importantes de la reunión.", "es"),
        ("Abbiamo avuto troppo poco tempo per le domande importanti della riunione.", "it"),
        ("Tivemos muito pouco tempo para as perguntas importantes da reunião.", "pt"),
        ("We hadden te weinig tijd voor de belangrijke vragen in de vergadering.", "nl"),
        ("Toplantıda önemli sorular için çok az zamanımız vardı.", "tr"),
        ("У нас было слишком мало времени для важных вопросов.", "ru"),
        ("كان لدينا وقت قليل جدا للأسئلة المهمة في الاجتماع.", "ar"),
        ("ہمارے پاس اہم سوالات کے لیے بہت کم وقت تھا۔", "ur"),
        ("会議では大切な質問のための時間がほとんどありませんでした。", "ja"),
        ("회의에서 중요한 질문을 할 시간이 거의 없었습니다.", "ko"),
        ("Είχαμε πολύ λίγο χρόνο για τις σημαντικές ερωτήσεις.", "el"),
        ("היה לנו מעט מאוד זמן לשאלות החשובות.", "he"),
        ("हमारे पास महत्वपूर्ण सवालों के लिए बहुत कम समय था।", "hi"),
        ("เรามีเวลาน้อยมากสำหรับคำถามสำคัญ", "th"),
        # short, or mixed with no script in the majority: English when unsure
        ("Ja, sehr.", "en"),
        ("Oui, bien sûr.", "en"),
        ("We discussed 会議 and وقت briefly.", "en"),
    ],
)
def test_detect_language_beyond_english_and_persian(text: str, language: str) -> None:
    assert detect_language(text) == language
