"""Paradigm model fill, exemplar choice, and the suggestion functions."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.domain import Code, Codebook, Coding
from pipeline.errors import InputError
from pipeline.paradigm import (
    UNASSIGNED,
    build_paradigm,
    effective_dimension,
    plot_paradigm,
    suggest_categories,
    suggest_dimensions,
)

CODEBOOK = Codebook(
    [
        Code("governance", dimension="phenomenon", is_codable=False),
        Code("joint decisions", parent="governance"),
        Code("funding cuts", dimension="causal"),
        Code("brokering", dimension="strategy"),
        Code("trust", parent="brokering", dimension="intervening"),  # own dimension wins over parent's
        Code("deep child", parent="trust"),  # inherits intervening from trust (nearest ancestor)
        Code("loose end"),  # no dimension anywhere -> unassigned
    ]
)

LONG = " ".join(["word"] * 12)  # 12 words: within the moderate band (8-60)
TEXTS = {
    "i1": "We decide together. " + LONG + " The money went away.",
    "i2": "Short bit. Another short bit here. We decide everything jointly in the network board every month.",
}


def _c(src: str, start: int, end: int, code: str, coder: str = "ana") -> Coding:
    return Coding(src, start, end, code, coder)


CODINGS = [
    _c("i1", 0, 19, "joint decisions"),  # "We decide together." (3 words)
    _c("i1", 20, 20 + len(LONG), "joint decisions"),  # 12 words, moderate
    _c("i2", 35, 97, "joint decisions"),  # 10 words, other interview
    _c("i1", 20 + len(LONG) + 1, len(TEXTS["i1"]), "funding cuts"),
    _c("i2", 0, 10, "deep child"),
    _c("i2", 11, 34, "trust"),
]


def test_effective_dimension() -> None:
    assert effective_dimension(CODEBOOK, "joint decisions") == ("phenomenon", True)
    assert effective_dimension(CODEBOOK, "trust") == ("intervening", False)
    assert effective_dimension(CODEBOOK, "deep child") == ("intervening", True)
    assert effective_dimension(CODEBOOK, "loose end") == (UNASSIGNED, True)
    with pytest.raises(InputError, match="code 'nope' is not in the codebook"):
        effective_dimension(CODEBOOK, "nope")


def test_fill_exact() -> None:
    m = build_paradigm(CODEBOOK, CODINGS, TEXTS)
    table = {
        d: [(e.code, e.frequency, e.interviews, e.is_category) for e in es]
        for d, es in m.entries.items()
        if es
    }
    assert table == {
        # governance rolls up its child's 3 codings from 2 interviews
        "phenomenon": [("governance", 3, 2, True), ("joint decisions", 3, 2, False)],
        "causal": [("funding cuts", 1, 1, False)],
        # brokering rolls up trust and deep child (all descendants, whatever their dimension)
        "strategy": [("brokering", 2, 1, True)],
        "intervening": [("trust", 2, 1, True), ("deep child", 1, 1, False)],
        UNASSIGNED: [("loose end", 0, 0, False)],
    }
    assert [e.code for e in m.heads("intervening")] == ["trust"]
    assert [e.code for e in m.children(m.entries["intervening"][0])] == ["deep child"]


def test_exemplars_moderate_length_then_other_interview() -> None:
    m = build_paradigm(CODEBOOK, CODINGS, TEXTS)
    joint = m.entries["phenomenon"][1]
    # both 12-word quotes are in the band; the first by (longest, source) is i1's; the second must come
    # from another interview (i2) rather than i1's 3-word quote
    assert [(q.source, q.text) for q in joint.exemplars] == [
        ("i1", LONG),
        ("i2", "We decide everything jointly in the network board every month."),
    ]
    assert m.entries[UNASSIGNED][0].exemplars == []


def test_exemplars_nearest_centroid_with_vectors() -> None:
    vec = {
        CODINGS[0]: np.array([1.0, 0.0]),
        CODINGS[1]: np.array([0.0, 1.0]),
        CODINGS[2]: np.array([0.9, 0.1]),
    }
    m = build_paradigm(CODEBOOK, CODINGS, TEXTS, coding_vectors=vec)
    joint = m.entries["phenomenon"][1]
    # centroid ~ (0.63, 0.37) normalised: nearest is CODINGS[2] (i2), then CODINGS[0] (i1)
    assert [q.source for q in joint.exemplars] == ["i2", "i1"]
    assert joint.exemplars[1].text == "We decide together."


def test_bad_input() -> None:
    with pytest.raises(InputError, match="uses code 'ghost', which is not in the codebook"):
        build_paradigm(CODEBOOK, [_c("i1", 0, 2, "ghost")], TEXTS)
    with pytest.raises(InputError, match="source 'i7', which has no text"):
        build_paradigm(CODEBOOK, [_c("i7", 0, 2, "trust")], TEXTS)
    bad = Codebook([Code("a", dimension="cause")])
    with pytest.raises(InputError, match="code 'a' has dimension 'cause'; choose one of"):
        build_paradigm(bad, [], TEXTS)


def test_suggest_categories() -> None:
    names = ["a1", "a2", "b1", "b2", "loner"]
    X = np.array([[1, 0, 0], [0.95, 0.05, 0], [0, 1, 0], [0.05, 0.95, 0], [0, 0, 1]])
    s = suggest_categories(names, X, distance_threshold=0.3)
    assert sorted(sorted(x.members) for x in s) == [["a1", "a2"], ["b1", "b2"]]
    assert all(0.99 < x.cohesion <= 1.0 for x in s)
    assert suggest_categories(["only"], X[:1]) == []
    with pytest.raises(InputError, match="do not match 2 code names"):
        suggest_categories(["a", "b"], X)


def test_suggest_dimensions() -> None:
    emb = {
        "joint decisions": np.array([1.0, 0.0, 0.0]),
        "funding cuts": np.array([0.0, 1.0, 0.0]),
        "trust": np.array([0.0, 0.0, 1.0]),
        "loose end": np.array([0.1, 0.9, 0.2]),
    }
    (s,) = suggest_dimensions(CODEBOOK, emb)
    assert (s.code, s.dimension, s.runner_up) == ("loose end", "causal", "intervening")
    assert s.similarity == pytest.approx(0.9 / np.linalg.norm([0.1, 0.9, 0.2]))
    assert suggest_dimensions(CODEBOOK, {}) == []


def test_diagram_png() -> None:
    png = plot_paradigm(build_paradigm(CODEBOOK, CODINGS, TEXTS), title="Test")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_exemplars_prefer_consensus_and_codings_two_coders_share() -> None:
    texts = {"i1": "Short bit here. " + LONG, "i2": "Tiny one. " + LONG}
    lone = Coding("i1", 16, 16 + len(LONG), "funding cuts", "ana")  # 12 words: best by length, one coder
    shared = [_c("i2", 0, 9, "funding cuts", "ana"), _c("i2", 0, 9, "funding cuts", "ben")]
    consensus = Coding("i1", 0, 15, "funding cuts", "consensus", origin="consensus")
    m = build_paradigm(CODEBOOK, [lone, *shared, consensus], texts)
    cuts = m.entries["causal"][0]
    # the consensus's and the two coders' passages first (each tier by length), the lone one not at all
    assert [(q.source, q.text) for q in cuts.exemplars] == [("i1", "Short bit here."), ("i2", "Tiny one.")]
    alone = build_paradigm(CODEBOOK, [lone, shared[0]], texts).entries["causal"][0]
    assert [q.source for q in alone.exemplars] == ["i1", "i2"]  # no one corroborated: by length
