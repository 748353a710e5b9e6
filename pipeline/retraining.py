# ruff: noqa: N803, N806  (X, Y, P follow scikit-learn's naming for data matrices)
"""Retraining a suggester from the coders' work: training set, held-out sources, evaluation, the gate.

The ``retrain_suggester`` flow (``flows/retrain.py``) calls these functions; it logs what they return
to MLflow. Nothing here imports prefect or mlflow.

Training data
-------------
The labelled sources are the current sources with at least one active coding. Their participant
segments are labelled by :func:`pipeline.suggesting.load_corpus`: human codings and accepted
suggestions (codings of origin ``model-accepted``) are positives, rejected or recoded suggestions
explicit negatives (-1), everything else an implicit negative.

Held-out evaluation sources
---------------------------
:func:`evaluation_sources`: the labelled source names sorted by SHA-256 of the name; the first
``max(1, round(0.25 * n))`` are evaluation sources, and every model (the challenger and the current
champion) is scored on them; the challenger trains on the rest. The split depends on the names only,
so two runs on the same sources compare like with like. When sources are added the split can move:
a champion trained earlier may then have seen some of today's evaluation sources, which favours the
champion (the gate errs on the side of keeping it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from pipeline.domain import Codebook, sha256_text
from pipeline.errors import ConfigError, InputError
from pipeline.project import Project
from pipeline.store.schema import CoderRow, CodingRow, SourceRow

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.agreement_report import AgreementReport
    from pipeline.embed import Embedder
    from pipeline.suggesting import Corpus

EVAL_SHARE = 0.25


def evaluation_sources(names: Sequence[str], share: float = EVAL_SHARE) -> list[str]:
    """The held-out sources: names sorted by SHA-256, the first ``max(1, round(share * n))``.

    >>> evaluation_sources(["int01", "int02", "int03", "int04"])
    ['int01']
    >>> evaluation_sources(["b", "a"]) == evaluation_sources(["a", "b"])
    True
    """
    unique = sorted(set(names), key=lambda n: (sha256_text(n), n))
    if len(unique) < 2:
        raise InputError(
            f"retraining needs codings on at least 2 sources (found {len(unique)}: {unique}); "
            "code some segments of another interview first"
        )
    k = max(1, round(share * len(unique)))
    return sorted(unique[:k])


@dataclass
class TrainingSet:
    """Labelled segments, their vectors and the split.

    ``X`` : ndarray of shape (n_segments, dim); ``corpus.Y`` : ndarray (n_segments, n_codes);
    ``coder_matrices[coder]`` : ndarray (n_segments, n_codes) of that human coder's own codes.
    """

    corpus: Corpus
    X: npt.NDArray[np.float32]
    train_idx: npt.NDArray[np.intp]
    eval_idx: npt.NDArray[np.intp]
    eval_sources: list[str]
    codebook_hash: str
    coder_matrices: dict[str, npt.NDArray[np.int8]] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return self.corpus.codes

    def fingerprint(self) -> dict[str, Any]:
        """Counts and a hash of exactly what the models learn from and are scored on."""
        Y = self.corpus.Y
        h = sha256_text(
            "\n".join(
                f"{self.corpus.source_names[i]}|{self.corpus.spans[i][1]}|{self.corpus.spans[i][2]}|"
                f"{sha256_text(self.corpus.texts[i])}|{','.join(map(str, Y[i].tolist()))}"
                for i in range(len(self.corpus.texts))
            )
            + f"\ncodes:{','.join(self.codes)}\neval:{','.join(self.eval_sources)}"
        )
        return {
            "data_hash": h,
            "n_sources": len(set(self.corpus.source_names)),
            "n_eval_sources": len(self.eval_sources),
            "n_segments": len(self.corpus.texts),
            "n_train_segments": len(self.train_idx),
            "n_eval_segments": len(self.eval_idx),
            "n_positives": int((Y == 1).sum()),
            "n_rejections": int((Y == -1).sum()),
            "n_train_positives": int((Y[self.train_idx] == 1).sum()),
            "n_eval_positives": int((Y[self.eval_idx] == 1).sum()),
        }


def labelled_sources(project: Project) -> list[str]:
    """Current sources with at least one active coding, in ingest order."""
    with project.store.transaction() as session:
        q = (
            select(SourceRow.name)
            .join(CodingRow, CodingRow.source_id == SourceRow.id)
            .where(SourceRow.is_current, CodingRow.active)
            .group_by(SourceRow.name, SourceRow.ingest_order)
            .order_by(SourceRow.ingest_order)
        )
        return list(session.scalars(q))


def load_training_set(project: Project, embedder: Embedder) -> TrainingSet:
    """The labelled segments of the project, embedded, split into training and evaluation sources."""
    from pipeline.codebook import codebook_hash
    from pipeline.suggesting import embed_texts, label_matrix, load_corpus

    names = labelled_sources(project)
    eval_names = evaluation_sources(names)
    with project.store.transaction() as session:
        corpus = load_corpus(session, project, sources=names)
        src_ids = set(corpus.source_ids)
        per_coder: dict[str, list[tuple[int, int, int, str]]] = {}
        q = (
            select(CodingRow, CoderRow.name)
            .join(CoderRow, CodingRow.coder_id == CoderRow.id)
            .where(CodingRow.active, CoderRow.kind == "human", CodingRow.origin != "model-accepted")
        )
        for c, coder in session.execute(q):
            if c.source_id in src_ids:
                per_coder.setdefault(coder, []).append((c.source_id, c.start, c.end, c.code))
    X = embed_texts(embedder, corpus.texts)
    is_eval = np.isin(np.asarray(corpus.source_names), eval_names)
    coder_matrices = {
        coder: label_matrix(corpus.spans, codings, [], corpus.codes)
        for coder, codings in sorted(per_coder.items())
    }
    return TrainingSet(
        corpus=corpus,
        X=X,
        train_idx=np.flatnonzero(~is_eval),
        eval_idx=np.flatnonzero(is_eval),
        eval_sources=eval_names,
        codebook_hash=codebook_hash(corpus.codebook),
        coder_matrices=coder_matrices,
    )


def training_labels(ts: TrainingSet) -> npt.NDArray[np.int8]:
    """The label matrix the challenger learns from: rows ``train_idx`` of ``corpus.Y``."""
    return ts.corpus.Y[ts.train_idx]


def fit_challenger(
    ts: TrainingSet, embedder: Embedder, suggester: str, params: dict[str, Any] | None = None
) -> BaseSuggester:
    """A new suggester ``suggester`` fitted on the training sources only."""
    from pipeline.suggesting import build_suggester

    model = build_suggester(suggester, ts.corpus.codebook, embedder, params=params)
    idx = ts.train_idx
    groups = [ts.corpus.source_names[i] for i in idx]
    texts = [ts.corpus.texts[i] for i in idx]
    fitted: BaseSuggester = cast(Any, model).fit(ts.X[idx], training_labels(ts), groups=groups, texts=texts)
    return fitted


def aligned_scores(
    model: BaseSuggester, X: npt.NDArray[np.float32], texts: Sequence[str], codes: Sequence[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``model``'s probabilities and thresholds in the column order of ``codes``.

    A code the model does not know (the codebook grew since it was trained) gets probability 0 and
    threshold infinity: it is never suggested.

    Returns
    -------
    P : ndarray of shape (n_segments, n_codes); T : ndarray of shape (n_codes,)
    """
    P_model = model.predict_proba(X, texts=list(texts)) if len(X) else np.zeros((0, len(model.classes_)))
    col = {c: i for i, c in enumerate(model.classes_.tolist())}
    P = np.zeros((len(X), len(codes)), dtype=np.float64)
    T = np.full(len(codes), np.inf)
    thresholds = np.asarray(model.thresholds_, dtype=np.float64)
    for j, code in enumerate(codes):
        if code in col:
            P[:, j] = P_model[:, col[code]]
            T[j] = thresholds[col[code]]
    return P, T


