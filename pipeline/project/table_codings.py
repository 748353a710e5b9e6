"""Codings read from the columns of utterance tables: a dataset that arrives as one row per utterance
with its code in a column (AnnoMI's ``main_therapist_behaviour``) is coded where it was ingested from.

Each table must be a current source, ingested from this same file (:func:`pipeline.ingest.read_transcript`
gives the text stored): row *i* with text is the source's turn *i*, and its code covers the turn's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.codebook import ambiguous_message, find_codes, not_codable_message
from pipeline.domain import Codebook, Coding
from pipeline.errors import InputError, did_you_mean
from pipeline.project.core import Project
from pipeline.store.queries import current_sources, require_codebook
from pipeline.text import counted

#: Cell values that mean "no code for this row" (compared ignoring case).
NO_CODE: tuple[str, ...] = ("", "n/a", "na", "none", "-", "null", "nan")
#: A cell may hold several codes separated by this.
SEPARATOR = ";"


def table_files(paths: Iterable[Path]) -> list[Path]:
    """``paths`` with each folder replaced by the tables in it (sorted, not hidden)."""
    from pipeline.ingest.tables import TABLE_SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(
                f
                for f in p.iterdir()
                if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES and not f.name.startswith((".", "~$"))
            )
        else:
            out.append(p)
    if not out:
        raise InputError(f"no .csv, .tsv or .xlsx tables in {[str(p) for p in paths]}")
    return out


def _column(keys: list[str], headers: list[str], wanted: str, path: Path, option: str) -> int:
    from pipeline.ingest.tables import header_key

    key = header_key(wanted)
    if key not in keys:
        found = ", ".join(repr(h) for h in headers if h)
        raise InputError(f"{path}: no column {wanted!r} in the header row (found {found}); fix {option}")
    return keys.index(key)


def codings_from_table(
    path: Path,
    source_text: str | None,
    codebook: Codebook,
    *,
    code_column: str,
    coder: str | None,
    coder_column: str | None,
    skip: Sequence[str],
    problems: list[tuple[Path, int, str]],
) -> list[Coding]:
    """The codings of one table (problems appended as ``(file, row, problem)``)."""
    from pipeline.ingest import read_transcript
    from pipeline.ingest.tables import (
        TEXT_COLUMNS,
        cell_text,
        find_column,
        header_key,
        header_row,
        read_table_rows,
        row_words,
    )

    name = path.stem
    if source_text is None:
        raise InputError(f"{path}: source {name!r} is not stored; `qualflow ingest {path}` first")
    parsed = read_transcript(path)
    if parsed.text != source_text:
        raise InputError(
            f"{path}: source {name!r} was ingested from another version of this table; "
            f"`qualflow ingest {path}` again first"
        )
    rows = read_table_rows(path)
    head = header_row(rows)
    assert head is not None  # read_transcript read it
    headers = [cell_text(h).strip() for h in head[1]]
    keys = [header_key(h) for h in head[1]]
    text_col = find_column(keys, TEXT_COLUMNS)
    assert text_col is not None
    code_col = _column(keys, headers, code_column, path, "--code-column")
    coder_col = _column(keys, headers, coder_column, path, "--coder-column") if coder_column else None
    skipped = {s.strip().casefold() for s in skip}
    turns = iter(parsed.turns)
    out: list[Coding] = []
    resolved: dict[str, str] = {}  # value -> its problem ("" when it names a codable code)
    codes: dict[str, str] = {}
    for n, cells in rows:
        if n <= head[0]:
            continue

        def cell(col: int | None, cells: list[object] = cells) -> str:
            return cell_text(cells[col] if col is not None and col < len(cells) else None).strip()

        if not row_words(cells, text_col):  # as parse_table counts turns
            continue
        turn = next(turns)
        who = cell(coder_col) if coder_col is not None else (coder or "")
        values = [v.strip() for v in cell(code_col).split(SEPARATOR)]
        values = [v for v in values if v.casefold() not in skipped]
        if values and not who:
            problems.append((path, n, f"no coder in column {headers[coder_col or 0]!r}"))
            continue
        for value in values:
            if value not in resolved:
                found = find_codes(value, codebook)
                if not found:
                    names = [c.name for c in codebook.codes]
                    resolved[value] = f"code '{value}' is not in the codebook{did_you_mean(value, names)}"
                elif len(found) > 1:
                    resolved[value] = ambiguous_message(value, found, codebook)
                elif not found[0].is_codable:
                    resolved[value] = not_codable_message(value, found[0], codebook)
                else:
                    resolved[value] = ""
                    codes[value] = found[0].name
            if resolved[value]:
                problems.append((path, n, resolved[value]))
                continue
            code = codes[value]
            out.append(Coding(name, turn.start, turn.end, code, who))
    return out


def import_table_codings(
    project: Project,
    paths: Sequence[Path],
    *,
    code_column: str,
    coder: str | None = None,
    coder_column: str | None = None,
    skip: Sequence[str] = NO_CODE,
) -> tuple[dict[str, int], int]:
    """Store the codes of column ``code_column`` of each table in ``paths`` (files or folders) as
    codings of the turns ingested from its rows, by ``coder`` (or the coder named in ``coder_column``).

    Returns the codings added per coder and how many were stored already. Every table and row is
    checked before anything is written; problems are one line (:class:`InputError`).
    """
    from pipeline.project.codings import add_codings

    if not coder and not coder_column:
        raise InputError("say who coded the tables: --coder NAME, or --coder-column COLUMN")
    files = table_files(paths)
    with project.store.transaction() as session:
        cb_row, codebook = require_codebook(session)
        rows = {r.name: r for r in current_sources(session)}
        codings: list[Coding] = []
        problems: list[tuple[Path, int, str]] = []
        for path in files:
            row = rows.get(path.stem)
            codings += codings_from_table(
                path,
                row.text if row is not None else None,
                codebook,
                code_column=code_column,
                coder=coder,
                coder_column=coder_column,
                skip=skip,
                problems=problems,
            )
        if problems:
            raise InputError("nothing imported: " + _problems_line(problems))
        if not codings:
            raise InputError(
                f"no codes in column {code_column!r} of {counted(len(files), 'table')} (cells "
                f"{', '.join(repr(s) for s in skip if s)} and empty ones mean no code); check --code-column"
            )
        added = add_codings(session, codings, rows, cb_row.id)
        return added, len(codings) - sum(added.values())


def _problems_line(problems: Sequence[tuple[Path, int, str]], limit: int = 6) -> str:
    """Problems as one line: by row within one table; across tables, each problem once with its count.

    >>> print(_problems_line([(Path("a.csv"), 2, "x"), (Path("a.csv"), 3, "x")]))
    a.csv: rows 2-3: x
    >>> print(_problems_line([(Path("a.csv"), 2, "x"), (Path("b.csv"), 5, "x"), (Path("b.csv"), 6, "y")]))
    x: 2 rows in 2 tables (first: a.csv row 2); y: 1 row in 1 table (first: b.csv row 6)
    """
    from pipeline.codings_csv import grouped_problems

    files = list(dict.fromkeys(p for p, _, _ in problems))
    if len(files) == 1:
        return f"{files[0]}: " + grouped_problems([f"row {n}: {m}" for _, n, m in problems], unit="row")
    by_problem: dict[str, list[tuple[Path, int]]] = {}
    for path, n, message in problems:
        by_problem.setdefault(message, []).append((path, n))
    parts = [
        f"{message}: {counted(len(where), 'row')} in {counted(len({p for p, _ in where}), 'table')} "
        f"(first: {where[0][0]} row {where[0][1]})"
        for message, where in list(by_problem.items())[:limit]
    ]
    if len(by_problem) > limit:
        parts.append(f"and {counted(len(by_problem) - limit, 'more problem')}")
    return "; ".join(parts)
