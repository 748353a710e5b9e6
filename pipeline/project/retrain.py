"""Retraining from the coders' decisions: the training set (held-out sources chosen by hash), the
challenger's fit and evaluation, the champion's evaluation on the same sources, the evaluation
artifacts, and the model's agreement with the humans. MLflow and the gate's bookkeeping are in
:mod:`flows`; the gate's rule is :mod:`pipeline.gate`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from pipeline.domain import Codebook, sha256_text
from pipeline.errors import ConfigError, InputError, QualflowError
from pipeline.evaluation_plots import _confusion_png, _reliability_png, confusion_counts
from pipeline.fileio import csv_writer
from pipeline.project.core import Project
from pipeline.store.schema import CoderRow, CodingRow

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.agreement_report import AgreementReport
    from pipeline.embed.base import Embedder
    from pipeline.project.corpus import Corpus


EVAL_SHARE = 0.25


def evaluation_sources(names: Sequence[str], share: float = EVAL_SHARE) -> list[str]:
    """The held-out sources: names sorted by SHA-256, the first ``max(1, round(share * n))``.

    >>> evaluation_sources(["int01", "int02", "int03", "int04"])
    ['int01']
    >>> evaluation_sources(["b", "a"]) == evaluation_sources(["a", "b"])
    True
    >>> evaluation_sources(["int01"])
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: retraining needs codings on at least 2 sources (found 1: int01); code some segments of another interview first
    """
    unique = sorted(set(names), key=lambda n: (sha256_text(n), n))
    if len(unique) < 2:
        found = f"{len(unique)}: {', '.join(unique)}" if unique else "none"
        raise InputError(
            f"retraining needs codings on at least 2 sources (found {found}); "
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
    embedder: Embedder | None = field(default=None, repr=False)
    """Embeds the previous turns (:meth:`context`) when a model reads them."""
    X_prev: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    X_window: npt.NDArray[np.float32] | None = field(default=None, repr=False)

    @property
    def codes(self) -> list[str]:
        return self.corpus.codes

    def context(self, model: BaseSuggester) -> npt.NDArray[np.float32] | None:
        """``X_prev`` of every segment (embedded once, on first use) when ``model`` reads the previous
        turn, else ``None``."""
        if not model.wants_context():
            return None
        if self.X_prev is None:
            from pipeline.project.corpus import embed_context

            if self.embedder is None:
                raise InputError("this training set has no embedder to embed the previous turns with")
            prev = self.corpus.prev_texts or [""] * len(self.corpus.texts)
            self.X_prev = embed_context(self.embedder, prev)
        return self.X_prev

    def window(self, model: BaseSuggester) -> npt.NDArray[np.float32] | None:
        """``X_window`` of every segment (composed from ``X`` once, on first use:
        :func:`~pipeline.project.corpus.window_vectors`) when ``model`` reads the segments' windows,
        else ``None``."""
        if not model.wants_window():
            return None
        if self.X_window is None:
            from pipeline.project.corpus import window_vectors

            self.X_window = window_vectors(self.X, self.corpus.positions)
        return self.X_window

    def side(self, model: BaseSuggester, idx: npt.NDArray[np.intp] | None = None) -> dict[str, Any]:
        """Keyword side information for ``model``'s fit / predict_proba on rows ``idx`` (all: ``None``)."""
        from models.base import side_inputs

        rows = np.arange(len(self.corpus.texts)) if idx is None else idx
        X_prev = self.context(model)
        X_window = self.window(model)
        prev, prev2 = self.corpus.prev_texts, self.corpus.prev2_texts
        return side_inputs(
            model,
            texts=[self.corpus.texts[i] for i in rows],
            X_prev=None if X_prev is None else X_prev[rows],
            prev_texts=[prev[i] for i in rows] if prev else None,
            prev2_texts=[prev2[i] for i in rows] if prev2 else None,
            X_window=None if X_window is None else X_window[rows],
        )

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


