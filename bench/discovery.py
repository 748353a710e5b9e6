"""Discovery benchmark: does ``qualflow discover`` find the codes a researcher used but we hid?

Usage::

    python bench/discovery.py STUDY_DIR --hide K [--most-used | --seed N] [--out results.json]
    python bench/discovery.py STUDY_DIR --hide-codes "audio,visuals,..." [--qualflow "CMD"]

``STUDY_DIR`` is the layout of ``bench/study.py`` (``transcripts/``, a codebook, ``codings.csv``).
K leaf codes are hidden (the K most used, or K drawn at random with ``--seed``, or the named ones): they
are removed from the codebook and their codings dropped. One project is built through the CLI only:
``init``, ``ingest``, ``codebook import`` (the reduced codebook, written as YAML with qualflow's codebook
writer), ``codings import`` (the remaining codings), ``discover``; candidates and their members are read
back through the CLI: ``discover`` prints the candidates (id, label, coherence) and ``suggestions
export`` lists every member segment as an ``inductive`` row whose code is the candidate's label and
whose score is its coherence; participant segments come from ``qualflow segments SOURCE``.

Per hidden code: its segments = participant segments overlapping a passage coded with it; per candidate,
members = its segments; the best candidate by Jaccard, its precision and recall, whether the code is
recovered (Jaccard >= 0.2), and the reviewer's effort = the rank, in the order the review app's
candidates page shows them (by candidate id), of the first candidate with Jaccard >= 0.2.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _study_common import (  # noqa: E402
    Qualflow,
    StudyError,
    fail,
    fmt_table,
    leaf_codes,
    load_study,
    overlaps,
    parse_segments_table,
    parse_table,
    progress,
    qualflow_command,
    read_codebook_file,
    read_suggestions,
    write_codings,
)

RECOVERED = 0.2
SUMMARY = re.compile(r"(\d+) candidate open codes .*?over (\d+) of the (\d+) segments looked at")
SegKey = tuple[str, int]  # source, segment index


@dataclass
class Candidate:
    """A candidate open code as the CLI shows it, with its member segments from the export."""

    id: int
    label: str
    coherence: float
    members: set[SegKey] = field(default_factory=set)


def choose_hidden(codebook: Any, counts: Counter[str], args: argparse.Namespace) -> list[str]:
    """The codes to hide: named, the K most used, or K at random (seeded) among used leaf codes."""
    leaves = leaf_codes(codebook)
    if args.hide_codes:
        names = [c.strip() for c in args.hide_codes.split(",") if c.strip()]
        for n in names:
            if n not in leaves:
                from difflib import get_close_matches

                near = get_close_matches(n, leaves, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise StudyError(f"--hide-codes: {n!r} is not a leaf code of the codebook{hint}")
        return names
    used = [c for c in leaves if counts[c] > 0]
    if not args.hide or not 0 < args.hide < len(used):
        raise StudyError(f"--hide K: need 0 < K < {len(used)} (the used leaf codes), or --hide-codes")
    if args.most_used:
        return sorted(used, key=lambda c: (-counts[c], c))[: args.hide]
    return sorted(random.Random(args.seed).sample(used, args.hide))


def write_reduced_codebook(codebook: Any, hidden: set[str], path: Path) -> int:
    """Write the codebook without ``hidden`` as YAML (qualflow's writer); returns the codes kept."""
    try:
        from pipeline.codebook import write_codebook_yaml
    except ImportError:  # the package layout is being reorganised
        from pipeline.codebook_files import write_codebook_yaml  # type: ignore[import-not-found,no-redef]
    from dataclasses import replace

    kept = [c for c in codebook.codes if c.name not in hidden]
    write_codebook_yaml(replace(codebook, codes=kept), path)
    return len(kept)


def parse_candidates(
    discover_out: str, export: Path
) -> tuple[list[Candidate], tuple[int, int, int], list[str]]:
    """Candidates in review order, discover's summary numbers, and notes on anything ambiguous."""
    m = SUMMARY.search(discover_out)
    if not m:
        raise StudyError("`qualflow discover` did not print its summary line; the output format changed")
    summary = (int(m[1]), int(m[2]), int(m[3]))
    cands: list[Candidate] = []
    # the table: rank, id, label, keyphrases, coherence, ... in the order the review app shows them
    for cells in parse_table(discover_out):
        if len(cells) >= 5 and cells[0].isdigit() and cells[1].isdigit():
            cands.append(Candidate(int(cells[1]), " ".join(cells[2].split()), float(cells[4])))
    notes: list[str] = []
    groups: dict[tuple[str, float], set[SegKey]] = defaultdict(set)
    for s in read_suggestions(export):
        if s.kind == "inductive":
            groups[(" ".join(s.code.split()), s.score)].add((s.source, s.segment))
    for (label, score), members in groups.items():
        match = [c for c in cands if c.label == label and abs(c.coherence - score) <= 0.0051]
        if not match:
            notes.append(f"exported candidate {label!r} ({score}) is not in discover's table")
            continue
        if len(match) > 1:
            notes.append(f"{len(match)} candidates share label {label!r} and coherence; members merged")
        for c in match:
            c.members |= members
    return cands, summary, notes


def score(hidden: list[str], segs_of: dict[str, set[SegKey]], cands: list[Candidate]) -> list[dict[str, Any]]:
    """Best candidate per hidden code (Jaccard), its precision and recall, and the reviewer's effort."""
    out = []
    for code in hidden:
        H = segs_of.get(code, set())
        best: tuple[float, float, float, int, str] = (0.0, 0.0, 0.0, 0, "")
        first: int | None = None
        for rank, c in enumerate(cands, start=1):
            inter = len(H & c.members)
            union = len(H | c.members)
            j = inter / union if union else 0.0
            if j > best[0]:
                best = (
                    j,
                    inter / len(c.members) if c.members else 0.0,
                    inter / len(H) if H else 0.0,
                    rank,
                    c.label,
                )
            if first is None and j >= RECOVERED:
                first = rank
        out.append(
            {
                "code": code,
                "segments": len(H),
                "best_rank": best[3] or None,
                "best_label": best[4],
                "jaccard": best[0],
                "precision": best[1],
                "recall": best[2],
                "recovered": best[0] >= RECOVERED,
                "effort": first,
            }
        )
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    study = load_study(args.study_dir)
    codebook = read_codebook_file(study.codebook_path)
    counts = Counter(c.code for c in study.codings)
    hidden = choose_hidden(codebook, counts, args)
    hidden_set = set(hidden)
    cmd = qualflow_command(args.qualflow)
    sources = sorted(study.transcripts)
    progress(f"study {study.root}: hiding {len(hidden)} codes: {', '.join(hidden)}")
    progress(f"qualflow command: {' '.join(cmd)}")
    timings: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="qualflow-discovery-") as tmp:
        work = Path(tmp)
        qf = Qualflow(cmd, work / "project", timings)
        book = work / "codebook-reduced.yaml"
        kept = write_reduced_codebook(codebook, hidden_set, book)
        keep_idx = [i for i, c in enumerate(study.codings) if c.code not in hidden_set]
        codings_csv = work / "codings-kept.csv"
        n_kept = write_codings(codings_csv, study, keep_idx)
        for step, argv in (
            ("init", ["init", str(qf.project), "--name", "discovery"]),
            ("ingest", ["ingest", str(study.root / "transcripts")]),
            ("codebook import", ["codebook", "import", str(book)]),
            ("codings import", ["codings", "import", str(codings_csv)]),
        ):
            t0 = time.perf_counter()
            said = qf.run(step, *argv, project=step != "init").strip().splitlines()
            progress(f"  {step}: {time.perf_counter() - t0:.1f} s ({said[0] if said else ''})")
        t0 = time.perf_counter()
        out = qf.run("discover", "discover")
        progress(f"  discover: {time.perf_counter() - t0:.1f} s")
        export = work / "suggestions.csv"
        qf.run("suggestions export", "suggestions", "export", str(export))
        cands, (n_cand, n_members, n_unexplained), notes = parse_candidates(out, export)
        segments: list[tuple[str, int, int, int]] = []
        for i, src in enumerate(sources, start=1):
            if i % 20 == 0 or i == len(sources):
                progress(f"  segments of {i}/{len(sources)} sources")
            segments += [
                (src, idx, a, b) for idx, a, b in parse_segments_table(qf.run("segments", "segments", src))
            ]
    by_src: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for src, idx, a, b in segments:
        by_src[src].append((idx, a, b))
    segs_of: dict[str, set[SegKey]] = defaultdict(set)
    for c in study.codings:
        if c.code in hidden_set:
            segs_of[c.code] |= {
                (c.source, i) for i, a, b in by_src[c.source] if overlaps(a, b, c.start, c.end)
            }
    members = set().union(*(c.members for c in cands)) if cands else set()
    if n_cand != len(cands):
        notes.append(f"discover reported {n_cand} candidates, its table listed {len(cands)}")
    per_code = score(hidden, segs_of, cands)
    return {
        "study": str(study.root),
        "date": date.today().isoformat(),
        "qualflow": " ".join(cmd),
        "hidden": hidden,
        "selection": "named" if args.hide_codes else ("most used" if args.most_used else f"seed {args.seed}"),
        "codes_kept": kept,
        "codings_kept": n_kept,
        "candidates": len(cands),
        "unexplained": n_unexplained,
        "members": len(members),
        "segments": len(segments),
        "clustered_share": len(members) / len(segments) if segments else 0.0,
        "recovered": sum(r["recovered"] for r in per_code),
        "per_code": per_code,
        "candidate_labels": [f"{c.id}: {c.label} ({len(c.members)})" for c in cands],
        "seconds": {k: sum(v) / len(v) for k, v in timings.items()},
        "notes": notes,
    }