@dataclass
class Evaluation:
    """A model's scores on the evaluation sources: ``metrics`` (see
    :func:`pipeline.evaluate.evaluate_predictions`), ``P`` (n_eval, n_codes), ``T`` (n_codes,)."""

    metrics: dict[str, Any]
    P: npt.NDArray[np.float64]
    T: npt.NDArray[np.float64]
    Y: npt.NDArray[np.int8]


def evaluate_on_heldout(model: BaseSuggester, ts: TrainingSet, k: int = 3) -> Evaluation:
    """Score ``model`` on the evaluation sources against the pooled human labels and each coder."""
    from pipeline.evaluate import evaluate_predictions

    idx = ts.eval_idx
    P, T = aligned_scores(model, ts.X[idx], [ts.corpus.texts[i] for i in idx], ts.codes)
    Y = ts.corpus.Y[idx]
    metrics = evaluate_predictions(
        P,
        T,
        Y,
        k=k,
        coder_matrices={c: M[idx] for c, M in ts.coder_matrices.items()},
        codes=ts.codes,
        exclusive=bool(model.exclusive),
    )
    return Evaluation(metrics, P, T, Y)


def evaluate_champion(
    model: BaseSuggester,
    embedding: str,
    ts: TrainingSet,
    embedder: Embedder,
    k: int = 3,
    *,
    force: bool = False,
) -> Evaluation | None:
    """The champion's :func:`evaluate_on_heldout`, on the same sources as the challenger.

    A champion trained on another embedding model cannot be scored on today's vectors: that is an
    error unless ``force`` (then ``None``: the challenger is promoted and the run says it was forced).
    """
    if embedding and embedding != embedder.fingerprint:
        if force:
            return None
        raise ConfigError(
            f"the champion was trained on embedding {embedding!r} and the project now uses "
            f"{embedder.fingerprint!r}: the two cannot be compared; run `qualflow train --force` to "
            "promote a model trained on the new embedding"
        )
    return evaluate_on_heldout(model, ts, k)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics as one flat dict for tracking: scalars as they are, ``per_code`` as
    ``f1.<code>`` (names made safe for MLflow), NaN left out.

    >>> scalar_metrics({"macro_f1": 0.5, "per_code": {"a b": {"f1": 1.0}}, "kappa_vs_x": float("nan")})
    {'macro_f1': 0.5, 'f1.a b': 1.0}
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key == "per_code":
            for code, row in value.items():
                out[f"f1.{safe_key(code)}"] = float(row["f1"])
        elif isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            out[safe_key(key)] = float(value)
    return out


