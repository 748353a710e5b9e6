"""Write a synthetic study the size and shape of a real grounded-theory project, to time qualflow on it.

Usage::

    python bench/scale_study.py OUT [--transcripts 28] [--sentences 500] [--themes 10]
                                [--categories 55] [--codes 230] [--codings 753] [--seed 0]

then ``python bench/study.py OUT --seed 0``. The defaults are the shape of the kept study of issue 14:
28 interviews of about an hour (``--sentences`` participant sentences each, about 9,000 words), a
codebook of 230 codes in 55 categories under 10 themes, 753 codings of passages one to four sentences
long, most codes used one to five times (a Zipf-like draw).

What it is for: seconds and memory of ``embed`` / ``suggest`` / ``export`` at that size, which the demo
(21 codes, 9 short interviews) and games-as-art (90 one-paragraph answers) cannot show. The text is
English words drawn from the demo's transcripts (so tokens per sentence are realistic) with two words
planted per code in its coded passages, so the suggesters have something to learn; its hit rates say
how qualflow behaves on many codes with few examples, not how good it is on real talk.

Everything is written in the layout ``bench/study.py`` reads (``transcripts/*.txt`` as
``Interviewer:`` / ``Pnn:`` turns, ``codebook.yaml``, ``codings.csv``), deterministically from the seed.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _study_common import StudyError, fail  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "transcripts"


def vocabulary() -> list[str]:
    """Words of the demo's transcripts, most frequent first (a Zipf-like draw follows their order)."""
    counts: dict[str, int] = {}
    for path in sorted(DEMO.glob("*.txt")):
        for word in re.findall(r"[a-z]+(?:'[a-z]+)?", path.read_text(encoding="utf-8").lower()):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if len(words) < 200:
        raise StudyError(f"{DEMO}: too few words to draw sentences from ({len(words)})")
    return words


class Writer:
    def __init__(self, rng: random.Random, words: list[str]):
        self.rng = rng
        self.words = words
        self.weights = [1.0 / (i + 10) for i in range(len(words))]

    def sentence(self, planted: tuple[str, ...] = ()) -> str:
        n = self.rng.randint(8, 30)
        body = self.rng.choices(self.words, weights=self.weights, k=n)
        for w in planted:
            body.insert(self.rng.randrange(len(body) + 1), w)
        return body[0].capitalize() + " " + " ".join(body[1:]) + self.rng.choice([".", ".", ".", "?", "!"])


def codebook(rng: random.Random, themes: int, categories: int, codes: int) -> list[tuple[str, str, str]]:
    """(theme, category, code) triples: categories spread over themes, codes over categories."""
    if not (1 <= themes <= categories <= codes):
        raise StudyError(
            f"--themes {themes} --categories {categories} --codes {codes}: need 1 <= themes <= categories <= codes"
        )
    cat_theme = [i % themes for i in range(categories)]
    code_cat = [i % categories for i in range(codes)]
    rng.shuffle(code_cat)
    return [
        (f"theme-{cat_theme[c] + 1:02d}", f"category-{c + 1:02d}", f"code-{i + 1:03d}")
        for i, c in enumerate(code_cat)
    ]