def render(res: dict[str, Any]) -> str:
    header = [
        "hidden code",
        "its segments",
        "best candidate (rank: label)",
        "Jaccard",
        "precision",
        "recall",
        "recovered",
        "effort (rank of first J>=0.2)",
    ]
    rows = [
        [
            r["code"],
            r["segments"],
            f"{r['best_rank']}: {r['best_label']}" if r["best_rank"] else "-",
            r["jaccard"],
            r["precision"],
            r["recall"],
            "yes" if r["recovered"] else "no",
            r["effort"] if r["effort"] else "-",
        ]
        for r in res["per_code"]
    ]
    js = [r["jaccard"] for r in res["per_code"]]
    lines = [
        fmt_table(header, rows),
        "",
        f"Hidden ({res['selection']}): {len(res['hidden'])}; recovered (Jaccard >= {RECOVERED}): "
        f"{res['recovered']} of {len(res['hidden'])}; best Jaccard {min(js):.2f}-{max(js):.2f}.",
        f"Candidates proposed: {res['candidates']}, over {res['members']} segments of the {res['unexplained']} "
        f"looked at ({res['clustered_share']:.1%} of {res['segments']} participant segments clustered).",
        "Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in res["seconds"].items() if k != "segments") + ".",
    ]
    if res["notes"]:
        lines.append("Notes: " + "; ".join(res["notes"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study_dir", type=Path, metavar="STUDY_DIR")
    ap.add_argument("--hide", type=int, metavar="K", help="how many codes to hide")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--most-used", action="store_true", help="hide the K most used codes")
    how.add_argument("--seed", type=int, default=0, help="hide K codes drawn with this seed (default)")
    how.add_argument("--hide-codes", metavar="A,B,...", help="hide exactly these codes (comma-separated)")
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    ap.add_argument(
        "--qualflow", metavar="CMD", help='the qualflow command (default: "python -m cli" or pipeline.cli)'
    )
    args = ap.parse_args(argv)
    try:
        res = run(args)
    except StudyError as exc:
        fail(str(exc))
    print(render(res))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2), encoding="utf-8")
        progress(f"wrote {args.out}")


if __name__ == "__main__":
    main()
