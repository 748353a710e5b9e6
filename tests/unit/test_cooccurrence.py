"""Co-occurrence counts, Jaccard and association strength on a 5-segment fixture."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cooccurrence import (
    association_strength,
    cooccurrence,
    cooccurrence_counts,
    jaccard,
    plot_heatmap,
    plot_network,
    presence_matrix,
)
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError

CODES = ["x", "y", "z"]
# segment: source  codes
#   s0      A      x y
#   s1      A        y
#   s2      A        y z
#   s3      B      x   z
#   s4      B      x
X = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 0, 1], [1, 0, 0]], dtype=bool)
SOURCES = ["A", "A", "A", "B", "B"]


def test_counts_per_segment() -> None:
    C, n = cooccurrence_counts(X)
    assert n == 5
    # x in s0,s3,s4 (3); y in s0,s1,s2 (3); z in s2,s3 (2); xy: s0; xz: s3; yz: s2
    assert C.tolist() == [[3, 1, 1], [1, 3, 1], [1, 1, 2]]


def test_jaccard_and_association() -> None:
    C, n = cooccurrence_counts(X)
    J = jaccard(C)
    # xy: 1 / (3 + 3 - 1) = 0.2 ; xz and yz: 1 / (3 + 2 - 1) = 0.25
    assert np.allclose(J, [[1, 0.2, 0.25], [0.2, 1, 0.25], [0.25, 0.25, 1]])
    A = association_strength(C, n)
    # n C_ij / (s_i s_j): xy 5*1/9, xz 5*1/6, yz 5*1/6
    assert np.allclose(A, [[0, 5 / 9, 5 / 6], [5 / 9, 0, 5 / 6], [5 / 6, 5 / 6, 0]])


def test_window_stays_within_source() -> None:
    # units: A[s0,s1] = {x,y}; A[s1,s2] = {y,z}; B[s3,s4] = {x,z}
    C, n = cooccurrence_counts(X, sources=SOURCES, window=2)
    assert n == 3
    assert C.tolist() == [[2, 1, 1], [1, 2, 1], [1, 1, 2]]
    # window 3: A[s0..s2] = {x,y,z}; B (2 segments < 3) = {x,z}
    C, n = cooccurrence_counts(X, sources=SOURCES, window=3)
    assert n == 2 and C.tolist() == [[2, 1, 2], [1, 1, 1], [2, 1, 2]]


def test_unused_code_gives_zeros() -> None:
    C, n = cooccurrence_counts(np.zeros((2, 2), dtype=bool))
    assert jaccard(C).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert association_strength(C, n).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def _segments() -> list[Segment]:
    texts = {"A": "aaaa bbbb cccc", "B": "dddd eeee"}
    segs = []
    for src, text in texts.items():
        pos = 0
        for k, word in enumerate(text.split(" ")):
            start = text.index(word, pos)
            segs.append(Segment(src, k, start, start + len(word), word))
            pos = start + len(word)
    return segs


def test_from_codings_by_offset_overlap() -> None:
    segs = _segments()
    codings = [
        Coding("A", 0, 9, "y", "ana"),  # spans s0 and s1 ("aaaa bbbb")
        Coding("A", 1, 3, "x", "ana"),  # inside s0
        Coding("A", 10, 14, "y", "ana"),
        Coding("A", 10, 12, "z", "bo"),
        Coding("B", 0, 4, "x", "ana"),
        Coding("B", 2, 4, "z", "ana"),
        Coding("B", 5, 9, "x", "ana"),
        Coding("B", 4, 5, "other", "ana"),  # not in CODES: ignored
    ]
    assert presence_matrix(segs, codings, CODES).tolist() == X.tolist()
    res = cooccurrence(list(reversed(segs)), codings, CODES, window=1)
    # units per coder: ana's 5 segments (A and B) and bo's 3 (A); bo's z beside ana's y in A's third
    # segment is not a co-occurrence (no one coder applied both)
    assert res.counts.tolist() == [[3, 1, 1], [1, 3, 0], [1, 0, 2]] and res.n_units == 8
    assert np.isclose(res.jaccard[0, 1], 0.2)


def test_two_coders_labelling_one_sentence_differently_do_not_cooccur() -> None:
    segs = [Segment("i1", 0, 0, 9, "too dear."), Segment("i1", 1, 10, 19, "no trust.")]
    codings = [
        Coding("i1", 0, 9, "cost", "ann"),
        Coding("i1", 0, 9, "trust", "ben"),
        Coding("i1", 10, 19, "cost", "ann"),
        Coding("i1", 10, 19, "trust", "ann"),
    ]
    res = cooccurrence(segs, codings, ["cost", "trust"])
    assert res.counts.tolist() == [[2, 1], [1, 2]] and res.n_units == 4
    res2 = cooccurrence(segs, codings, ["cost", "trust"], window=2)  # one window per coder
    assert res2.counts.tolist() == [[1, 1], [1, 2]] and res2.n_units == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 2}, "a window > 1 needs the source of each segment"),
        ({"window": 0, "sources": SOURCES}, "window must be an integer >= 1, got 0"),
        ({"sources": ["A"]}, "1 source names for 5 segments"),
        ({"window": 2, "sources": ["A", "B", "A", "B", "B"]}, "segments of source 'A' are not contiguous"),
    ],
)
def test_bad_input(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        cooccurrence_counts(X, **kwargs)  # type: ignore[arg-type]


def test_plots_are_png() -> None:
    C, _ = cooccurrence_counts(X)
    for png in (plot_heatmap(C, CODES), plot_network(C, CODES, sizes=[3, 3, 2])):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="does not match 2 labels"):
        plot_heatmap(C, ["x", "y"])


@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_counts_through_float_blas_equal_integer_counts(window: int) -> None:
    """The float product (for BLAS) and the vectorised windows give the integer counts of the plain
    definition: per window of consecutive segments of one source, which codes appear together."""
    from pipeline.cooccurrence import window_units

    rng = np.random.default_rng(window)
    X = rng.random((400, 12)) < 0.2
    sources = [f"s{i}" for i in sorted(rng.integers(0, 30, size=400))]
    U = np.array([X[idx].any(axis=0) for idx in window_units(sources, window)]).astype(np.int64)
    C, n = cooccurrence_counts(X, sources=sources, window=window)
    assert C.dtype == np.int64 and n == U.shape[0]
    np.testing.assert_array_equal(C, U.T @ U)
    C1, n1 = cooccurrence_counts(X)
    np.testing.assert_array_equal(C1, X.astype(np.int64).T @ X.astype(np.int64))


def test_the_consensus_counts_only_the_units_it_settled() -> None:
    segs = [Segment("i1", k, 10 * k, 10 * k + 9, "x" * 9) for k in range(4)]
    codings = [
        Coding("i1", 0, 9, "cost", "ann"),
        Coding("i1", 20, 29, "trust", "ann"),
        Coding("i1", 10, 19, "cost", "consensus", origin="consensus"),
        Coding("i1", 10, 19, "trust", "consensus", origin="consensus"),
    ]
    res = cooccurrence(segs, codings, ["cost", "trust"], partial_coders={"consensus"})
    # ann's 4 segments and the consensus's one settled segment
    assert res.counts.tolist() == [[2, 1], [1, 2]] and res.n_units == 5
    res2 = cooccurrence(segs, codings, ["cost", "trust"], window=2, partial_coders={"consensus"})
    # ann's 3 windows (cost in the first, trust in the last two, never both); the consensus's 2 windows
    # holding segment 1, each with cost and trust
    assert res2.counts.tolist() == [[3, 2], [2, 4]] and res2.n_units == 5
    assert cooccurrence(segs, codings, ["cost", "trust"]).n_units == 8
