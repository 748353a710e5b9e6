"""Shared helpers of the study benchmarks (``bench/study.py``, ``bench/discovery.py``).

A *study folder* holds ``transcripts/`` (any format qualflow ingests), one codebook
(``codebook.qdc``, ``codebook.yaml``/``.yml`` or ``codebook.csv``) and ``codings.csv``
(``source,start,end,code,coder``; offsets into the text qualflow stores for the source).

The benchmarks drive qualflow only through its command line, in subprocesses, as a new user would.
The only library calls are reading the codebook (to know each code's top-level category) and, in the
discovery benchmark, writing the reduced codebook; both are file-format helpers, not project access.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

TRANSCRIPT_SUFFIXES = (".txt", ".md", ".docx", ".vtt", ".srt")
CODEBOOK_NAMES = ("codebook.qdc", "codebook.yaml", "codebook.yml", "codebook.csv")
CODING_COLUMNS = ("source", "start", "end", "code", "coder")
QUIET_ENV = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
}


class StudyError(Exception):
    """A malformed study folder or a failed qualflow step: printed as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def progress(message: str) -> None:
    """One progress line on stderr (results go to stdout)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the study folder


@dataclass(frozen=True)
class Coding:
    """One human coding: ``source`` text ``[start, end)`` carries ``code``."""

    source: str
    start: int
    end: int
    code: str
    coder: str


@dataclass
class Study:
    """A study folder, checked: transcripts by source name, the codebook file and the codings."""

    root: Path
    transcripts: dict[str, Path]
    codebook_path: Path
    codings: list[Coding]
    coding_rows: list[dict[str, str]] = field(repr=False)
    coding_header: list[str] = field(repr=False)


def load_study(root: Path) -> Study:
    """Read and check a study folder; raises :class:`StudyError` naming what is wrong."""
    if not root.is_dir():
        raise StudyError(
            f"{root}: no such folder; expected a study folder with transcripts/, codebook, codings.csv"
        )
    tdir = root / "transcripts"
    if not tdir.is_dir():
        raise StudyError(f"{root}: no transcripts/ folder")
    transcripts: dict[str, Path] = {}
    for f in sorted(tdir.rglob("*")):
        if f.is_file() and f.suffix.lower() in TRANSCRIPT_SUFFIXES and not f.name.startswith("."):
            if f.stem in transcripts:
                raise StudyError(
                    f"{f}: two transcripts named {f.stem!r} (qualflow names a source by its file stem)"
                )
            transcripts[f.stem] = f
    if not transcripts:
        raise StudyError(f"{tdir}: no transcripts ({', '.join(TRANSCRIPT_SUFFIXES)})")
    books = [root / n for n in CODEBOOK_NAMES if (root / n).is_file()]
    if len(books) != 1:
        found = ", ".join(b.name for b in books) or "none"
        raise StudyError(f"{root}: expected exactly one of {', '.join(CODEBOOK_NAMES)} (found {found})")
    cpath = root / "codings.csv"
    if not cpath.is_file():
        raise StudyError(f"{root}: no codings.csv (columns {','.join(CODING_COLUMNS)})")
    with cpath.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        missing = [c for c in CODING_COLUMNS if c not in header]
        if missing:
            raise StudyError(f"{cpath} line 1: missing column(s) {missing}; need {','.join(CODING_COLUMNS)}")
        rows = list(reader)
    codings: list[Coding] = []
    for line, row in enumerate(rows, start=2):
        try:
            start, end = int(row["start"]), int(row["end"])
        except (TypeError, ValueError):
            raise StudyError(f"{cpath} line {line}: start/end must be whole numbers") from None
        if not 0 <= start < end:
            raise StudyError(f"{cpath} line {line}: need 0 <= start < end, got {start},{end}")
        if row["source"] not in transcripts:
            raise StudyError(f"{cpath} line {line}: source {row['source']!r} has no transcript in {tdir}")
        codings.append(Coding(row["source"], start, end, row["code"].strip(), row["coder"].strip()))
    if not codings:
        raise StudyError(f"{cpath}: no codings")
    return Study(root, transcripts, books[0], codings, rows, header)


def write_codings(path: Path, study: Study, keep: Iterable[int]) -> int:
    """Write the study's coding rows with the given indices (all columns kept); returns how many."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=study.coding_header, lineterminator="\n")
        writer.writeheader()
        for i in keep:
            writer.writerow(study.coding_rows[i])
            n += 1
    return n


def read_codebook_file(path: Path) -> Any:
    """The codebook through qualflow's own reader (``pipeline.codebook``; newer layout as fallback)."""
    try:
        from pipeline.codebook import read_codebook
    except ImportError:  # the package layout is being reorganised
        from pipeline.codebook_files import read_codebook  # type: ignore[import-not-found,no-redef]
    return read_codebook(path)


