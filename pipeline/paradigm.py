"""Axial coding: the paradigm model (Strauss & Corbin) filled from the codebook, and suggestions.

The six dimensions are :data:`pipeline.domain.PARADIGM_DIMENSIONS`: phenomenon, causal conditions,
context, intervening conditions, action/interaction strategies and consequences.

* A code's **dimension** is its own ``Code.dimension`` or, when it has none, that of its nearest
  ancestor that has one; codes with neither go to ``"unassigned"``.
* An entry's **frequency** is the number of distinct coded passages (source, start, end) of the code
  and of all its descendants, so a passage coded by two coders counts once; its **interviews** is
  the number of distinct sources among them.
* **Exemplar quotes** (two per entry) come from those codings. With coding vectors: the two nearest
  (cosine) to the entry's centroid. Without: quotes of moderate length (8–60 words) first, longest
  first, then those nearest to that band. Either way the second quote comes from a different
  interview than the first when one exists, and identical texts are never repeated.

Suggestions are returned for the lead researcher to review, never applied: a parent category for
codes without a parent (:func:`suggest_categories`, agglomerative clustering of code centroids,
average linkage on cosine distance) and
a dimension for codes without one (:func:`suggest_dimensions`, nearest dimension centroid).

One module, one concern: the paradigm model (axial coding) is one data structure and the
few functions that build, validate and draw it; splitting them would scatter one definition.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pipeline.domain import PARADIGM_DIMENSIONS, Codebook, Coding
from pipeline.errors import InputError
from pipeline.text import counted

__all__ = [
    "DIMENSION_LABELS",
    "UNASSIGNED",
    "CategorySuggestion",
    "DimensionSuggestion",
    "Exemplar",
    "ParadigmEntry",
    "ParadigmModel",
    "build_paradigm",
    "effective_dimension",
    "plot_paradigm",
    "suggest_categories",
    "suggest_dimensions",
]

UNASSIGNED = "unassigned"
DIMENSION_LABELS: dict[str, str] = {
    "phenomenon": "Phenomenon",
    "causal": "Causal conditions",
    "context": "Context",
    "intervening": "Intervening conditions",
    "strategy": "Action/interaction strategies",
    "consequence": "Consequences",
    UNASSIGNED: "Unassigned",
}
MODERATE_WORDS = (8, 60)


@dataclass(frozen=True)
class Exemplar:
    """A quote: ``text`` is ``source_text[start:end]`` with whitespace runs folded to one space."""

    source: str
    start: int
    end: int
    text: str


@dataclass
class ParadigmEntry:
    """One code placed in the paradigm model."""

    code: str
    dimension: str
    parent: str | None
    inherited: bool  # True when the dimension comes from an ancestor (or is "unassigned")
    is_category: bool  # True when the code has children
    frequency: int
    interviews: int
    exemplars: list[Exemplar] = field(default_factory=list)


@dataclass
class ParadigmModel:
    """Entries per dimension (keys: PARADIGM_DIMENSIONS + ("unassigned",)), in codebook order."""

    entries: dict[str, list[ParadigmEntry]]

    def heads(self, dimension: str) -> list[ParadigmEntry]:
        """Entries of ``dimension`` whose parent is not in the same dimension, most frequent first."""
        same = {e.code for e in self.entries[dimension]}
        heads = [e for e in self.entries[dimension] if e.parent not in same]
        return sorted(heads, key=lambda e: -e.frequency)

    def children(self, entry: ParadigmEntry) -> list[ParadigmEntry]:
        """Entries of the same dimension whose parent is ``entry``, most frequent first."""
        kids = [e for e in self.entries[entry.dimension] if e.parent == entry.code]
        return sorted(kids, key=lambda e: -e.frequency)

    def all_entries(self) -> list[ParadigmEntry]:
        return [e for dim in self.entries for e in self.entries[dim]]


@dataclass(frozen=True)
class CategorySuggestion:
    """A proposed parent category for ``members`` (codes that have no parent).

    ``anchor`` is the member nearest the group's centroid (a starting point for a name);
    ``cohesion`` the mean cosine similarity of the members to the centroid.
    """

    members: list[str]
    anchor: str
    cohesion: float


@dataclass(frozen=True)
class DimensionSuggestion:
    """A proposed paradigm dimension for ``code``, with the cosine similarity to that dimension's
    centroid and the runner-up."""

    code: str
    dimension: str
    similarity: float
    runner_up: str | None
    runner_up_similarity: float | None


def _check_codebook_dimensions(codebook: Codebook) -> None:
    for c in codebook.codes:
        if c.dimension is not None and c.dimension not in PARADIGM_DIMENSIONS:
            raise InputError(
                f"codebook: code '{c.name}' has dimension {c.dimension!r}; choose one of "
                f"{list(PARADIGM_DIMENSIONS)} or leave it empty"
            )


def effective_dimension(codebook: Codebook, name: str) -> tuple[str, bool]:
    """The code's dimension and whether it is inherited (or unassigned).

    >>> from pipeline.domain import Code
    >>> cb = Codebook([Code("a", dimension="causal"), Code("b", parent="a"), Code("c")])
    >>> effective_dimension(cb, "b"), effective_dimension(cb, "c")
    (('causal', True), ('unassigned', True))
    """
    code = codebook.get(name)
    if code is None:
        raise InputError(f"paradigm: code '{name}' is not in the codebook {codebook.names()[:10]}")
    if code.dimension is not None:
        return code.dimension, False
    seen = {code.name}
    parent = code.parent
    while parent is not None and parent not in seen:
        seen.add(parent)
        p = codebook.get(parent)
        if p is None:
            break
        if p.dimension is not None:
            return p.dimension, True
        parent = p.parent
    return UNASSIGNED, True


def _descendants(codebook: Codebook) -> dict[str, set[str]]:
    children: dict[str, list[str]] = {}
    for c in codebook.codes:
        if c.parent is not None:
            children.setdefault(c.parent, []).append(c.name)
    out: dict[str, set[str]] = {}
    for c in codebook.codes:
        stack, acc = [c.name], {c.name}
        while stack:
            for k in children.get(stack.pop(), []):
                if k not in acc:
                    acc.add(k)
                    stack.append(k)
        out[c.name] = acc
    return out


def _quote(coding: Coding, source_texts: Mapping[str, str]) -> str:
    text = source_texts.get(coding.source)
    if text is None:
        raise InputError(
            f"paradigm: coding of '{coding.code}' names source '{coding.source}', which has no text"
        )
    return " ".join(text[coding.start : coding.end].split())


def _pick_two(ranked: list[tuple[Coding, str]], k: int) -> list[Exemplar]:
    chosen: list[tuple[Coding, str]] = []
    texts: set[str] = set()
    for c, t in ranked:  # first: best; then prefer interviews not used yet
        if len(chosen) >= k:
            break
        if t in texts or not t:
            continue
        if chosen and c.source in {x.source for x, _ in chosen}:
            continue
        chosen.append((c, t))
        texts.add(t)
    for c, t in ranked:  # fill up from any interview
        if len(chosen) >= k:
            break
        if t in texts or not t:
            continue
        chosen.append((c, t))
        texts.add(t)
    return [Exemplar(c.source, c.start, c.end, t) for c, t in chosen]


def _rank_by_length(cands: list[tuple[Coding, str]]) -> list[tuple[Coding, str]]:
    lo, hi = MODERATE_WORDS

    def key(item: tuple[Coding, str]) -> tuple[int, int, str, int]:
        c, t = item
        w = len(t.split())
        if lo <= w <= hi:
            return (0, -w, c.source, c.start)
        return (1, lo - w if w < lo else w - hi, c.source, c.start)

    return sorted(cands, key=key)


def _rank_by_centroid(
    cands: list[tuple[Coding, str]], vectors: Mapping[Coding, npt.ArrayLike]
) -> list[tuple[Coding, str]]:
    with_vec = [(c, t) for c, t in cands if c in vectors]
    if not with_vec:
        return _rank_by_length(cands)
    V = np.asarray([np.asarray(vectors[c], dtype=np.float64) for c, _ in with_vec])
    V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
    centroid = V.mean(axis=0)
    centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    sims = V @ centroid
    order = sorted(
        range(len(with_vec)), key=lambda i: (-sims[i], with_vec[i][0].source, with_vec[i][0].start)
    )
    return [with_vec[i] for i in order]


def _corroborated(codings: Sequence[Coding]) -> set[Coding]:
    """Codings of the consensus (origin ``consensus``) and codings another coder's coding of the same
    code overlaps: the exemplar quotes come from these first."""
    by_key: dict[tuple[str, str], list[Coding]] = {}
    for c in codings:
        by_key.setdefault((c.source, c.code), []).append(c)
    out = {c for c in codings if c.origin == "consensus"}
    for group in by_key.values():
        group.sort(key=lambda c: (c.start, c.end))
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if b.start >= a.end:
                    break
                if b.coder != a.coder and b.end > a.start:
                    out.update((a, b))
    return out


def build_paradigm(
    codebook: Codebook,
    codings: Sequence[Coding],
    source_texts: Mapping[str, str],
    *,
    coding_vectors: Mapping[Coding, npt.ArrayLike] | None = None,
    n_exemplars: int = 2,
) -> ParadigmModel:
    """Fill the paradigm model from the codebook and the codings.

    Parameters
    ----------
    codebook : Codebook
    codings : sequence of Coding
        Every code must be in the codebook.
    source_texts : mapping of source name -> text
        Texts the codings' offsets point into (for the exemplar quotes).
    coding_vectors : mapping of Coding -> ndarray of shape (dim,), optional
        Embeddings of the coded texts; when given, exemplars are those nearest the centroid.
        Either way, consensus codings and codings another coder's coding of the same code overlaps
        come first; the caller leaves out codings an adjudication overruled (see
        :func:`pipeline.project.report.analysis_codings`).
    n_exemplars : int
        Quotes per entry (default 2).

    Returns
    -------
    ParadigmModel
    """
    _check_codebook_dimensions(codebook)
    names = set(codebook.names())
    by_code: dict[str, list[Coding]] = {}
    for c in codings:
        if c.code not in names:
            raise InputError(
                f"paradigm: coding at {c.source}:{c.start}-{c.end} uses code '{c.code}', which is not in "
                f"the codebook"
            )
        by_code.setdefault(c.code, []).append(c)
    backed = _corroborated(codings)
    desc = _descendants(codebook)
    has_children = {c.parent for c in codebook.codes if c.parent is not None}
    entries: dict[str, list[ParadigmEntry]] = {d: [] for d in (*PARADIGM_DIMENSIONS, UNASSIGNED)}
    for code in codebook.codes:
        dim, inherited = effective_dimension(codebook, code.name)
        cods = sorted(
            {c for d in desc[code.name] for c in by_code.get(d, [])},
            key=lambda c: (c.source, c.start, c.end, c.code, c.coder),
        )
        cands = [(c, _quote(c, source_texts)) for c in cods]
        ranked = _rank_by_centroid(cands, coding_vectors) if coding_vectors else _rank_by_length(cands)
        ranked.sort(key=lambda ct: ct[0] not in backed)  # stable: the ranking within each tier
        entries[dim].append(
            ParadigmEntry(
                code=code.name,
                dimension=dim,
                parent=code.parent,
                inherited=inherited,
                is_category=code.name in has_children,
                frequency=len({(c.source, c.start, c.end) for c in cods}),
                interviews=len({c.source for c in cods}),
                exemplars=_pick_two(ranked, n_exemplars),
            )
        )
    return ParadigmModel(entries)


def suggest_categories(
    code_names: Sequence[str],
    code_embeddings: npt.ArrayLike,
    *,
    distance_threshold: float = 0.5,
    min_size: int = 2,
) -> list[CategorySuggestion]:
    """Group codes into candidate categories by agglomerative clustering of their centroids.

    Pure: the caller passes the codes without a parent and their centroid embeddings.

    Parameters
    ----------
    code_names : sequence of str, length n_codes
    code_embeddings : array-like of shape (n_codes, dim)
    distance_threshold : float
        Cosine distance at which clusters stop merging (average linkage); lower is stricter.
    min_size : int
        Smallest group worth proposing.

    Returns
    -------
    list of CategorySuggestion, most cohesive first.
    """
    X = np.asarray(code_embeddings, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != len(code_names):
        raise InputError(
            f"suggest_categories: embeddings of shape {X.shape} do not match {len(code_names)} code names"
        )
    if len(code_names) < max(2, min_size):
        return []
    from scipy.cluster.hierarchy import fcluster, linkage

    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    # average linkage on cosine distance; clusters stop merging at distance_threshold
    Z = linkage(Xn, method="average", metric="cosine")
    labels = fcluster(Z, t=distance_threshold, criterion="distance")
    out: list[CategorySuggestion] = []
    for lab in sorted(set(labels.tolist())):
        idx = [i for i, v in enumerate(labels.tolist()) if v == lab]
        if len(idx) < min_size:
            continue
        centroid = Xn[idx].mean(axis=0)
        centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
        sims = Xn[idx] @ centroid
        out.append(
            CategorySuggestion(
                members=[code_names[i] for i in idx],
                anchor=code_names[idx[int(np.argmax(sims))]],
                cohesion=float(sims.mean()),
            )
        )
    return sorted(out, key=lambda s: (-s.cohesion, s.anchor))


def suggest_dimensions(
    codebook: Codebook, code_embeddings: Mapping[str, npt.ArrayLike]
) -> list[DimensionSuggestion]:
    """Propose a dimension for each unassigned code: the dimension whose member codes' centroid is
    most similar (cosine) to the code's embedding.

    Pure: ``code_embeddings`` maps code names to centroid vectors; codes without a vector are
    skipped, as are dimensions without any member vector.
    """
    _check_codebook_dimensions(codebook)
    members: dict[str, list[npt.NDArray[np.float64]]] = {}
    unassigned: list[str] = []
    for code in codebook.codes:
        dim, _ = effective_dimension(codebook, code.name)
        if dim == UNASSIGNED:
            unassigned.append(code.name)
        elif code.name in code_embeddings:
            v = np.asarray(code_embeddings[code.name], dtype=np.float64)
            members.setdefault(dim, []).append(v / max(float(np.linalg.norm(v)), 1e-12))
    dims = [d for d in PARADIGM_DIMENSIONS if d in members]
    if not dims:
        return []
    C = np.array([np.mean(members[d], axis=0) for d in dims])
    C = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    out: list[DimensionSuggestion] = []
    for name in unassigned:
        if name not in code_embeddings:
            continue
        v = np.asarray(code_embeddings[name], dtype=np.float64)
        sims = C @ (v / max(float(np.linalg.norm(v)), 1e-12))
        order = np.argsort(-sims, kind="stable")
        second = int(order[1]) if len(order) > 1 else None
        out.append(
            DimensionSuggestion(
                code=name,
                dimension=dims[int(order[0])],
                similarity=float(sims[order[0]]),
                runner_up=dims[second] if second is not None else None,
                runner_up_similarity=float(sims[second]) if second is not None else None,
            )
        )
    return out


# ---------------------------------------------------------------- the diagram

_STYLE: dict[str, tuple[str, str]] = {  # face colour, edge/heading colour
    "causal": ("#eef4fa", "#2b5d8a"),
    "phenomenon": ("#fdf1e6", "#b5541c"),
    "strategy": ("#eef7f0", "#2f7a48"),
    "consequence": ("#f3eff8", "#6a4a8c"),
    "context": ("#f6f6f2", "#6b6b4e"),
    "intervening": ("#f6f6f2", "#6b6b4e"),
}


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _box_lines(model: ParadigmModel, dim: str, max_lines: int, width: int) -> list[tuple[str, bool]]:
    """(text, is_head) lines for one box: heads by frequency, each followed by its top children."""
    lines: list[tuple[str, bool]] = []
    total = len(model.entries[dim])
    shown = 0
    for head in model.heads(dim):
        if len(lines) >= max_lines:
            break
        lines.append((f"{_shorten(head.code, width)}  ({head.frequency} · {head.interviews})", True))
        shown += 1
        for kid in model.children(head)[:4]:
            if len(lines) >= max_lines:
                break
            lines.append((f"– {_shorten(kid.code, width - 2)}  ({kid.frequency})", False))
            shown += 1
    if total > shown:
        lines.append((f"+ {total - shown} more {'code' if total - shown == 1 else 'codes'}", False))
    if not lines:
        lines.append(("(no code yet)", False))
    return lines


def plot_paradigm(
    model: ParadigmModel, *, title: str | None = None, max_lines: int = 6, dpi: int = 150
) -> bytes:
    """Draw the paradigm model as the classic diagram, as a PNG.

    Causal conditions → phenomenon → action/interaction strategies → consequences, left to right;
    context (above) and intervening conditions (below) bear on the strategies. Each box lists its
    codes with (codings · interviews); children are indented under their category.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(13.5, 7.2))
    ax.set_xlim(0, 27)
    ax.set_ylim(0, 14.4)
    ax.axis("off")

    w, h = 5.9, 4.3
    row_y = 5.05
    boxes = {
        "causal": (0.2, row_y),
        "phenomenon": (7.0, row_y),
        "strategy": (13.8, row_y),
        "consequence": (20.7, row_y),
        "context": (13.8, 10.0),
        "intervening": (13.8, 0.15),
    }
    for dim, (x, y) in boxes.items():
        face, edge = _STYLE[dim]
        lw = 2.4 if dim == "phenomenon" else 1.4
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.25", fc=face, ec=edge, lw=lw, zorder=1
            )
        )
        ax.add_patch(
            FancyBboxPatch(
                (x, y + h - 0.85),
                w,
                0.85,
                boxstyle="round,pad=0.02,rounding_size=0.25",
                fc=edge,
                ec=edge,
                lw=lw,
                zorder=2,
            )
        )
        ax.text(
            x + w / 2,
            y + h - 0.43,
            DIMENSION_LABELS[dim],
            ha="center",
            va="center",
            fontsize=11.5,
            fontweight="bold",
            color="white",
            zorder=3,
        )
        lines = _box_lines(model, dim, max_lines, 30)
        step = min(0.62, (h - 1.2) / max(len(lines), 1))
        for k, (text, is_head) in enumerate(lines):
            ax.text(
                x + (0.3 if is_head else 0.6),
                y + h - 1.25 - k * step,
                text,
                ha="left",
                va="center",
                fontsize=10.2 if is_head else 9.4,
                color="#1d1d1d" if is_head else "#4a4a4a",
                fontweight="bold" if is_head else "normal",
                zorder=3,
            )

    def arrow(p: tuple[float, float], q: tuple[float, float], colour: str = "#444444") -> None:
        ax.add_patch(
            FancyArrowPatch(
                p,
                q,
                arrowstyle="-|>,head_length=0.9,head_width=0.45",
                mutation_scale=14,
                lw=2.2,
                color=colour,
                zorder=4,
                shrinkA=2,
                shrinkB=2,
            )
        )

    mid = row_y + h / 2
    arrow((0.2 + w, mid), (7.0, mid))
    arrow((7.0 + w, mid), (13.8, mid))
    arrow((13.8 + w, mid), (20.7, mid))
    arrow((13.8 + w / 2, 10.0), (13.8 + w / 2, row_y + h), "#6b6b4e")
    arrow((13.8 + w / 2, 0.15 + h), (13.8 + w / 2, row_y), "#6b6b4e")

    n_unassigned = len(model.entries[UNASSIGNED])
    note = "(coded passages · interviews), sub-codes included"
    if n_unassigned:
        note += f"; {counted(n_unassigned, 'code')} without a dimension {'is' if n_unassigned == 1 else 'are'} listed in the table"
    ax.text(0.25, 0.35, note, fontsize=8.5, color="#555555", ha="left", va="bottom")
    if title:
        ax.text(0.25, 14.1, title, fontsize=13, fontweight="bold", ha="left", va="top", color="#1d1d1d")
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
