"""Peak memory of qualflow on each hostile file of issue 13, each case in a fresh process.

Generates the files in a temporary folder (nothing is committed): .docx and .qdpx whose member inflates
to 300 MiB of zeros or declares 4 GiB, and a 1.1 MB one-line transcript (read and segmented). Prints,
per case, the outcome (the first 120 characters of the error line) and the process's peak RSS
(``ru_maxrss``), beside a baseline process and a 3-line transcript (loading spaCy alone costs ~300 MiB).

    python bench/bombs.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = (
    "baseline",
    "txt-3-lines",
    "docx-300MiB",
    "docx-4GiB-declared",
    "qdpx-300MiB",
    "qdpx-4GiB-declared",
    "txt-1.1MB-one-line",
)


def make(case: str, tmp: Path) -> Path:
    from tests.unit.test_limits import (
        MIB,
        declare_size,
        docx_fixture,
        qdpx_fixture,
        qdpx_qde_name,
        rebuilt_with_bomb,
    )

    if case.startswith("docx"):
        size = 300 * MIB if "300" in case else 2 * MIB
        path = rebuilt_with_bomb(docx_fixture(), tmp, "word/document.xml", size, ".docx")
        if "declared" in case:
            declare_size(path, "word/document.xml", 0xFFFFFFF0)
        return path
    if case.startswith("qdpx"):
        src = qdpx_fixture()
        qde = qdpx_qde_name(src)
        size = 300 * MIB if "300" in case else 2 * MIB
        path = rebuilt_with_bomb(src.read_bytes(), tmp, qde, size, ".qdpx")
        if "declared" in case:
            declare_size(path, qde, 0xFFFFFFF0)
        return path
    from tests.unit.test_segment_long import one_line_transcript

    path = tmp / "pasted.txt"
    small = "Int: Why?\nMina: Because the budget was cut.\nInt: And then?\n"
    path.write_text(small if case == "txt-3-lines" else one_line_transcript(1_100_000), encoding="utf-8")
    return path


def run_case(case: str, path: Path) -> None:
    """In the child: read ``path`` as the CLI would, print the outcome and the peak RSS."""
    from pipeline.errors import InputError
    from pipeline.ingest import read_transcript
    from pipeline.refi.qdpx import import_qdpx
    from pipeline.segment import segment_text

    t = time.perf_counter()
    try:
        if case == "baseline":
            outcome = "imports only"
        elif case.startswith("qdpx"):
            import_qdpx(path)
            outcome = "read"
        else:
            parsed = read_transcript(path)
            segs = segment_text(parsed.text, parsed.turns)
            outcome = f"read, {len(segs)} segments"
    except InputError as exc:
        outcome = "InputError: " + str(exc).split(": ", 1)[1][:120]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{case:22s} {peak:7.1f} MiB  {time.perf_counter() - t:6.2f} s  {outcome}")


def main() -> None:
    if len(sys.argv) == 3:
        run_case(sys.argv[1], Path(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as d:
        for case in CASES:
            tmp = Path(d) / case
            tmp.mkdir()
            path = make(case, tmp) if case != "baseline" else tmp
            if case != "baseline":
                print(f"{'':22s} ({path.name}: {path.stat().st_size / 1024:.0f} KiB on disk)")
            subprocess.run([sys.executable, __file__, case, str(path)], check=True)


if __name__ == "__main__":
    main()