def top_categories(codebook: Any) -> dict[str, str]:
    """Code name -> name of its top-level ancestor (itself for a top-level code)."""
    parent = {c.name: c.parent for c in codebook.codes}
    out: dict[str, str] = {}
    for name in parent:
        top, seen = name, {name}
        while parent.get(top) is not None and parent[top] not in seen:
            top = str(parent[top])
            seen.add(top)
        out[name] = top
    return out


def leaf_codes(codebook: Any) -> list[str]:
    """Codable codes without children, in codebook order."""
    parents = {c.parent for c in codebook.codes if c.parent}
    return [c.name for c in codebook.codes if c.is_codable and c.name not in parents]


# --------------------------------------------------------------------------- the CLI


def default_qualflow_command() -> list[str]:
    """``python -m cli`` when a ``cli`` package with an ``app`` module exists, else ``python -m pipeline.cli``.

    The ``cli`` package counts only when it sits in the same checkout as the ``pipeline`` package this
    interpreter imports (with ``PYTHONPATH`` pointing at an older checkout, a newer editable install's
    ``cli`` would otherwise be paired with the older ``pipeline``).
    """
    try:
        cli = importlib.util.find_spec("cli")
        app = importlib.util.find_spec("cli.app") if cli and cli.submodule_search_locations else None
        lib = importlib.util.find_spec("pipeline")
    except (ImportError, ValueError):
        cli = app = lib = None
    same_checkout = (
        app is not None
        and cli is not None
        and cli.origin is not None
        and (
            lib is None
            or lib.origin is None
            or Path(lib.origin).parent.parent == Path(cli.origin).parent.parent
        )
    )
    return [sys.executable, "-m", "cli"] if same_checkout else [sys.executable, "-m", "pipeline.cli"]


def qualflow_command(arg: str | None) -> list[str]:
    """The command from ``--qualflow "CMD"`` (shell-split), or the default."""
    return shlex.split(arg) if arg else default_qualflow_command()


def qualflow_env() -> dict[str, str]:
    """This process's environment (PYTHONPATH included) with telemetry and Hub access switched off."""
    env = dict(os.environ)
    env.update(QUIET_ENV)
    return env


class Qualflow:
    """Runs ``qualflow --project DIR ...`` in subprocesses and keeps the seconds of every step."""

    def __init__(self, command: Sequence[str], project: Path, timings: dict[str, list[float]] | None = None):
        self.command = list(command)
        self.project = project
        self.timings: dict[str, list[float]] = timings if timings is not None else defaultdict(list)
        self.env = qualflow_env()

    def run(self, step: str, *args: str, project: bool = True, record: bool = True) -> str:
        """Run one command; returns stdout; raises :class:`StudyError` with qualflow's last error line."""
        cmd = [*self.command, *(["--project", str(self.project)] if project else []), *args]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise StudyError(f"`qualflow {' '.join(args)}` failed: {last}")
        if record:
            self.timings[step].append(seconds)
        return proc.stdout


# --------------------------------------------------------------------------- reading CLI output


_ROW = re.compile(r"^│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│")


def parse_segments_table(stdout: str) -> list[tuple[int, int, int]]:
    """``(index, start, end)`` of each row of ``qualflow segments SOURCE`` (a rich table)."""
    return [(int(m[1]), int(m[2]), int(m[3])) for line in stdout.splitlines() if (m := _ROW.match(line))]


def parse_table(stdout: str) -> list[list[str]]:
    """Rows of a rich box table; cells of wrapped continuation lines are joined with a space."""
    rows: list[list[str]] = []
    for line in stdout.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells and cells[0]:
            rows.append(cells)
        elif rows:
            rows[-1] = [f"{a} {b}".strip() if b else a for a, b in zip(rows[-1], cells, strict=False)]
    return rows


def read_qdpx_texts(path: Path) -> dict[str, str]:
    """Source name -> stored text, from a ``qualflow export qdpx`` archive."""
    ns = {"q": "urn:QDA-XML:project:1.0"}
    with zipfile.ZipFile(path) as zf:
        root = ET.fromstring(zf.read("project.qde"))
        out: dict[str, str] = {}
        for ts in root.iter(f"{{{ns['q']}}}TextSource"):
            ref = ts.get("plainTextPath", "")
            member = "Sources/" + ref.removeprefix("internal://")
            out[str(ts.get("name"))] = zf.read(member).decode("utf-8")
    return out


@dataclass(frozen=True)
class Suggestion:
    """One exported suggestion (a row of ``qualflow suggestions export``)."""

    source: str
    segment: int
    start: int
    end: int
    code: str
    score: float
    rank: int
    model: str
    kind: str


def read_suggestions(path: Path) -> list[Suggestion]:
    """Rows of a suggestions export CSV."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            Suggestion(
                r["source"],
                int(r["segment"]),
                int(r["start"]),
                int(r["end"]),
                r["code"],
                float(r["score"]),
                int(r["rank"]),
                r["model"],
                r["kind"],
            )
            for r in csv.DictReader(fh)
        ]


def overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    """Half-open spans ``[a0, a1)`` and ``[b0, b1)`` share at least one character."""
    return a0 < b1 and b0 < a1


def fmt_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable in a terminal)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