def labelled_sources(project: Project) -> tuple[list[str], list[str]]:
    """The current sources a model can learn from (with labelled segments under the current codebook:
    :meth:`~pipeline.project.corpus.Corpus.labelled_rows`) and, of those, the ones with at least one
    positive (a segment coded with a codable code), each in ingest order. Only the latter can be held
    out: a source whose codings all sit on codes the codebook no longer has, or on interviewer turns,
    would be scored as all negatives (and left out of the training set, an empty evaluation)."""
    from pipeline.project.corpus import load_corpus

    with project.store.transaction() as session:
        corpus = load_corpus(session, project)
    rows = corpus.labelled_rows()
    order = list(dict.fromkeys(corpus.source_names))  # ingest order
    learn = {corpus.source_names[i] for i in rows}
    positive = {corpus.source_names[i] for i in rows if (corpus.Y[i] == 1).any()}
    return [n for n in order if n in learn], [n for n in order if n in positive]


def check_trainable(project: Project) -> tuple[list[str], list[str]]:
    """The labelled sources and the held-out ones, or the :class:`InputError` that stops retraining
    (fewer than 2 sources with a coding of a current code). ``qualflow train`` calls it before any flow
    starts, and :func:`load_training_set` (the flow's first step) through it, so both say the same."""
    names, positive = labelled_sources(project)
    return names, evaluation_sources(positive)


def load_training_set(project: Project, embedder: Embedder) -> TrainingSet:
    """The labelled segments of the project, embedded, split into training and evaluation sources."""
    from pipeline.codebook import codebook_hash
    from pipeline.labels import label_matrix
    from pipeline.project.corpus import embed_texts, load_corpus
    from pipeline.store.queries import hand_coded_sources

    names, eval_names = check_trainable(project)
    with project.store.transaction() as session:
        # a source known only through the suggestion queue counts only where someone decided
        corpus = load_corpus(session, project, sources=names).labelled()
        src_ids = set(corpus.source_ids)
        by_hand = hand_coded_sources(session, codes=corpus.codes)
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
    # a coder is compared only on the sources they coded by hand (-2 elsewhere: not seen)
    coder_matrices = {
        coder: np.where(
            np.isin(np.asarray(corpus.source_names), sorted(by_hand.get(coder, set())))[:, None],
            label_matrix(corpus.spans, codings, [], corpus.codes),
            -2,
        ).astype(np.int8)
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
        embedder=embedder,
    )


def scoring_set(project: Project, embedder: Embedder, sources: Sequence[str]) -> TrainingSet:
    """Every participant segment of ``sources``, embedded, as a set to score a model on (nothing to
    train on): what a round's champion codes (:func:`predicted_codings`), all of each source, not only
    the segments :meth:`~pipeline.project.corpus.Corpus.labelled_rows` keeps for training."""
    from pipeline.codebook import codebook_hash
    from pipeline.project.corpus import embed_texts, load_corpus

    with project.store.transaction() as session:
        corpus = load_corpus(session, project, sources=sorted(set(sources)))
    return TrainingSet(
        corpus=corpus,
        X=embed_texts(embedder, corpus.texts),
        train_idx=np.zeros(0, dtype=np.intp),
        eval_idx=np.arange(len(corpus.texts), dtype=np.intp),
        eval_sources=sorted(set(corpus.source_names)),
        codebook_hash=codebook_hash(corpus.codebook),
        embedder=embedder,
    )


def training_labels(ts: TrainingSet) -> npt.NDArray[np.int8]:
    """The label matrix the challenger learns from: rows ``train_idx`` of ``corpus.Y``."""
    return ts.corpus.Y[ts.train_idx]


def fit_challenger(
    ts: TrainingSet, embedder: Embedder, suggester: str, params: dict[str, Any] | None = None
) -> BaseSuggester:
    """A new suggester ``suggester`` fitted on the training sources only."""
    from pipeline.project.suggest import build_suggester

    model = build_suggester(suggester, ts.corpus.codebook, embedder, params=params)
    idx = ts.train_idx
    groups = [ts.corpus.source_names[i] for i in idx]
    side = ts.side(model, idx)
    fitted: BaseSuggester = cast(Any, model).fit(ts.X[idx], training_labels(ts), groups=groups, **side)
    return fitted


SELECTION_FOLDS = 3
SELECTION_MIN_SOURCES = 3
"""Fewer training sources with codings than this: ``train`` keeps the rule's choice (no CV)."""


