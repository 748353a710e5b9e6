"""QualCoder's own project file: read a ``.qda`` project (read-only) into sources, codebook and codings.

QualCoder keeps a project in a folder ``NAME.qda`` holding one SQLite database, ``data.qda``
(QualCoder's ``create_db``). The tables read here, with the columns qualflow needs (others are
optional and used when present)::

    source     (id, name, fulltext, mediapath, memo, owner, date)    a text when fulltext is set
    code_cat   (catid, name, memo, owner, date, supercatid)          categories, nested by supercatid
    code_name  (cid, name, memo, catid, owner, date, color)          codes, in a category by catid
    code_text  (cid, fid, seltext, pos0, pos1, owner, date, memo, avid, important)
    cases (caseid, name, ...), case_text (caseid, fid, ...)        optional: participants
    attribute_type (name, caseOrFile, ...), attribute (name, attr_type, value, id, ...)   optional
    code_image, code_av                                              counted as skipped selections

Categories become codes that are not codable, parents of their subcategories and codes; a category
and a code may share a name (QualCoder allows it), which qualflow keys by path
(:mod:`pipeline.codebook`). ``pos0``/``pos1`` are character offsets into ``fulltext`` and stay the
same (newlines are folded to ``\\n`` and the offsets moved with them, as for REFI-QDA). Coders are
the ``owner`` of each coding; a coding's memo comes along. A case's name becomes the
``participant`` metadata of the sources it holds (all of the source, or part of it), and file and
case attributes become metadata columns. Media sources (images, audio, video) are skipped and named,
and their codings counted.

The file is opened read-only (SQLite URI ``mode=ro``, ``trusted_schema`` off, at most
``qdpx_file_bytes``); nothing in it changes. A missing table or
column is one clear :class:`~pipeline.errors.InputError`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from pipeline.codebook import code_paths, join_path, validate_codebook
from pipeline.domain import Code, Codebook, Coding, Source, sha256_text
from pipeline.errors import InputError
from pipeline.fileio import fold_newlines
from pipeline.limits import QDPX_FILE_BYTES, check_file_size
from pipeline.refi.qdpx import QdpxProject, position_map

__all__ = ["REQUIRED_COLUMNS", "database_path", "read_qualcoder"]

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "source": ("id", "name", "fulltext"),
    "code_cat": ("catid", "name", "supercatid"),
    "code_name": ("cid", "name", "catid"),
    "code_text": ("cid", "fid", "pos0", "pos1"),
}


def database_path(path: str | os.PathLike[str]) -> Path:
    """The SQLite file of a QualCoder project: ``PATH/data.qda`` for a project folder, else ``PATH``."""
    p = Path(path)
    if p.is_dir():
        inner = p / "data.qda"
        if not inner.is_file():
            raise InputError(f"{p}: no data.qda inside; is it a QualCoder project folder (NAME.qda)?")
        return inner
    if not p.is_file():
        raise InputError(f"{p}: no such file or folder")
    return p


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in con.execute(f"PRAGMA table_info('{table}')")]


def _rows(
    con: sqlite3.Connection, table: str, wanted: tuple[str, ...], have: list[str]
) -> list[dict[str, Any]]:
    cols = [c for c in wanted if c in have]
    cur = con.execute(f"SELECT {', '.join(cols)} FROM {table}")  # names from a fixed list
    return [dict(zip(cols, row, strict=True)) for row in cur]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def read_qualcoder(path: str | os.PathLike[str]) -> QdpxProject:
    """Read a QualCoder project (folder ``NAME.qda`` or its ``data.qda``), read-only.

    Returns
    -------
    QdpxProject
        Sources (``format="qualcoder"``), the codebook (categories not codable), text codings with
        their owners as coders, the coders, ``origin`` ``QualCoder (database version N)``, skipped
        media sources and the number of their codings.

    Raises
    ------
    InputError
        Not a SQLite file, a missing table or column (one line naming it), positions outside their
        text, codings of unknown codes or sources, and every rule of
        :func:`pipeline.codebook.validate_codebook`.
    """
    db = database_path(path)
    origin = str(path)
    check_file_size(db, QDPX_FILE_BYTES)
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise InputError(f"{origin}: cannot open the QualCoder database ({err})") from None
    try:
        con.execute("PRAGMA trusted_schema = OFF")  # no functions from the file's own schema
        return _read(con, origin)
    except sqlite3.DatabaseError as err:
        raise InputError(f"{origin}: not a QualCoder project database ({err})") from None
    finally:
        con.close()


def _read(con: sqlite3.Connection, origin: str) -> QdpxProject:
    tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    have: dict[str, list[str]] = {t: _columns(con, t) for t in tables}
    for table, needed in REQUIRED_COLUMNS.items():
        if table not in tables:
            raise InputError(f"{origin}: not a QualCoder project: the database has no table '{table}'")
        missing = [c for c in needed if c not in have[table]]
        if missing:
            raise InputError(
                f"{origin}: table '{table}' has no column {', '.join(repr(m) for m in missing)}; "
                "this QualCoder version is not supported (open and save the project in QualCoder 3)"
            )
    version = ""
    if "project" in tables and "databaseversion" in have["project"]:
        row = con.execute("SELECT databaseversion FROM project").fetchone()
        version = _text(row[0]) if row else ""
    label = f"QualCoder (database {version})" if version else "QualCoder"

    # codebook: categories (not codable) and codes, parents by path
    cats = _rows(con, "code_cat", ("catid", "name", "memo", "supercatid"), have["code_cat"])
    by_cat = {c["catid"]: c for c in cats}

    def cat_path(catid: Any) -> list[str] | None:
        names: list[str] = []
        seen: set[Any] = set()
        while catid is not None and catid in by_cat and catid not in seen:
            seen.add(catid)
            names.append(_text(by_cat[catid]["name"]).strip())
            catid = by_cat[catid]["supercatid"]
        return names[::-1] or None

    codes: list[Code] = []
    for cat in cats:
        parent = cat_path(cat["supercatid"])
        codes.append(
            Code(
                name=_text(cat["name"]).strip(),
                description=fold_newlines(_text(cat.get("memo"))),
                parent=join_path(parent) if parent else None,
                is_codable=False,
            )
        )
    code_rows = _rows(con, "code_name", ("cid", "name", "memo", "catid", "color"), have["code_name"])
    code_full_path: dict[Any, str] = {}
    for row in code_rows:
        parent = cat_path(row["catid"])
        name = _text(row["name"]).strip()
        color = _text(row.get("color")).strip() or None
        codes.append(
            Code(
                name=name,
                description=fold_newlines(_text(row.get("memo"))),
                parent=join_path(parent) if parent else None,
                color=color if color and len(color) == 7 and color.startswith("#") else None,
            )
        )
        code_full_path[row["cid"]] = join_path([*(parent or []), name])
    codebook = validate_codebook(Codebook(codes=codes, name=Path(origin).stem), origin)
    key_of_path = {full: key for key, full in code_paths(codebook).items()}

    # sources
    src_rows = _rows(con, "source", ("id", "name", "fulltext", "mediapath", "memo"), have["source"])
    sources: list[Source] = []
    texts: dict[Any, tuple[str, str, list[int] | None, int]] = {}  # id -> (name, text, map, units)
    skipped: list[str] = []
    media: dict[Any, str] = {}
    for row in src_rows:
        name = _text(row["name"]).strip()
        raw = row["fulltext"]
        if raw is None or not _text(raw).strip():
            media[row["id"]] = name
            continue
        raw = _text(raw)
        text = fold_newlines(raw)
        mapping, units = position_map(raw, "characters")
        texts[row["id"]] = (name, text, mapping, units)
        meta = {"qualcoder_id": str(row["id"])}
        if _text(row.get("memo")).strip():
            meta["memo"] = fold_newlines(_text(row.get("memo"))).strip()
        sources.append(Source(name, text, [], "qualcoder", content_hash=sha256_text(text), metadata=meta))
    by_id = {int(s.metadata["qualcoder_id"]): s for s in sources}
    _apply_cases_and_attributes(con, tables, have, by_id)
    for s in sources:
        del s.metadata["qualcoder_id"]

    # codings
    wanted = ("cid", "fid", "pos0", "pos1", "owner", "date", "memo")
    codings: list[Coding] = []
    users: list[str] = []
    skipped_selections = 0
    for row in _rows(con, "code_text", wanted, have["code_text"]):
        if row["fid"] not in texts:
            if row["fid"] in media:
                skipped_selections += 1
                continue
            raise InputError(
                f"{origin}: a text coding refers to source id {row['fid']}, which is not in the project"
            )
        name, text, mapping, units = texts[row["fid"]]
        full = code_full_path.get(row["cid"])
        if full is None:
            raise InputError(
                f"{origin}: a coding in '{name}' refers to code id {row['cid']}, which is not in the project"
            )
        try:
            start, end = int(row["pos0"]), int(row["pos1"])
        except (TypeError, ValueError):
            raise InputError(
                f"{origin}: a coding in '{name}' has positions {row['pos0']!r}-{row['pos1']!r}"
            ) from None
        if not 0 <= start < end <= units:
            raise InputError(
                f"{origin}: a coding in '{name}' spans {start}-{end}, outside its text ({units} characters)"
            )
        if mapping is not None:
            start, end = mapping[start], mapping[end]
        coder = _text(row.get("owner")).strip() or "unknown"
        if coder not in users:
            users.append(coder)
        memo = fold_newlines(_text(row.get("memo"))).strip() or None
        created = _text(row.get("date")).strip() or None
        codings.append(Coding(name, start, end, key_of_path[full], coder, "imported", created, memo))
    for table in ("code_image", "code_av"):
        if table in tables:
            skipped_selections += int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    skipped.extend(f"media source '{name}'" for name in media.values())
    return QdpxProject(
        sources=sources,
        codebook=codebook,
        codings=codings,
        users=users,
        origin=label,
        skipped=skipped,
        skipped_selections=skipped_selections,
    )


def _apply_cases_and_attributes(
    con: sqlite3.Connection, tables: set[str], have: dict[str, list[str]], by_id: dict[int, Source]
) -> None:
    """Cases -> ``participant``; file attributes and case attributes -> metadata columns."""
    case_sources: dict[Any, list[int]] = {}
    if (
        {"cases", "case_text"} <= tables
        and {"caseid", "name"} <= set(have["cases"])
        and {
            "caseid",
            "fid",
        }
        <= set(have["case_text"])
    ):
        names = {r[0]: _text(r[1]).strip() for r in con.execute("SELECT caseid, name FROM cases")}
        for caseid, fid in con.execute("SELECT caseid, fid FROM case_text"):
            if fid in by_id and caseid in names:
                case_sources.setdefault(caseid, [])
                if fid not in case_sources[caseid]:
                    case_sources[caseid].append(fid)
                by_id[fid].metadata.setdefault("participant", names[caseid])
    if "attribute" in tables and {"name", "attr_type", "value", "id"} <= set(have["attribute"]):
        for name, kind, value, owner_id in con.execute("SELECT name, attr_type, value, id FROM attribute"):
            key, val = _text(name).strip(), _text(value).strip()
            if not key or not val:
                continue
            targets = (
                [owner_id] if kind == "file" else case_sources.get(owner_id, []) if kind == "case" else []
            )
            for fid in targets:
                if fid in by_id:
                    by_id[fid].metadata.setdefault(key, val)