def safe_key(name: str) -> str:
    """A metric or parameter key MLflow accepts (letters, digits, ``_-./`` and space).

    >>> safe_key("model:qualflow-suggester@2")
    'model_qualflow-suggester_2'
    """
    return "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "_-./ ")) else "_" for ch in name)


# --------------------------------------------------------------------------- the promotion gate


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger becomes the champion, and why."""

    promote: bool
    metric: str
    challenger: float
    champion: float | None
    margin: float
    forced: bool
    reason: str

    def tags(self) -> dict[str, str]:
        """The decision as MLflow tags (strings)."""
        return {
            "gate.decision": "promoted" if self.promote else "kept-champion",
            "gate.metric": self.metric,
            "gate.challenger_score": f"{self.challenger:.6g}",
            "gate.champion_score": "none" if self.champion is None else f"{self.champion:.6g}",
            "gate.margin": f"{self.margin:.6g}",
            "gate.forced": "true" if self.forced else "false",
            "gate.reason": self.reason,
        }


def promotion_decision(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    metric: str,
    margin: float,
    force: bool = False,
    champion_label: str = "the champion",
) -> GateDecision:
    """The gate: promote when the challenger beats the champion on ``metric`` by more than ``margin``.

    >>> promotion_decision({"macro_f1": 0.6}, {"macro_f1": 0.5}, metric="macro_f1", margin=0.05).promote
    True
    >>> d = promotion_decision({"macro_f1": 0.5}, {"macro_f1": 0.6}, metric="macro_f1", margin=0.0, force=True)
    >>> d.promote, d.forced
    (True, True)
    >>> promotion_decision({"macro_f1": 0.5}, None, metric="f1", margin=0.0)
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: promotion metric 'f1' is not a model metric; choose one of ['macro_f1']
    """
    valid = sorted(k for k, v in challenger.items() if isinstance(v, int | float) and not isinstance(v, bool))
    if metric not in valid:
        raise InputError(f"promotion metric {metric!r} is not a model metric; choose one of {valid}")
    c_score = float(challenger[metric])
    if champion is None:
        return GateDecision(
            True, metric, c_score, None, margin, force, "no champion yet: the first model is promoted"
        )
    h_score = float(champion[metric])
    beats = bool(c_score > h_score + margin)
    verdict = (
        f"{metric} {c_score:.4f} vs {champion_label} {h_score:.4f}: "
        + ("beats it" if beats else "does not beat it")
        + f" by more than the margin {margin:g}"
    )
    if force and not beats:
        return GateDecision(True, metric, c_score, h_score, margin, True, f"forced with --force ({verdict})")
    return GateDecision(beats, metric, c_score, h_score, margin, force, verdict)


# --------------------------------------------------------------------------- artifacts


def write_evaluation_artifacts(
    out_dir: Path, ev: Evaluation, codes: Sequence[str], codebook: Codebook
) -> list[Path]:
    """Write the per-code report (CSV), confusion matrix and reliability diagram (PNG) and a codebook
    snapshot (YAML) into ``out_dir``; returns the paths."""
    from pipeline.codebook import codebook_to_yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "precision", "recall", "f1", "support"])
    for code in codes:
        row = ev.metrics["per_code"][code]
        w.writerow(
            [code, f"{row['precision']:.6g}", f"{row['recall']:.6g}", f"{row['f1']:.6g}", row["support"]]
        )
    paths = [out_dir / "per_code.csv", out_dir / "confusion_matrix.png", out_dir / "reliability.png"]
    paths[0].write_text(buf.getvalue(), encoding="utf-8")
    _confusion_png(paths[1], confusion_counts(ev.P, ev.T, ev.Y), list(codes))
    _reliability_png(paths[2], ev.P, (ev.Y == 1).astype(np.int8))
    snapshot = out_dir / "codebook.yaml"
    snapshot.write_text(codebook_to_yaml(codebook), encoding="utf-8")
    return [*paths, snapshot]


def confusion_counts(
    P: npt.NDArray[np.floating], T: npt.NDArray[np.floating], Y: npt.NDArray[np.integer]
) -> npt.NDArray[np.int64]:
    """Multi-label confusion: ``C[i, j]`` counts segments humans coded ``i`` that the model gave ``j``;
    the last row/column is "none" (no human code / no suggestion).

    Returns
    -------
    ndarray of shape (n_codes + 1, n_codes + 1)

    >>> confusion_counts(np.array([[0.9, 0.1], [0.2, 0.1]]), np.array([0.5, 0.5]), np.array([[1, 0], [0, 1]])).tolist()
    [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    """
    D = np.asarray(P) >= np.asarray(T)
    truth = np.asarray(Y) == 1
    m = truth.shape[1]
    C = np.zeros((m + 1, m + 1), dtype=np.int64)
    for t, d in zip(truth, D, strict=True):
        rows = np.flatnonzero(t).tolist() or [m]
        cols = np.flatnonzero(d).tolist() or [m]
        for i in rows:
            for j in cols:
                C[i, j] += 1
    return C


def _confusion_png(path: Path, C: npt.NDArray[np.int64], codes: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [*codes, "(none)"]
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(C, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("model suggested")
    ax.set_ylabel("humans coded")
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            if C[i, j]:
                ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _reliability_png(
    path: Path, P: npt.NDArray[np.floating], truth: npt.NDArray[np.int8], n_bins: int = 10
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, y = np.asarray(P).ravel(), np.asarray(truth).ravel()
    b = np.minimum((p * n_bins).astype(int), n_bins - 1) if len(p) else np.zeros(0, dtype=int)
    cnt = np.bincount(b, minlength=n_bins)
    nz = cnt > 0
    mean_p = np.bincount(b, weights=p, minlength=n_bins)[nz] / cnt[nz]
    mean_y = np.bincount(b, weights=y, minlength=n_bins)[nz] / cnt[nz]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot(mean_p, mean_y, marker="o")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("share coded by humans")
    ax.set_title("Reliability (held-out sources)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- agreement with the champion


def model_codings(model: BaseSuggester, ts: TrainingSet, coder: str) -> list[Any]:
    """The model's decisions on every labelled segment as :class:`~pipeline.domain.Coding` rows of
    coder ``coder`` (one per segment and code at or above threshold), for the agreement panel."""
    from pipeline.domain import Coding

    P, T = aligned_scores(model, ts.X, ts.corpus.texts, ts.codes)
    D = P >= T
    out = []
    for i, j in zip(*np.nonzero(D), strict=True):
        _, start, end = ts.corpus.spans[i]
        out.append(Coding(ts.corpus.source_names[i], start, end, ts.codes[j], coder, origin="model"))
    return out


def agreement_with_model(
    project: Project, ts: TrainingSet, model_coder: str, codings_of_model: Sequence[Any], n_boot: int = 200
) -> AgreementReport:
    """The agreement panel (:func:`pipeline.agreement_report.agreement_panel`, segment units) of every
    human coder and the model coder on the labelled sources.

    The model's codings come from :func:`model_codings`. Note that the champion trained on most of
    these segments: its agreement is an upper bound of what it reaches on new interviews.
    """
    from pipeline.agreement_report import agreement_panel
    from pipeline.project import current_sources, load_codings, load_segments, segment_from_row

    names = set(ts.corpus.source_names)
    with project.store.transaction() as session:
        human = [c for c in load_codings(session) if c.source in names and not c.coder.startswith("model:")]
        human = [c for c in human if c.origin != "model-accepted"]
        segments = [segment_from_row(r, n) for r, n in load_segments(session, project.config) if n in names]
        texts = {r.name: r.text for r in current_sources(session) if r.name in names}
    coders = sorted({c.coder for c in human}) + [model_coder]
    return agreement_panel(
        [*human, *codings_of_model], segments, texts, coders, ts.codes, unit="segment", n_boot=n_boot
    )


def agreement_metrics(report: AgreementReport) -> dict[str, float]:
    """Pooled coefficients (``pooled.<coefficient>``) and pairwise Cohen's κ
    (``cohen.<a>.vs.<b>``) of an agreement report, for tracking run by run."""
    out = {f"pooled.{name}": float(e.value) for name, e in report.pooled.estimates.items()}
    for (a, b), k in report.pairwise.items():
        if k is not None and np.isfinite(k):
            out[f"cohen.{safe_key(a)}.vs.{safe_key(b)}"] = float(k)
    for row in report.rows:
        for name, e in row.estimates.items():
            out[f"code.{safe_key(row.code)}.{name}"] = float(e.value)
    return out