@dataclass
class Selection:
    """How ``train`` chose the suggester for ``[suggester] name = "auto"``.

    ``method``: ``"cv"`` (grouped cross-validation on the training sources ran) or ``"rule"`` (the
    rule's choice, :func:`models.default_suggester`, without CV: ``select = "rule"`` or too little
    data; ``reason`` says which). ``scores``: each candidate's out-of-fold ``metric``, NaN when its CV
    failed (``failures`` says why)."""

    method: str
    chosen: str
    candidates: list[str]
    metric: str
    folds: int = 0
    n_sources: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    def params(self) -> dict[str, str]:
        """The choice as MLflow parameters (``selection.*``)."""
        out = {
            "selection.method": self.method,
            "selection.candidates": ",".join(self.candidates),
            "selection.chosen": self.chosen,
            "selection.folds": str(self.folds),
        }
        if self.reason:
            out["selection.reason"] = self.reason
        return out

    def metrics(self) -> dict[str, float]:
        """Each candidate's out-of-fold score as ``selection.<candidate>.<metric>`` (failed: left out)."""
        return {
            f"selection.{name}.{self.metric}": score
            for name, score in self.scores.items()
            if np.isfinite(score)
        }

    def line(self) -> str:
        """One line for `qualflow train`'s output.

        >>> Selection("cv", "evidence", ["evidence", "linear"], "macro_f1", 3, 6,
        ...           {"evidence": 0.41, "linear": 0.37}).line()
        'chose evidence by 3-fold CV on 6 sources: macro_f1 evidence 0.41, linear 0.37'
        >>> Selection("rule", "linear", ["linear", "evidence"], "macro_f1", reason='select = "rule"').line()
        'chose linear by the rule (select = "rule")'
        """
        scores = ", ".join(
            f"{name} failed ({self.failures[name]})"
            if name in self.failures
            else f"{name} {self.scores[name]:.2f}"
            for name in self.candidates
            if name in self.scores
        )
        if self.method != "cv":
            return f"chose {self.chosen} by the rule ({self.reason})" + (
                f": {self.metric} {scores}" if scores else ""
            )
        note = f" ({self.reason})" if self.reason else ""
        return f"chose {self.chosen} by {self.folds}-fold CV on {self.n_sources} sources{note}: {self.metric} {scores}"


def select_suggester(
    ts: TrainingSet,
    embedder: Embedder,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    select: str = "cv",
    metric: str = "macro_f1",
    k: int = 3,
) -> Selection | None:
    """The suggester ``train`` fits for ``[suggester] name`` (``None``: ``name`` is explicit, kept as is).

    For ``"auto"`` with ``select = "cv"``: every candidate of :func:`models.auto_candidates` (the
    rule's choice first), built as the product builds it (:func:`~pipeline.project.suggest.build_suggester`
    with ``params``), is scored by ``metric`` on the queue's decisions out of fold
    (:func:`pipeline.project.evaluate.out_of_fold`, :data:`SELECTION_FOLDS` folds grouped by source)
    over the *training* sources only — never the held-out sources the gate scores on. A candidate
    replaces the rule's choice only by scoring strictly higher; a tie, a failed CV, fewer than
    :data:`SELECTION_MIN_SOURCES` training sources or ``select = "rule"`` keep the rule's choice."""
    from models import AUTO, auto_candidates, resolve_suggester
    from pipeline.config import validate_select
    from pipeline.gate import higher_is_better, promotion_decision
    from pipeline.project.evaluate import out_of_fold
    from pipeline.project.suggest import build_suggester

    validate_select(select, "train")
    if name != AUTO:
        return None
    params = dict(params or {})
    rule = resolve_suggester(AUTO, params)
    candidates = list(auto_candidates(bool(params.get("exclusive", False))))
    idx = ts.train_idx
    groups = [ts.corpus.source_names[i] for i in idx]
    n_sources = len(set(groups))
    if select == "rule":
        return Selection("rule", rule, candidates, metric, n_sources=n_sources, reason='select = "rule"')
    if n_sources < SELECTION_MIN_SOURCES:
        return Selection(
            "rule",
            rule,
            candidates,
            metric,
            n_sources=n_sources,
            reason=f"{n_sources} training sources with codings, CV needs {SELECTION_MIN_SOURCES}",
        )
    folds = min(SELECTION_FOLDS, n_sources)
    scores: dict[str, float] = {}
    failures: dict[str, str] = {}
    Y = training_labels(ts)
    for cand in candidates:

        def make(cand: str = cand) -> BaseSuggester:
            return build_suggester(cand, ts.corpus.codebook, embedder, params=params)

        try:
            probe = make()  # a parameter of [suggester] params the candidate lacks: TypeError
            _, _, m = out_of_fold(
                make,
                ts.X[idx],
                Y,
                groups,
                k,
                folds,
                ts.side(probe, idx),
                codes=ts.codes,
                exclusive=bool(probe.exclusive),
            )
        except (QualflowError, TypeError, ValueError, np.linalg.LinAlgError) as exc:
            scores[cand] = float("nan")
            failures[cand] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:150]
            continue
        # the gate's reading of the metric (an unknown promotion metric is its one error)
        scores[cand] = promotion_decision(m, None, metric=metric, margin=0.0).challenger
    if failures:
        reason = f"CV failed for {', '.join(failures)}: the rule's choice"
        return Selection("rule", rule, candidates, metric, folds, n_sources, scores, failures, reason)
    sign = 1.0 if higher_is_better(metric) else -1.0  # brier, ece: the lowest error wins
    best = max(candidates, key=lambda c: (sign * scores[c], c == rule))  # a tie keeps the rule's choice
    tie = best == rule and any(scores[c] == scores[rule] for c in candidates if c != rule)
    reason = "a tie keeps the rule's choice" if tie else ""
    return Selection("cv", best, candidates, metric, folds, n_sources, scores, failures, reason)


