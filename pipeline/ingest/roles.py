"""Who asks and who answers: assign ``Turn.role`` to every turn of a transcript."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import cast

from pipeline.domain import Role, Turn
from pipeline.text import normalize

# compared after _label_key: casefolded, ZWNJ and spaces removed, trailing digits/punctuation dropped
# a therapy or counselling session (AnnoMI's "therapist" / "client") is an interview for this purpose
INTERVIEWER_LABELS: frozenset[str] = frozenset(
    {
        "interviewer",
        "int",
        "i",
        "q",
        "moderator",
        "facilitator",
        "researcher",
        "therapist",
        "counselor",
        "counsellor",
        "مصاحبهگر",
        "مصاحبهکننده",
        "پژوهشگر",
        "محقق",
    }
)
PARTICIPANT_LABELS: frozenset[str] = frozenset(
    {
        "participant",
        "respondent",
        "interviewee",
        "informant",
        "expert",
        "client",
        "patient",
        "p",
        "a",
        "r",
        "مصاحبهشونده",
        "شرکتکننده",
        "پاسخگو",
        "کارشناس",
    }
)
_TRAILING_RE = re.compile(r"[\d\W_]+$")
QUESTION_MARKS = ("?", "؟", "？")


def _label_key(speaker: str) -> str:
    """``"Interviewer 2"`` -> ``"interviewer"``, ``"P01"`` -> ``"p"``, ``"مصاحبه‌گر"`` -> ``"مصاحبهگر"``."""
    key = normalize(speaker).casefold().replace("\u200c", "").replace(" ", "")
    return _TRAILING_RE.sub("", key)


def assign_roles(
    turns: Sequence[Turn], text: str, interviewer_names: Sequence[str] | None = None
) -> tuple[Turn, ...]:
    """Return ``turns`` with ``role`` set, by these rules in order.

    1. Speaker ``""`` (not known) -> ``"unknown"``.
    2. If ``interviewer_names`` is given and not empty: speakers equal to one of them (case-insensitive,
       after :func:`pipeline.text.normalize`) -> ``"interviewer"``, every other speaker ->
       ``"participant"``.
    3. Otherwise common labels decide (ignoring case, spaces/ZWNJ and a trailing number, so
       ``"Interviewer 2"`` and ``"P01"`` count): ``Interviewer, Int, I, Q, Moderator, Facilitator,
       Researcher, Therapist, Counselor/Counsellor, مصاحبه‌گر, مصاحبه کننده, پژوهشگر, محقق`` ->
       ``"interviewer"``; ``Participant, Respondent, Interviewee, Informant, Expert, Client, Patient,
       P, A, R, مصاحبه‌شونده, شرکت‌کننده, پاسخگو, کارشناس`` -> ``"participant"``. If some speaker is an interviewer by label, all other speakers
       are participants.
    4. Otherwise, with at least 2 named speakers, the question rule: among the speakers not already
       participants by label, the one with the highest question rate ``q / (n + 1)`` is the
       interviewer, where ``n`` is the speaker's number of turns and ``q`` the number of those that
       contain ``?`` or ``؟`` (the ``+ 1`` keeps one stray "Sorry?" from outweighing many questions);
       ties go to the speaker with more questions, then to the one who spoke first. Everyone else is a
       participant. When nobody asks a question, or there is a single named speaker, all named speakers
       are participants.

    Parameters
    ----------
    turns : sequence of Turn, length n_turns
        Turns of one transcript, in order.
    text : str
        The transcript's stored text (``text[turn.start:turn.end]`` are the words).
    interviewer_names : sequence of str, optional
        Names of the interviewers as they appear in speaker labels.

    Returns
    -------
    tuple of Turn, length n_turns
        The same turns with ``role`` set.

    Examples
    --------
    >>> text = "Who are you?Ali.Why?Because."
    >>> turns = [Turn("Sara", 0, 12), Turn("Ali", 12, 16), Turn("Sara", 16, 20), Turn("Ali", 20, 28)]
    >>> [t.role for t in assign_roles(turns, text)]
    ['interviewer', 'participant', 'interviewer', 'participant']
    >>> [t.role for t in assign_roles(turns, text, interviewer_names=["ali"])]
    ['participant', 'interviewer', 'participant', 'interviewer']
    """
    speakers = list(dict.fromkeys(t.speaker for t in turns if t.speaker))
    roles: dict[str, Role] = {}
    if interviewer_names:
        wanted = {normalize(n).casefold() for n in interviewer_names}
        roles = {s: "interviewer" if normalize(s).casefold() in wanted else "participant" for s in speakers}
    else:
        for s in speakers:
            key = _label_key(s)
            if key in INTERVIEWER_LABELS:
                roles[s] = "interviewer"
            elif key in PARTICIPANT_LABELS:
                roles[s] = "participant"
        if "interviewer" in roles.values():
            roles = {s: roles.get(s, "participant") for s in speakers}
        else:
            undecided = [s for s in speakers if s not in roles]
            asker = _most_questions(turns, text, undecided) if len(speakers) >= 2 else None
            roles = {s: roles.get(s, "interviewer" if s == asker else "participant") for s in speakers}
    return tuple(replace(t, role=roles[t.speaker] if t.speaker else "unknown") for t in turns)


def guessed_interviewers(turns: Sequence[Turn], interviewer_names: Sequence[str] | None = None) -> list[str]:
    """The speakers of ``turns`` (roles assigned by :func:`assign_roles`) that are interviewers by the
    question rule alone: not named in ``interviewer_names`` nor by a known interviewer label. Empty
    when ``interviewer_names`` is set or some speaker has an interviewer label.

    >>> text = "Why?Because.Really?Yes."
    >>> turns = [Turn("Question", 0, 4), Turn("Answer", 4, 12), Turn("Question", 12, 19), Turn("Answer", 19, 23)]
    >>> guessed_interviewers(assign_roles(turns, text))
    ['Question']
    >>> guessed_interviewers(assign_roles([Turn("Q", 0, 4), Turn("Answer", 4, 12)], text))
    []
    """
    if interviewer_names or any(_label_key(t.speaker) in INTERVIEWER_LABELS for t in turns if t.speaker):
        return []
    return list(dict.fromkeys(t.speaker for t in turns if t.speaker and t.role == "interviewer"))


def _most_questions(turns: Sequence[Turn], text: str, candidates: list[str]) -> str | None:
    """The candidate with the highest question rate ``q / (n + 1)``, or ``None`` when nobody asks."""
    asked = dict.fromkeys(candidates, 0)
    spoke = dict.fromkeys(candidates, 0)
    for t in turns:
        if t.speaker in spoke:
            spoke[t.speaker] += 1
            words = text[t.start : t.end]
            asked[t.speaker] += any(m in words for m in QUESTION_MARKS)
    ranked = sorted(candidates, key=lambda s: (-asked[s] / (spoke[s] + 1), -asked[s], candidates.index(s)))
    return ranked[0] if ranked and asked[ranked[0]] else None


def apply_role_overrides(turns: Iterable[Turn], overrides: Mapping[str, str] | None) -> list[Turn]:
    """``turns`` with the role of every speaker named in ``overrides`` replaced (a lead's correction,
    kept for later versions of the source).

    >>> apply_role_overrides([Turn("Ali", 0, 3, "participant")], {"Ali": "interviewer"})[0].role
    'interviewer'
    """
    if not overrides:
        return list(turns)
    return [
        Turn(t.speaker, t.start, t.end, cast(Role, overrides.get(t.speaker, t.role)), t.timestamp)
        for t in turns
    ]
