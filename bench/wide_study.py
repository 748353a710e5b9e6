"""A wide synthetic study: 150 interviews of 150 turns, 300 codes in 40 uncodable categories, 1,500
codings by two coders (the audit's scale study: 44,860 segments, 92,771 suggestions queued by the
default suggester). For memory and review-queue benchmarks at that size (docs/benchmarks.md).

Usage::

    .venv/bin/python bench/wide_study.py OUT    # OUT/transcripts, codebook.yaml, codings.csv, metadata.csv
"""

from __future__ import annotations

import csv
import os
import random
import sys

import yaml


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    os.chdir(out)
    random.seed(7)
    topics = [
        "budget",
        "staff",
        "training",
        "software",
        "policy",
        "law",
        "trust",
        "meetings",
        "data",
        "privacy",
        "funding",
        "leadership",
        "culture",
        "communication",
        "patients",
        "clients",
        "contracts",
        "procurement",
        "audit",
        "risk",
        "quality",
        "safety",
        "workload",
        "burnout",
        "housing",
        "transport",
        "schools",
        "families",
        "migration",
        "language",
        "technology",
        "devices",
        "network",
        "security",
        "ethics",
        "consent",
        "evaluation",
        "reporting",
        "partners",
        "volunteers",
    ]
    verbs = [
        "affects",
        "shapes",
        "limits",
        "supports",
        "complicates",
        "drives",
        "undermines",
        "improves",
        "delays",
        "changes",
    ]
    adjs = [
        "serious",
        "constant",
        "minor",
        "hidden",
        "obvious",
        "growing",
        "shared",
        "local",
        "national",
        "informal",
    ]
    os.makedirs("transcripts", exist_ok=True)
    cats = []
    for i, t in enumerate(topics):
        codes = []
        n = 8 if i < 20 else 7
        for j in range(n):
            a = adjs[j % len(adjs)]
            codes.append(
                {
                    "name": f"{t}-{a}-{j}",
                    "description": f"Talk about {a} {t} issues, aspect {j}: how {t} {verbs[j % 10]} daily work.",
                    "examples": [f"The {a} {t} problem {verbs[j % 10]} what we do."],
                }
            )
        cats.append({"name": f"cat-{t}", "codable": False, "codes": codes})
    yaml.safe_dump({"name": "Scale study", "codes": cats}, open("codebook.yaml", "w"), sort_keys=False)
    allcodes = [(c["name"], cat["name"][4:]) for cat in cats for c in cat["codes"]]
    print("codes", len(allcodes))
    rows = []
    meta = []
    for s in range(150):
        name = f"int{s:03d}"
        lines = []
        pos = 0
        spans = []
        for k in range(150):
            if k % 2 == 0:
                t = random.choice(topics)
                txt = f"Interviewer: Could you say more about the {t} in your unit and how it {random.choice(verbs)} your work?"
            else:
                sents = []
                for _ in range(random.randint(2, 4)):
                    t = random.choice(topics)
                    a = random.choice(adjs)
                    sents.append(
                        f"The {a} {t} {random.choice(verbs)} how we {random.choice(['plan', 'work', 'report', 'decide', 'cooperate'])} with {random.choice(topics)} every {random.choice(['week', 'month', 'day', 'quarter'])}."
                    )
                txt = f"P{s:03d}: " + " ".join(sents)
                spans.append((pos + len(f"P{s:03d}: "), pos + len(txt), t))
            lines.append(txt)
            pos += len(txt) + 1
        open(f"transcripts/{name}.txt", "w").write("\n".join(lines) + "\n")
        meta.append(
            {
                "source": name,
                "participant": f"P{s:03d}",
                "group": random.choice(["a", "b", "c"]),
                "order": s + 1,
            }
        )
        for st, en, t in random.sample(spans, 10):
            cands = [c for c, tp in allcodes if tp == t] or [c for c, _ in allcodes]
            rows.append(
                {
                    "source": name,
                    "start": st,
                    "end": en,
                    "code": random.choice(cands),
                    "coder": random.choice(["ana", "ben"]),
                }
            )
    with open("codings.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["source", "start", "end", "code", "coder"])
        w.writeheader()
        w.writerows(rows)
    with open("metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["source", "participant", "group", "order"])
        w.writeheader()
        w.writerows(meta)
    print(len(rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "wide-study")