def aligned_scores(
    model: BaseSuggester,
    X: npt.NDArray[np.float32],
    texts: Sequence[str],
    codes: Sequence[str],
    **side: Any,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``model``'s probabilities and thresholds in the column order of ``codes``.

    ``side``: further side information for ``predict_proba`` (``X_prev``, ``prev_texts``: see
    :meth:`TrainingSet.side`).

    A code the model does not know (the codebook grew since it was trained) gets probability 0 and
    threshold infinity: it is never suggested.

    Returns
    -------
    P : ndarray of shape (n_segments, n_codes); T : ndarray of shape (n_codes,)
    """
    side = {**side, "texts": list(texts)}
    P_model = model.predict_proba(X, **side) if len(X) else np.zeros((0, len(model.classes_)))
    return _aligned(model, P_model, codes)


def _columns(model: BaseSuggester, codes: Sequence[str]) -> dict[int, int]:
    """The model's column of each code it shares with ``codes`` -> that code's column in ``codes``."""
    col = {c: i for i, c in enumerate(model.classes_.tolist())}
    return {col[code]: j for j, code in enumerate(codes) if code in col}


def _aligned(
    model: BaseSuggester, P_model: npt.NDArray[np.floating], codes: Sequence[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`aligned_scores` of probabilities already computed in the model's columns."""
    P = np.zeros((len(P_model), len(codes)), dtype=np.float64)
    T = np.full(len(codes), np.inf)
    thresholds = np.asarray(model.thresholds_, dtype=np.float64)
    for i, j in _columns(model, codes).items():
        P[:, j] = P_model[:, i]
        T[j] = thresholds[i]
    return P, T


@dataclass
class Evaluation:
    """A model's scores on the evaluation sources: ``metrics`` (see
    :func:`pipeline.evaluate.evaluate_predictions`), ``P`` (n_eval, n_codes), ``T`` (n_codes,), and
    ``picks``, its suggestions per segment as the review queue makes them (``(code column, score)``,
    best first; the columns of ``codes``)."""

    metrics: dict[str, Any]
    P: npt.NDArray[np.float64]
    T: npt.NDArray[np.float64]
    Y: npt.NDArray[np.int8]
    picks: list[list[tuple[int, float]]]


def evaluate_on_heldout(model: BaseSuggester, ts: TrainingSet, k: int = 3) -> Evaluation:
    """Score ``model`` on the evaluation sources against the pooled human labels and each coder.

    The decisions scored (and so the promotion metric) are the review queue's:
    :func:`pipeline.project.suggest.rank_codes` with each segment's source, so the evidence
    suggester's per-source gate (over each whole held-out source) and category rule count. A code the
    model suggests that the codebook no longer has is left out."""
    from pipeline.evaluate import evaluate_predictions
    from pipeline.project.suggest import rank_codes

    idx = ts.eval_idx
    side = ts.side(model, idx)
    texts = side.pop("texts")
    groups = [ts.corpus.source_names[i] for i in idx]
    ranking = rank_codes(model, ts.X[idx], texts, k, groups=groups, **side)
    P, T = _aligned(model, ranking.P, ts.codes)
    cols = _columns(model, ts.codes)
    picks = [[(cols[c], score) for c, score in row if c in cols] for row in ranking.picks]
    Y = ts.corpus.Y[idx]
    metrics = evaluate_predictions(
        P,
        picks,
        Y,
        k=k,
        coder_matrices={c: M[idx] for c, M in ts.coder_matrices.items()},
        codes=ts.codes,
        exclusive=bool(model.exclusive),
    )
    return Evaluation(metrics, P, T, Y, picks)


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
        check_comparable(embedding, embedder.fingerprint)
    return evaluate_on_heldout(model, ts, k)


def check_comparable(embedding: str, fingerprint: str) -> None:
    """Refuse to compare a champion trained on embedding ``embedding`` with a model on the project's
    ``fingerprint`` (:class:`ConfigError` saying to use ``--force``); nothing when they are the same."""
    if embedding and embedding != fingerprint:
        from pipeline.embed.languages import why_embedding_changed

        raise ConfigError(
            f"the champion cannot be compared with a new model: {why_embedding_changed(embedding, fingerprint)}; "
            "run `qualflow train --force` to promote a model trained on the new vectors"
        )


def write_evaluation_artifacts(
    out_dir: Path, ev: Evaluation, codes: Sequence[str], codebook: Codebook
) -> list[Path]:
    """Write the per-code report (CSV), confusion matrix and reliability diagram (PNG) and a codebook
    snapshot (YAML) into ``out_dir``; returns the paths."""
    from pipeline.codebook_files import codebook_to_yaml
    from pipeline.evaluate import suggested_matrix

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv_writer(buf, lineterminator="\n")
    w.writerow(["code", "precision", "recall", "f1", "support"])
    for code in codes:
        row = ev.metrics["per_code"][code]
        w.writerow(
            [code, f"{row['precision']:.6g}", f"{row['recall']:.6g}", f"{row['f1']:.6g}", row["support"]]
        )
    paths = [out_dir / "per_code.csv", out_dir / "confusion_matrix.png", out_dir / "reliability.png"]
    paths[0].write_text(buf.getvalue(), encoding="utf-8")
    _confusion_png(paths[1], confusion_counts(suggested_matrix(ev.picks, len(codes)), ev.Y), list(codes))
    _reliability_png(paths[2], ev.P, (ev.Y == 1).astype(np.int8))
    snapshot = out_dir / "codebook.yaml"
    snapshot.write_text(codebook_to_yaml(codebook), encoding="utf-8")
    return [*paths, snapshot]


def predicted_codings(model: BaseSuggester, ts: TrainingSet, coder: str) -> list[Any]:
    """The model's decisions on every labelled segment as :class:`~pipeline.domain.Coding` rows of
    coder ``coder``, for the agreement panel: on each segment, its rank-1 suggestion under the review
    queue's rule (:func:`pipeline.project.suggest.rank_codes`: thresholds, the per-source gate, the
    category rule), as ``model:<name>@<version>`` codes in ``qualflow agreement``. A segment whose
    first suggestion is a category (not codable) or none gets no coding from the model."""
    from pipeline.domain import Coding
    from pipeline.project.suggest import rank_codes

    side = ts.side(model)
    texts = side.pop("texts")
    ranking = rank_codes(model, ts.X, texts, 1, groups=list(ts.corpus.source_names), **side)
    cols = _columns(model, ts.codes)
    out = []
    for i, row in enumerate(ranking.picks):
        if row and row[0][0] in cols:
            _, start, end = ts.corpus.spans[i]
            code = ts.codes[cols[row[0][0]]]
            out.append(Coding(ts.corpus.source_names[i], start, end, code, coder, origin="model"))
    return out


def agreement_with_model(
    project: Project,
    ts: TrainingSet,
    model_coder: str,
    codings_of_model: Sequence[Any],
    n_boot: int = 1000,
    seed: int = 0,
) -> AgreementReport:
    """The agreement panel (:func:`pipeline.agreement_report.agreement_panel`, segment units) of every
    human coder and the model coder on the labelled sources.

    The model's codings come from :func:`predicted_codings`. Note that the champion trained on most of
    these segments: its agreement is an upper bound of what it reaches on new interviews.
    """
    from pipeline.agreement_report import agreement_panel
    from pipeline.store.mappers import segment_from_row
    from pipeline.store.queries import current_sources, hand_coded_sources, load_codings, load_segments

    names = set(ts.corpus.source_names)
    with project.store.transaction() as session:
        human = [c for c in load_codings(session) if c.source in names and not c.coder.startswith("model:")]
        human = [c for c in human if c.origin != "model-accepted"]
        segments = [segment_from_row(r, n) for r, n in load_segments(session, project.config) if n in names]
        texts = {r.name: r.text for r in current_sources(session) if r.name in names}
        by_hand = hand_coded_sources(session, codes=ts.codes)
    coders = sorted({c.coder for c in human}) + [model_coder]
    # a coder is compared where they coded by hand (not where they only recoded a suggestion)
    seen = {c: by_hand.get(c, set()) & names for c in coders[:-1]} | {model_coder: names}
    return agreement_panel(
        [*human, *codings_of_model],
        segments,
        texts,
        coders,
        ts.codes,
        unit="segment",
        n_boot=n_boot,
        seed=seed,
        coded_sources=seen,
    )


#: Coded training segments from which ``train`` suggests ``--fine-tune`` for an exclusive codebook
#: (AnnoMI's therapist codebook, where it helped, has 4,666; a few hundred is where a classifier of
#: a handful of codes has something to learn).
FINE_TUNE_HINT_MIN = 500


def fine_tune_hint(exclusive: bool, fine_tuned: bool, n_coded: int) -> str | None:
    """A line suggesting ``--fine-tune`` when an exclusive codebook has enough codings and it was not
    used; ``None`` otherwise.

    >>> fine_tune_hint(True, False, 3574).startswith("hint: 3574 coded segments of an exclusive codebook")
    True
    >>> fine_tune_hint(True, True, 3574), fine_tune_hint(False, False, 3574), fine_tune_hint(True, False, 80)
    (None, None, None)
    """
    if not exclusive or fine_tuned or n_coded < FINE_TUNE_HINT_MIN:
        return None
    return (
        f"hint: {n_coded} coded segments of an exclusive codebook: `qualflow train --fine-tune` also "
        "fine-tunes the encoder as a classifier of the codes (minutes, about 4.5 GB of memory) and keeps "
        "it only if it scores at least as well on the held-out sources (docs/embeddings.md)"
    )


def keep_fine_tuned(tuned: float, base: float, metric: str) -> tuple[bool, str]:
    """Whether the fine-tuned encoder's challenger is kept over the same suggester on the base encoder,
    both scored on the same held-out sources: kept unless it agrees *less* with the coders (a tie
    keeps it: the user asked for it and it costs nothing at suggestion time). On AnnoMI the fine-tune
    helps one codebook and hurts the other (docs/benchmarks.md), so this is measured, never assumed.

    >>> keep_fine_tuned(0.71, 0.66, "macro_f1")
    (True, 'fine-tuned encoder kept: macro_f1 0.7100 on the held-out sources, 0.6600 with the base encoder')
    >>> keep_fine_tuned(0.6, 0.66, "macro_f1")[1]
    'fine-tuned encoder NOT kept (the challenger uses the base encoder): macro_f1 0.6000 on the held-out sources, 0.6600 with the base encoder'
    """
    a, b = float(tuned), float(base)
    keep = a >= b
    head = (
        "fine-tuned encoder kept"
        if keep
        else "fine-tuned encoder NOT kept (the challenger uses the base encoder)"
    )
    return keep, f"{head}: {metric} {a:.4f} on the held-out sources, {b:.4f} with the base encoder"
