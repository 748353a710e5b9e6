"""Carrying coded spans through an edit (pipeline.textdiff): exact offsets, and properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.textdiff import SpanMap, aligned_blocks

OLD = "Interviewer: Why was the rollout slow?\nMina: The budget was cut twice. We had no staff.\n"
BUDGET = (45, 63)  # "The budget was cut"
STAFF = (71, 86)  # "We had no staff"


def test_offsets_shift_after_an_edit_before_and_stay_after_an_edit_after() -> None:
    assert OLD[slice(*BUDGET)] == "The budget was cut" and OLD[slice(*STAFF)] == "We had no staff"
    before = SpanMap(OLD, OLD.replace("rollout slow", "roll-out so slow"))
    assert before.map(*BUDGET) == (49, 67) and before.map(*STAFF) == (75, 90)
    after = SpanMap(OLD, OLD.replace("staff.", "staff!"))  # right after the span's end
    assert after.map(*BUDGET) == BUDGET and after.map(*STAFF) == STAFF
    assert SpanMap(OLD, OLD).map(*STAFF) == STAFF


def test_an_edit_inside_a_span_keeps_it_back() -> None:
    inside = SpanMap(OLD, OLD.replace("budget was", "budget has been"))
    assert inside.map(*BUDGET) is None
    assert inside.map(*STAFF) == (76, 91)
    assert SpanMap(OLD, OLD.replace("The budget", "Our budget")).map(*BUDGET) is None  # its first word
    assert SpanMap(OLD, OLD.replace("no staff", "no  staff")).map(*STAFF) is None  # one space more


def test_lines_moved_and_text_gone() -> None:
    old = "A: one two.\nB: three four.\nA: five six.\n"
    new = "A: five six.\nA: one two.\nB: three four.\n"  # the last turn moved to the top
    m = SpanMap(old, new)
    assert m.map(3, 11) == (16, 24)  # "one two." found at its new place
    assert SpanMap(old, "").map(3, 11) is None
    assert aligned_blocks("", "abc") == [] and SpanMap("", "abc").map(0, 0) is None


# --- properties: one edit, with characters the text does not contain (so the alignment is unique) ---

WORDS = st.text(alphabet="abcdefgh ", min_size=1, max_size=12)
TEXTS = st.lists(WORDS, min_size=1, max_size=8, unique=True).map("\n".join)
INSERTS = st.text(alphabet="QXZ", min_size=1, max_size=6)  # none of them is in TEXTS


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, str, int, int, int, int]:
    """(old, new, p, q, span start, span end): ``old[p:q]`` replaced by new characters."""
    old = draw(TEXTS)
    p = draw(st.integers(0, len(old)))
    q = draw(st.integers(p, min(len(old), p + 5)))
    new = old[:p] + draw(INSERTS) + old[q:]
    s = draw(st.integers(0, max(0, len(old) - 1)))
    e = draw(st.integers(s + 1, len(old))) if old else 1
    return old, new, p, q, s, e


@given(edits())
@settings(max_examples=300, deadline=None)
def test_property_spans_outside_the_edit_move_exactly_and_inside_stay(
    case: tuple[str, str, int, int, int, int],
) -> None:
    old, new, p, q, s, e = case
    got = SpanMap(old, new).map(s, e)
    if got is not None:
        assert new[got[0] : got[1]] == old[s:e]
    delta = len(new) - len(old)
    if e <= p:
        assert got == (s, e)
    elif s >= q:
        assert got == (s + delta, e + delta)
    else:  # the span takes in the edit: its text changed
        assert got is None


@given(st.text(max_size=60), st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_property_any_two_texts_give_equal_runs(old: str, new: str) -> None:
    blocks = aligned_blocks(old, new)
    last_a = last_b = 0
    for a, b, n in blocks:
        assert n > 0 and a >= last_a and b >= last_b and old[a : a + n] == new[b : b + n]
        last_a, last_b = a + n, b + n
    if old == new and old:
        assert blocks == [(0, 0, len(old))]


LINE_INSERTS = st.text(alphabet="QXZ\n", min_size=1, max_size=8).filter(lambda s: s[0] != "\n" != s[-1])


@given(TEXTS, st.data())
@settings(max_examples=200, deadline=None)
def test_property_new_lines_in_the_edit_keep_spans_outside_exact(old: str, data: st.DataObject) -> None:
    p = data.draw(st.integers(0, len(old)))
    q = data.draw(st.integers(p, min(len(old), p + 5)))
    new = old[:p] + data.draw(LINE_INSERTS) + old[q:]
    m = SpanMap(old, new)
    delta = len(new) - len(old)
    for s in range(len(old)):
        for e in range(s + 1, len(old) + 1):
            got = m.map(s, e)
            if e <= p:
                assert got == (s, e)
            elif s >= q:
                assert got == (s + delta, e + delta)


def test_a_long_interview_with_typos_fixed_in_several_places() -> None:
    turns = [
        f"{'Interviewer' if i % 2 else 'Mina'}: turn {i} says {'words ' * (i % 7 + 3)}." for i in range(3000)
    ]
    old = "\n".join(turns)
    new = old.replace("turn 10 says", "turn 10 sayz").replace("turn 2500 says", "turn 2500 has said")
    m = SpanMap(old, new)
    s = old.index("turn 2000 ")
    assert m.map(s, s + 9) == (s, s + 9)  # between the fixes: the first one kept its length
    s = old.index("turn 2999 ")
    assert m.map(s, s + 9) == (s + 4, s + 13)  # "has said" is 4 characters longer than "says"
    s = old.index("turn 10 says")
    assert m.map(s, s + 12) is None


def test_every_line_edited_is_aligned_by_words() -> None:
    old = "\n".join(f"P{i}: the budget {i} was cut." for i in range(400))
    new = old.replace(" was cut", " was cut again")  # every line changed: one long changed region
    m = SpanMap(old, new)
    s = old.index("P300: the budget 300")
    assert m.map(s, s + 20) == (s + 300 * 6, s + 300 * 6 + 20)  # " again" is 6 characters
    assert m.map(s, old.index("\n", s)) is None  # "... was cut." lost its ending
    assert SpanMap(old, old.upper()).map(s, s + 4) == (s, s + 4)  # "P300" is the same in capitals
    assert SpanMap(old, old.upper()).map(s + 6, s + 16) is None  # "the budget" is not
    assert SpanMap(old, old[::-1]).map(s, s + 20) is None
