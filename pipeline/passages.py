"""Passages from per-segment suggestions: adjacent segments whose best code agrees become one suggestion.

Coders code passages, not sentences (issue #14). After a suggester has ranked the codes of every
segment, :func:`merge_passages` joins runs of consecutive segments of one speaker turn whose rank-1
code is the same into one suggestion spanning them, so that the review queue shows what a coder would
highlight and one decision covers it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

Position = tuple[Hashable, int]
"""Where a segment sits: (its turn: any key equal for the segments of one turn of one source, its
index in the source's segment order). ``None`` instead of a position: the segment is never merged."""


@dataclass(frozen=True)
class PassagePick:
    """One suggestion to queue: code column ``code`` on the corpus rows ``rows`` (consecutive; one row
    for an ordinary per-segment suggestion), with its ``score`` and ``rank`` (1 = the best code)."""

    rows: tuple[int, ...]
    code: int
    score: float
    rank: int


def merge_passages(
    picks: Sequence[Sequence[tuple[int, float]]],
    positions: Sequence[Position | None],
    *,
    max_segments: int = 5,
    mergeable: Callable[[int, int], bool] | None = None,
) -> list[PassagePick]:
    """Per-segment ranked picks as suggestions, runs of agreeing rank-1 codes merged into passages.

    Rules:

    - a run is consecutive segments (index ``+1``) of the same turn (``positions``: same turn key),
      each with the same rank-1 code; an interviewer turn between two answers, a segment whose best
      code differs, a segment where the model abstains, or one that ``mergeable(row, code)`` refuses
      (a code humans already gave it, or one already decided or queued) ends the run;
    - a run is cut after ``max_segments`` segments (a long answer becomes several passages, not one);
    - the merged suggestion keeps the code, rank 1, and the **maximum** of the members' scores: every
      member already passed the code's threshold, and the passage is suggested for its strongest
      sentence (a mean would rank a passage below the single sentence that carries the code best);
    - the members' rank-2 and rank-3 codes stay ordinary per-segment suggestions with their ranks
      (they always differ from the merged code: a segment's picks name each code once).

    Returns the picks ordered by first row, then rank.

    >>> P = [[(0, 0.9)], [(0, 0.7), (1, 0.6)], [(1, 0.8)], [(1, 0.5)], []]
    >>> pos = [("t1", 0), ("t1", 1), ("t1", 2), ("t2", 4), ("t2", 5)]
    >>> [(p.rows, p.code, p.score, p.rank) for p in merge_passages(P, pos)]
    [((0, 1), 0, 0.9, 1), ((1,), 1, 0.6, 2), ((2,), 1, 0.8, 1), ((3,), 1, 0.5, 1)]
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    out: list[PassagePick] = []
    run: list[int] = []

    def close() -> None:
        if run:
            code = picks[run[0]][0][0]
            out.append(PassagePick(tuple(run), code, max(picks[i][0][1] for i in run), 1))
            run.clear()

    for i, ranked in enumerate(picks):
        if not ranked:
            close()
            continue
        code = ranked[0][0]
        pos = positions[i] if i < len(positions) else None
        ok = pos is not None and (mergeable is None or mergeable(i, code))
        if run:
            last = run[-1]
            prev = positions[last]
            same = (
                ok
                and prev is not None
                and pos is not None
                and prev[0] == pos[0]
                and pos[1] == prev[1] + 1
                and picks[last][0][0] == code
                and len(run) < max_segments
            )
            if not same:
                close()
        if ok:
            run.append(i)
        else:
            out.append(PassagePick((i,), code, ranked[0][1], 1))
        for rank, (ci, score) in enumerate(ranked[1:], start=2):
            out.append(PassagePick((i,), ci, score, rank))
    close()
    out.sort(key=lambda p: (p.rows[0], p.rank))
    return out
