"""Thematic saturation: new codes per interview, the cumulative curve, and the assessment of
Guest, Namey & Chen (2020).

Reference
---------
Guest G, Namey E, Chen M (2020). A simple method to assess and report thematic saturation in
qualitative research. PLOS ONE 15(5): e0232076. doi:10.1371/journal.pone.0232076

The rule, as implemented here (see ``docs/analysis.md``)
---------------------------------------------------------
Interviews are taken in their order of collection (:func:`order_interviews`).

* **Base size** ``b``: the first ``b`` interviews. The number of *unique* codes they contain is the
  denominator of every ratio; the base does not grow as later interviews are added.
* **Run length** ``r``: a window of ``r`` consecutive interviews after the base. The first run is
  interviews ``b+1 .. b+r``; when it does not meet the threshold, the run moves forward by **one**
  interview (``b+2 .. b+r+1``, ...), so runs overlap.
* **New information** of a run: the number of codes first seen in the run's interviews (codes not in
  any earlier interview) divided by the number of unique codes in the base.
* **Threshold** ``t``: saturation is reached at the first run whose new information is ``<= t``
  (the paper's "≤5%"; ``t = 0`` is the paper's stricter "no new information" variant).
* **Reporting**: the saturation point is the last interview *before* that run: the run is the
  evidence that the interviews up to the point were enough. It is stated as "saturation at N
  interviews (base 4, run 2, new-information threshold ≤5%)", followed by the confirming run.

If there are fewer than ``b + r`` interviews, or the base holds no code, saturation cannot be
assessed and the result says so (``reached`` is ``False``, ``point`` is ``None``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pipeline.domain import Coding
from pipeline.errors import InputError
from pipeline.text import counted

__all__ = [
    "SaturationResult",
    "SaturationRun",
    "assess_saturation",
    "order_interviews",
    "plot_saturation",
    "saturation_from_code_sets",
]


@dataclass(frozen=True)
class SaturationRun:
    """One run of ``run_length`` consecutive interviews after the base.

    ``start``/``end`` are 1-based interview positions (inclusive); ``ratio`` is
    ``new_codes / base_codes``.
    """

    start: int
    end: int
    interviews: tuple[str, ...]
    new_codes: int
    ratio: float
    meets_threshold: bool


@dataclass(frozen=True)
class SaturationResult:
    """The saturation assessment of one set of codings.

    Attributes
    ----------
    interviews : list of str, length n_interviews
        Interview (source) names in the order assessed.
    new_codes : list of int, length n_interviews
        Number of codes first seen in each interview.
    new_code_names : list of list of str
        Those codes, sorted, per interview.
    cumulative : list of int, length n_interviews
        Number of distinct codes seen up to and including each interview.
    base_size, run_length, threshold
        The parameters used.
    base_codes : int
        Unique codes in the base (the denominator of every ratio); 0 when there are fewer
        interviews than ``base_size``.
    runs : list of SaturationRun
        Every run evaluated, in order, up to and including the first that meets the threshold.
    reached : bool
        Whether a run met the threshold.
    point : int or None
        Saturation point as a 1-based interview count (the last interview before the first run
        meeting the threshold), ``None`` when not reached.
    point_name : str or None
        Name of the interview at ``point``.
    statement : str
        One line for a report.
    """

    interviews: list[str]
    new_codes: list[int]
    new_code_names: list[list[str]]
    cumulative: list[int]
    base_size: int
    run_length: int
    threshold: float
    base_codes: int
    runs: list[SaturationRun]
    reached: bool
    point: int | None
    point_name: str | None
    statement: str

    @property
    def confirming_run(self) -> SaturationRun | None:
        """The first run meeting the threshold (``None`` when not reached)."""
        return self.runs[-1] if self.reached else None


def _check_params(base_size: int, run_length: int, threshold: float) -> None:
    if isinstance(base_size, bool) or not isinstance(base_size, int) or base_size < 1:
        raise InputError(f"saturation base_size must be an integer >= 1, got {base_size!r}")
    if isinstance(run_length, bool) or not isinstance(run_length, int) or run_length < 1:
        raise InputError(f"saturation run_length must be an integer >= 1, got {run_length!r}")
    if not 0.0 <= float(threshold) < 1.0:
        raise InputError(
            f"saturation threshold is a proportion in [0, 1), got {threshold!r} (write 5% as 0.05)"
        )


def _params_text(base_size: int, run_length: int, threshold: float) -> str:
    return f"base {base_size}, run {run_length}, new-information threshold ≤{threshold * 100:g}%"


def saturation_from_code_sets(
    code_sets: Sequence[tuple[str, Collection[str]]],
    *,
    base_size: int = 4,
    run_length: int = 2,
    threshold: float = 0.05,
) -> SaturationResult:
    """Assess saturation from the codes found in each interview, in order.

    Parameters
    ----------
    code_sets : sequence of (interview name, collection of code names)
        One entry per interview, in the order of collection. An interview may have no code.
    base_size, run_length : int
        Guest et al.'s base size and run length (defaults 4 and 2).
    threshold : float
        New-information threshold as a proportion (default 0.05, i.e. ≤5%).

    Returns
    -------
    SaturationResult

    Examples
    --------
    >>> r = saturation_from_code_sets(
    ...     [("i1", "ab"), ("i2", "bc"), ("i3", "d"), ("i4", ""), ("i5", "e"), ("i6", ""), ("i7", "")]
    ... )
    >>> r.new_codes, r.cumulative, r.base_codes
    ([2, 1, 1, 0, 1, 0, 0], [2, 3, 4, 4, 5, 5, 5], 4)
    >>> [(run.start, run.end, run.ratio) for run in r.runs]
    [(5, 6, 0.25), (6, 7, 0.0)]
    >>> r.reached, r.point, r.point_name
    (True, 5, 'i5')
    """
    _check_params(base_size, run_length, threshold)
    names = [name for name, _ in code_sets]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"saturation: interview names must be unique, repeated: {dupes}")

    seen: set[str] = set()
    new_codes: list[int] = []
    new_names: list[list[str]] = []
    cumulative: list[int] = []
    for _, codes in code_sets:
        fresh = sorted(set(codes) - seen)
        seen.update(fresh)
        new_codes.append(len(fresh))
        new_names.append(fresh)
        cumulative.append(len(seen))

    n = len(names)
    params = _params_text(base_size, run_length, threshold)
    base_codes = cumulative[base_size - 1] if n >= base_size else 0
    runs: list[SaturationRun] = []
    reached = False
    point: int | None = None

    if n == 0 or cumulative[-1] == 0:
        statement = "Saturation cannot be assessed: there are no codings yet."
    elif n < base_size + run_length:
        statement = (
            f"Saturation cannot be assessed yet: {counted(n, 'interview')}, the rule needs at least "
            f"{base_size + run_length} ({params})."
        )
    elif base_codes == 0:
        statement = (
            f"Saturation cannot be assessed: the first {base_size} interviews hold no code ({params})."
        )
    else:
        for start in range(base_size, n - run_length + 1):  # 0-based first interview of the run
            new = sum(new_codes[start : start + run_length])
            ratio = new / base_codes
            meets = ratio <= threshold
            runs.append(
                SaturationRun(
                    start=start + 1,
                    end=start + run_length,
                    interviews=tuple(names[start : start + run_length]),
                    new_codes=new,
                    ratio=ratio,
                    meets_threshold=meets,
                )
            )
            if meets:
                reached = True
                point = start  # 1-based count of interviews before the run
                break
        if reached and point is not None:
            run = runs[-1]
            statement = (
                f"Saturation reached at {point} interviews ({params}): interviews {run.start}–{run.end} "
                f"added {counted(run.new_codes, 'new code')}, {run.ratio * 100:.1f}% of the {counted(base_codes, 'base code')}."
            )
        else:
            best = min(runs, key=lambda r: r.ratio)
            statement = (
                f"Saturation not reached in {n} interviews ({params}); the lowest new information was "
                f"{best.ratio * 100:.1f}% (interviews {best.start}–{best.end})."
            )

    return SaturationResult(
        interviews=names,
        new_codes=new_codes,
        new_code_names=new_names,
        cumulative=cumulative,
        base_size=base_size,
        run_length=run_length,
        threshold=float(threshold),
        base_codes=base_codes,
        runs=runs,
        reached=reached,
        point=point,
        point_name=names[point - 1] if point is not None else None,
        statement=statement,
    )


def assess_saturation(
    codings: Sequence[Coding],
    source_order: Sequence[str],
    *,
    origins: Collection[str] | None = None,
    base_size: int = 4,
    run_length: int = 2,
    threshold: float = 0.05,
) -> SaturationResult:
    """Saturation of the codes in ``codings`` over the interviews in ``source_order``.

    Parameters
    ----------
    codings : sequence of Coding
        Codings of any coder; a code counts for an interview when at least one coding applies it.
    source_order : sequence of str
        All interviews, in the order of collection (see :func:`order_interviews`); interviews
        without a coding count as interviews with no new code.
    origins : collection of str, optional
        Keep only codings with these origins, e.g. ``{"human", "imported"}`` for human coding or
        ``{"model-accepted"}`` for accepted suggestions. ``None`` keeps all.
    base_size, run_length, threshold
        See :func:`saturation_from_code_sets`.

    Raises
    ------
    InputError
        A coding names a source that is not in ``source_order``, or a parameter is out of range.
    """
    order = list(source_order)
    known = set(order)
    per_source: dict[str, set[str]] = {name: set() for name in order}
    for c in codings:
        if origins is not None and c.origin not in origins:
            continue
        if c.source not in known:
            raise InputError(
                f"saturation: coding of '{c.code}' names source '{c.source}', which is not in the "
                f"interview order {order[:10]}{' ...' if len(order) > 10 else ''}"
            )
        per_source[c.source].add(c.code)
    return saturation_from_code_sets(
        [(name, per_source[name]) for name in order],
        base_size=base_size,
        run_length=run_length,
        threshold=threshold,
    )


def order_interviews(
    names: Sequence[str], metadata: Mapping[str, Mapping[str, str]] | None = None
) -> list[str]:
    """Interview names in order of collection.

    Sorted by the metadata key ``order`` (an integer) when any source has it, else by ``date``
    (ISO ``YYYY-MM-DD``) when any source has it, else kept in the given (ingest) order. Ties keep
    the given order; sources without the key follow the others, in the given order.

    Raises
    ------
    InputError
        A value does not parse.

    Examples
    --------
    >>> order_interviews(["b", "a"], {"a": {"order": "1"}, "b": {"order": "2"}})
    ['a', 'b']
    >>> order_interviews(["b", "a"])
    ['b', 'a']
    >>> order_interviews(["c", "b", "a"], {"a": {"order": "1"}, "b": {"order": "2"}})
    ['a', 'b', 'c']
    """
    meta = metadata or {}
    for key in ("order", "date"):
        having = [n for n in names if key in meta.get(n, {})]
        if not having:
            continue
        missing = [n for n in names if n not in having]
        keys: list[tuple[object, int]] = []
        for i, n in enumerate(having):
            raw = meta[n][key]
            try:
                value: object = int(raw) if key == "order" else date.fromisoformat(raw)
            except ValueError:
                fmt = "an integer" if key == "order" else "a date YYYY-MM-DD"
                raise InputError(
                    f"interview order: source '{n}' has {key}={raw!r}; it must be {fmt}"
                ) from None
            keys.append((value, i))
        ranked = sorted(range(len(having)), key=lambda i: keys[i])  # type: ignore[arg-type,return-value]
        # interviews without the key (typically added later, without metadata) follow, in ingest order
        return [having[i] for i in ranked] + missing
    return list(names)


def plot_saturation(
    results: Mapping[str, SaturationResult], *, title: str = "Thematic saturation", dpi: int = 150
) -> bytes:
    """Draw new codes per interview (bars) and the cumulative curve (lines) as a PNG.

    Parameters
    ----------
    results : mapping of label -> SaturationResult
        One or more results over the same interviews (e.g. ``{"human coding": r1, "accepted
        suggestions": r2}``); the base is shaded and each saturation point marked.

    Returns
    -------
    bytes
        A PNG image.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["#1f5f8b", "#c4622d", "#3b8b5a", "#7a4b94"]
    fig, (ax_new, ax_cum) = plt.subplots(
        2, 1, figsize=(7.5, 4.8), sharex=True, gridspec_kw={"height_ratios": [1, 1.6]}
    )
    n_series = max(len(results), 1)
    width = 0.8 / n_series
    n_max = 0
    base_size = 0
    for k, (label, res) in enumerate(results.items()):
        colour = colours[k % len(colours)]
        xs = list(range(1, len(res.interviews) + 1))
        n_max = max(n_max, len(xs))
        base_size = res.base_size
        offsets = [x - 0.4 + width * (k + 0.5) for x in xs]
        ax_new.bar(offsets, res.new_codes, width=width, color=colour, alpha=0.85, label=label)
        ax_cum.plot(xs, res.cumulative, marker="o", ms=4, lw=2, color=colour, label=label)
        if res.reached and res.point is not None:
            ax_cum.axvline(res.point, color=colour, ls="--", lw=1.2)
            ax_cum.annotate(
                f"saturation at {res.point}",
                xy=(res.point, res.cumulative[res.point - 1]),
                xytext=(6, -14 - 12 * k),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
    for ax in (ax_new, ax_cum):
        if base_size and n_max:
            ax.axvspan(0.5, min(base_size, n_max) + 0.5, color="#999999", alpha=0.12, lw=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
    ax_new.set_ylabel("new codes")
    ax_cum.set_ylabel("distinct codes")
    ax_cum.set_xlabel("interview (order of collection); shaded: base")
    if n_max:
        ax_cum.set_xticks(range(1, n_max + 1))
    ax_cum.set_ylim(bottom=0)
    from matplotlib.ticker import MaxNLocator

    ax_new.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_cum.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_cum.legend(frameon=False, fontsize=8, loc="lower right")
    ax_new.set_title(title, fontsize=11, loc="left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