def write_codebook(
    path: Path, triples: list[tuple[str, str, str]], planted: dict[str, tuple[str, ...]]
) -> None:
    tree: dict[str, dict[str, list[str]]] = {}
    for theme, cat, code in triples:
        tree.setdefault(theme, {}).setdefault(cat, []).append(code)
    lines = ["name: Synthetic study at scale (bench/scale_study.py)", "codes:"]
    for theme in sorted(tree):
        lines += [f"  - name: {theme}", "    codable: false", "    codes:"]
        for cat in sorted(tree[theme]):
            lines += [f"      - name: {cat}", "        codable: false", "        codes:"]
            for code in sorted(tree[theme][cat]):
                lines.append(f"          - name: {code}")
                lines.append(f"            description: Talk about {' and '.join(planted[code])}.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--transcripts", type=int, default=28)
    ap.add_argument("--sentences", type=int, default=500, help="participant sentences per transcript")
    ap.add_argument("--themes", type=int, default=10)
    ap.add_argument("--categories", type=int, default=55)
    ap.add_argument("--codes", type=int, default=230)
    ap.add_argument("--codings", type=int, default=753)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        for name in ("transcripts", "sentences", "codings"):
            if getattr(args, name) < 1:
                raise StudyError(f"--{name} {getattr(args, name)}: must be at least 1")
        if args.out.exists() and any(args.out.iterdir()):
            raise StudyError(f"{args.out}: exists and is not empty; give a new folder")
        rng = random.Random(args.seed)
        words = vocabulary()
        writer = Writer(rng, words)
        triples = codebook(rng, args.themes, args.categories, args.codes)
        rare = words[len(words) // 2 :]  # planted words: rare in the background text
        planted = {code: tuple(rng.sample(rare, 2)) for _, _, code in triples}
        # Zipf-like use: code i is drawn with weight 1 / (i + 1)
        order = [code for _, _, code in triples]
        rng.shuffle(order)
        uses = rng.choices(order, weights=[1.0 / (i + 1) for i in range(len(order))], k=args.codings)
        # every code used at least once, as in a codebook built from the data
        missing = [c for c in order if c not in uses]
        for i, code in enumerate(missing[: len(uses)]):
            uses[-1 - i] = code
        coded_per_transcript: list[list[str]] = [[] for _ in range(args.transcripts)]
        for code in uses:
            coded_per_transcript[rng.randrange(args.transcripts)].append(code)

        (args.out / "transcripts").mkdir(parents=True)
        write_codebook(args.out / "codebook.yaml", triples, planted)
        rows: list[tuple[str, int, int, str, str]] = []
        for t in range(args.transcripts):
            name = f"int{t + 1:02d}"
            speaker = f"P{t + 1:02d}"
            # participant turns of 3-8 sentences until --sentences; each coding takes 1-4 sentences of a turn
            turns: list[list[str]] = []
            left = args.sentences
            while left > 0:
                k = min(left, rng.randint(3, 8))
                turns.append([""] * k)
                left -= k
            slots = [(ti, si) for ti, turn in enumerate(turns) for si in range(len(turn))]
            passages: list[tuple[int, int, int, str]] = []  # turn, first, last sentence, code
            for code in coded_per_transcript[t]:
                ti, si = rng.choice(slots)
                last = min(len(turns[ti]) - 1, si + rng.randint(0, 3))
                passages.append((ti, si, last, code))
            plant: dict[tuple[int, int], list[str]] = {}
            for ti, first, last, code in passages:
                for s in range(first, last + 1):
                    plant.setdefault((ti, s), []).extend(planted[code][: 1 if s != first else 2])
            text = ""
            offsets: dict[tuple[int, int], tuple[int, int]] = {}
            for ti, turn in enumerate(turns):
                text += "Interviewer: " + writer.sentence() + "\n"
                text += f"{speaker}: "
                for si in range(len(turn)):
                    sent = writer.sentence(tuple(plant.get((ti, si), ())))
                    offsets[(ti, si)] = (len(text), len(text) + len(sent))
                    text += sent + (" " if si + 1 < len(turn) else "\n")
            (args.out / "transcripts" / f"{name}.txt").write_text(text, encoding="utf-8")
            for ti, first, last, code in passages:
                rows.append((name, offsets[(ti, first)][0], offsets[(ti, last)][1], code, "researcher"))
        with (args.out / "codings.csv").open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["source", "start", "end", "code", "coder"])
            out.writerows(rows)
        per_code = sorted((uses.count(c) for c in order), reverse=True)
        few = sum(1 for n in per_code if n <= 5)
        print(
            f"wrote {args.out}: {args.transcripts} transcripts of {args.sentences} participant sentences, "
            f"{len(triples)} codes ({few} used 1-5 times, the most used {per_code[0]}), {len(rows)} codings"
        )
    except StudyError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
