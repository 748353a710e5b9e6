"""Convert the games-as-art data (``../shared/data/games-as-art``) into the study layout.

Usage::

    python bench/games_as_art_to_study.py ../shared/data/games-as-art OUT

writes ``OUT/transcripts/ga001.txt`` ... (one answer per file, its ``text`` exactly, ``\\r`` folded to
``\\n`` as qualflow does on ingest), ``OUT/codebook.csv`` (the 31 codes with their descriptions, in
qualflow's CSV codebook format, all top-level) and ``OUT/codings.csv`` (``source,start,end,code,coder``,
coder ``bopp``). Nothing is copied into the repository: OUT is wherever you say.

``coded_text`` marks passages as ``**passage**<sup>code; code</sup>``; a ``**...**`` pair without
``<sup>`` is plain emphasis. Outside the markup the characters are those of ``text`` except that
whitespace may differ, and in a few answers a word or final punctuation differs, so the markup-free
``coded_text`` is aligned with ``text`` character by character and each passage's ends are mapped
through the alignment; every located passage is checked against the marked one (equal up to whitespace,
or counted as approximate when at least 90% similar; anything worse stops the conversion). A .txt transcript without speaker labels is ingested by qualflow as one turn per blank-line
separated paragraph; the stored text is the file's text, so the offsets hold.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _study_common import StudyError, fail, progress  # noqa: E402

MARK = re.compile(r"\*\*((?:(?!\*\*).)+?)\*\*(?:<sup>(.*?)</sup>)?", re.DOTALL)
CODER = "bopp"


@dataclass(frozen=True)
class Span:
    """A coded passage located in ``text``."""

    start: int
    end: int
    codes: tuple[str, ...]


def _norm(s: str) -> str:
    return " ".join(s.split())


def _map_start(blocks: list[tuple[int, int, int]], pos: int) -> int:
    """Offset in ``text`` of plain position ``pos`` (or of the next matched character)."""
    for a, b, size in blocks:
        if pos < a + size:
            return b + max(0, pos - a)
    return blocks[-1][1] + blocks[-1][2] if blocks else 0


def _map_end(blocks: list[tuple[int, int, int]], pos: int) -> int:
    """Offset in ``text`` just after plain position ``pos - 1`` (or after the previous matched character)."""
    for a, b, size in reversed(blocks):
        if pos > a:
            return b + min(size, pos - a)
    return 0


def locate_passages(text: str, coded: str) -> tuple[list[Span], int]:
    """The coded passages of ``coded`` as offsets into ``text``, and how many match only approximately.

    The markup is removed from ``coded`` (keeping each passage's position), the result is aligned with
    ``text`` character by character (difflib), and each passage's ends are mapped through the alignment,
    then trimmed of surrounding whitespace. A passage whose located text differs from the passage by
    more than a few characters (similarity < 0.9) raises :class:`StudyError`; smaller differences
    (a changed word, a missing full stop) are counted.
    """
    from difflib import SequenceMatcher

    plain: list[str] = []
    marks: list[tuple[int, int, tuple[str, ...]]] = []
    pos = last = 0
    for m in MARK.finditer(coded):
        plain.append(coded[last : m.start()])
        pos += m.start() - last
        passage = m.group(1)
        plain.append(passage)
        if m.group(2) is not None:
            codes = tuple(c.strip() for c in m.group(2).split(";") if c.strip())
            if passage.strip() and codes:
                marks.append((pos, pos + len(passage), codes))
        pos += len(passage)
        last = m.end()
    plain.append(coded[last:])
    flat = "".join(plain)
    blocks = [
        tuple(b) for b in SequenceMatcher(None, flat, text, autojunk=False).get_matching_blocks() if b[2]
    ]
    spans: list[Span] = []
    inexact = 0
    for p0, p1, codes in marks:
        start, end = _map_start(blocks, p0), _map_end(blocks, p1)  # type: ignore[arg-type]
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        want = _norm(flat[p0:p1])
        got = _norm(text[start:end])
        if got != want:
            if end <= start or SequenceMatcher(None, want, got, autojunk=False).ratio() < 0.9:
                raise StudyError(f"passage {want[:60]!r} not found in its text (best: {got[:60]!r})")
            inexact += 1
        spans.append(Span(start, end, codes))
    return spans, inexact


def convert(src: Path, out: Path) -> tuple[int, int, int, int]:
    """Write the study folder; returns (texts, passages, codings, passages matched only approximately)."""
    import pandas as pd

    texts_csv, codes_csv = src / "coded_texts.csv", src / "code_descriptions.csv"
    for p in (texts_csv, codes_csv):
        if not p.is_file():
            raise StudyError(f"{p}: missing; SRC must be the games-as-art folder (see its SOURCE.md)")
    texts = pd.read_csv(texts_csv)
    descr = pd.read_csv(codes_csv)
    if list(texts.columns[:2]) != ["text", "coded_text"] or not {"code", "description"} <= set(descr.columns):
        raise StudyError(f"{src}: unexpected columns {list(texts.columns)} / {list(descr.columns)}")
    known = set(descr["code"])
    tdir = out / "transcripts"
    tdir.mkdir(parents=True, exist_ok=True)
    n_pass = n_cod = n_inexact = 0
    with (out / "codings.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["source", "start", "end", "code", "coder"])
        for i, (text, coded) in enumerate(zip(texts["text"], texts["coded_text"], strict=True), start=1):
            name = f"ga{i:03d}"
            text = str(text).replace("\r\n", "\n").replace("\r", "\n")
            try:
                spans, inexact = locate_passages(text, str(coded))
                n_inexact += inexact
            except StudyError as exc:
                raise StudyError(f"row {i} ({name}): {exc}") from None
            (tdir / f"{name}.txt").write_text(text, encoding="utf-8", newline="")
            for s in spans:
                n_pass += 1
                for code in dict.fromkeys(s.codes):
                    if code not in known:
                        raise StudyError(f"row {i}: code {code!r} is not in {codes_csv.name}")
                    writer.writerow([name, s.start, s.end, code, CODER])
                    n_cod += 1
    with (out / "codebook.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["name", "description"])
        for code, description in zip(descr["code"], descr["description"], strict=True):
            writer.writerow([str(code).strip(), str(description).strip()])
    return len(texts), n_pass, n_cod, n_inexact


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="the games-as-art folder (coded_texts.csv, code_descriptions.csv)")
    ap.add_argument("out", type=Path, help="output study folder (created)")
    args = ap.parse_args(argv)
    try:
        n_texts, n_pass, n_cod, n_inexact = convert(args.src, args.out)
    except StudyError as exc:
        fail(str(exc))
    progress(
        f"wrote {args.out}: {n_texts} transcripts, {n_pass} coded passages, {n_cod} codings "
        f"({n_inexact} passages differ from their text by a word or a character; offsets follow the text)"
    )


if __name__ == "__main__":
    main()
