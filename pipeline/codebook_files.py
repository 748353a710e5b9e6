"""Codebook files: YAML, CSV and REFI-QDA ``.qdc``, read and written through :func:`read_codebook` /
:func:`write_codebook` by suffix. Every reader ends in :func:`pipeline.codebook.validate_codebook`.

File formats
------------
YAML (``.yaml``/``.yml``)::

    name: care study
    codes:
      - name: trust
        description: The participant relies on the care team.
        inclusion: explicit statements of reliance
        examples: ["I know they will call me back"]
        dimension: context
        color: "#1f77b4"
        codes:                      # children: hierarchy by nesting ...
          - name: trust-building
      - name: distrust
        parent: trust               # ... and/or by a parent: key

    keys of a code: name, description, inclusion, exclusion, examples, dimension, color, guid,
    codable (default true), parent, codes.

CSV (``.csv``): one code a row; columns ``name,parent,description,inclusion,exclusion,examples,
dimension,color,codable,guid`` (only ``name`` is required; ``examples`` joined by ``" | "``;
``codable`` is ``true``/``false``). ``parent`` (in YAML too) names the parent by its name, or, when
several codes have that name, by its path (``Barriers/Other``, ``/`` in a name written ``\\/``) or
guid; the export writes the path where a name is not unique (see :mod:`pipeline.codebook`). ``.qdc``: see :mod:`pipeline.refi.qdc`.

Every writer writes atomically (a temporary file in the same folder, then :func:`os.replace`), so a
failure leaves the previous file, or nothing, never half a file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.codebook import clean_code, join_path, validate_codebook
from pipeline.domain import Code, Codebook
from pipeline.errors import InputError
from pipeline.fileio import csv_unsafe, csv_writer, write_atomic
from pipeline.limits import CODEBOOK_FILE_BYTES, YAML_ALIASES, check_file_size, exceeded

CSV_COLUMNS: tuple[str, ...] = (
    "name",
    "parent",
    "description",
    "inclusion",
    "exclusion",
    "examples",
    "dimension",
    "color",
    "codable",
    "guid",
)


EXAMPLE_SEPARATOR = " | "


YAML_CODE_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "inclusion",
    "exclusion",
    "examples",
    "dimension",
    "color",
    "guid",
    "codable",
    "parent",
    "codes",
)


_TRUE = ("true", "1", "yes")


_FALSE = ("false", "0", "no")


def _yaml_text(value: Any, where: str, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(
            f"{where}: {key} {value!r} is not text; put it in quotes (for example {key}: '{value}')"
        )
    return value


def _yaml_code(
    item: Any, origin: str, ancestors: list[str] | None, out: list[Code], default_line: int
) -> None:
    if not isinstance(item, dict):
        raise InputError(
            f"{origin} line {default_line}: each entry under codes: must be a mapping with name: ...; "
            f"got {item!r}"
        )
    line = item.get("__line__", default_line)
    where = f"{origin} line {line}"
    name = _yaml_text(item.get("name"), where, "name").strip()
    label = f"code '{name}'" if name else "a code without a name"
    unknown = [k for k in item if k not in YAML_CODE_KEYS and k not in ("__line__", "__lines__")]
    if unknown:
        raise InputError(
            f"{where}: {label}: unknown key '{unknown[0]}'; valid keys are {list(YAML_CODE_KEYS)}"
        )
    if not name:
        raise InputError(f"{where}: a code has an empty or missing name; give it name: ...")
    parent = join_path(ancestors) if ancestors else None  # the nesting names the parent by its path
    declared = item.get("parent")
    if declared is not None:
        declared = _yaml_text(declared, where, "parent").strip()
        if ancestors and declared not in (parent, ancestors[-1]):
            raise InputError(
                f"{where}: code '{name}' is nested under '{ancestors[-1]}' but says parent: '{declared}'; "
                "keep one of the two"
            )
        if ancestors:
            declared = parent
    examples = item.get("examples") or []
    if isinstance(examples, str):
        examples = [examples]
    if not isinstance(examples, list):
        raise InputError(f"{where}: code '{name}': examples must be a list of texts")
    codable = item.get("codable", True)
    if not isinstance(codable, bool):
        raise InputError(f"{where}: code '{name}': codable must be true or false, not {codable!r}")
    dimension = _yaml_text(item.get("dimension"), where, "dimension").strip() or None
    color = _yaml_text(item.get("color"), where, "color").strip() or None
    guid = _yaml_text(item.get("guid"), where, "guid").strip() or None
    out.append(
        Code(
            name=name,
            description=_yaml_text(item.get("description"), where, "description"),
            inclusion=_yaml_text(item.get("inclusion"), where, "inclusion"),
            exclusion=_yaml_text(item.get("exclusion"), where, "exclusion"),
            examples=[_yaml_text(e, where, "example") for e in examples],
            parent=declared if declared is not None else parent,
            dimension=dimension,
            color=color,
            guid=guid,
            is_codable=codable,
        )
    )
    children = item.get("codes") or []
    if not isinstance(children, list):
        raise InputError(f"{where}: code '{name}': codes: must be a list of codes")
    lines = item.get("__lines__") or []
    for i, child in enumerate(children):
        _yaml_code(child, origin, [*(ancestors or []), name], out, lines[i] if i < len(lines) else line)


def read_codebook_yaml(path: str | os.PathLike[str]) -> Codebook:
    """Read a YAML codebook (top-level ``name:`` and ``codes:``; children nested or by ``parent:``).

    Parameters
    ----------
    path : path-like
        The ``.yaml``/``.yml`` file.

    Returns
    -------
    Codebook
        Validated, in tree order.

    Raises
    ------
    InputError
        Malformed YAML (file and line), unknown keys (key and code), non-text values, and every rule
        of :func:`validate_codebook`.
    """
    import yaml

    origin = str(path)

    class _LineLoader(yaml.SafeLoader):
        """SafeLoader that records each mapping's line and refuses alias expansion past
        :data:`~pipeline.limits.YAML_ALIASES` while composing, before anything is expanded (a
        "billion laughs" file is refused in constant memory)."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._alias_limit = YAML_ALIASES.value
            self._weights: dict[int, int] = {}  # id(node) -> aliases inside it, expanded
            self._open: list[int] = [0]  # aliases so far in each node being composed, expanded

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                node = super().compose_node(parent, index)
                self._open[-1] += 1 + self._weights.get(id(node), 0)
                expanded = sum(self._open)
                if expanded > self._alias_limit:
                    raise exceeded(origin, YAML_ALIASES, expanded)
                return node
            self._open.append(0)
            node = super().compose_node(parent, index)
            inner = self._open.pop()
            if inner:
                self._weights[id(node)] = inner
                self._open[-1] += inner
            return node

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            mapping = super().construct_mapping(node, deep=deep)
            mapping["__line__"] = node.start_mark.line + 1
            for key, value in node.value:  # the line of each entry under codes:, mapping or not
                if key.value == "codes" and isinstance(value, yaml.SequenceNode):
                    mapping["__lines__"] = [item.start_mark.line + 1 for item in value.value]
            return mapping

    text = _read_text(path)
    try:
        loader = _LineLoader(text)  # a SafeLoader subclass
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(
            f"{origin}{line}: not valid YAML ({err.problem or err.context}); check the indentation "
            "and quote texts that contain ': ' or start with a special character"
        ) from None
    except yaml.YAMLError as err:
        raise InputError(f"{origin}: not valid YAML ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise InputError(f"{origin}: expected a mapping with name: and codes: (a list of codes)")
    unknown = [k for k in data if k not in ("name", "codes", "__line__", "__lines__")]
    if unknown:
        raise InputError(f"{origin}: unknown top-level key '{unknown[0]}'; valid keys are ['name', 'codes']")
    name = _yaml_text(data.get("name"), origin, "name").strip() or Path(path).stem
    codes: list[Code] = []
    lines = data.get("__lines__") or []
    for i, item in enumerate(data["codes"]):
        _yaml_code(item, origin, None, codes, lines[i] if i < len(lines) else data.get("__line__", 1))
    return validate_codebook(Codebook(codes=[clean_code(c) for c in codes], name=name), origin)


def _yaml_dump(data: Any) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(
        data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=False, width=100
    )


def codebook_to_yaml(cb: Codebook) -> str:
    """The YAML text :func:`write_codebook_yaml` writes (children nested, empty fields left out)."""
    cb = validate_codebook(cb, "codebook to write")
    children: dict[str | None, list[Code]] = {}
    for code in cb.codes:
        children.setdefault(code.parent, []).append(code)

    def entry(code: Code) -> dict[str, Any]:
        item: dict[str, Any] = {"name": code.title}
        for key in ("description", "inclusion", "exclusion"):
            if getattr(code, key):
                item[key] = getattr(code, key)
        if code.examples:
            item["examples"] = list(code.examples)
        for key in ("dimension", "color", "guid"):
            if getattr(code, key) is not None:
                item[key] = getattr(code, key)
        if not code.is_codable:
            item["codable"] = False
        if code.name in children:
            item["codes"] = [entry(c) for c in children[code.name]]
        return item

    return _yaml_dump({"name": cb.name, "codes": [entry(c) for c in children.get(None, [])]})


def write_codebook_yaml(cb: Codebook, path: str | os.PathLike[str]) -> None:
    """Write ``cb`` as YAML with nested children (atomically)."""
    write_atomic(path, codebook_to_yaml(cb).encode("utf-8"))


def _read_text(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 file (with or without BOM), newlines kept as they are."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path} line {line}: not UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
        ) from None


def _parse_bool(value: str, where: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE or low == "":
        return True
    if low in _FALSE:
        return False
    raise InputError(f"{where}: codable must be true or false, not '{value}'")


def read_codebook_csv(path: str | os.PathLike[str]) -> Codebook:
    """Read a CSV codebook: one code a row, hierarchy by the ``parent`` column.

    Parameters
    ----------
    path : path-like
        UTF-8 CSV (BOM allowed) with a header; only ``name`` is required, see :data:`CSV_COLUMNS`.

    Returns
    -------
    Codebook
        Validated, in tree order; its name is the file's stem.

    Raises
    ------
    InputError
        Unknown or missing columns, rows with extra cells or an empty name (naming the CSV line),
        and every rule of :func:`validate_codebook`.
    """
    origin = str(path)
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{origin}: the file is empty; expected a header {','.join(CSV_COLUMNS)}") from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise InputError(
            f"{origin} line 1: unknown column '{unknown[0]}'; valid columns are {list(CSV_COLUMNS)}"
        )
    if "name" not in header:
        raise InputError(f"{origin} line 1: missing column 'name'; the header needs at least name")
    codes: list[Code] = []
    line = reader.line_num
    for cells in reader:
        start, line = line + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        where = f"{origin} line {start}"
        if len(cells) > len(header):
            raise InputError(f"{where}: {len(cells)} cells but the header has {len(header)} columns")
        row = dict(zip(header, map(csv_unsafe, cells), strict=False))  # undo the export's formula guard
        name = row.get("name", "").strip()
        if not name:
            raise InputError(f"{where}: empty name; every row needs a code name")
        examples = row.get("examples", "")
        codes.append(
            Code(
                name=name,
                description=row.get("description", ""),
                inclusion=row.get("inclusion", ""),
                exclusion=row.get("exclusion", ""),
                examples=[e.strip() for e in examples.split(EXAMPLE_SEPARATOR.strip())]
                if examples.strip()
                else [],
                parent=row.get("parent", "").strip() or None,
                dimension=row.get("dimension", "").strip() or None,
                color=row.get("color", "").strip() or None,
                guid=row.get("guid", "").strip() or None,
                is_codable=_parse_bool(row.get("codable", ""), where),
            )
        )
    return validate_codebook(Codebook(codes=[clean_code(c) for c in codes], name=Path(path).stem), origin)


def codebook_to_csv(cb: Codebook) -> str:
    """The CSV text :func:`write_codebook_csv` writes (all of :data:`CSV_COLUMNS`, ``\\n`` line ends)."""
    cb = validate_codebook(cb, "codebook to write")
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for code in cb.codes:
        for example in code.examples:
            if "|" in example or example != example.strip():
                raise InputError(
                    f"code '{code.name}': example {example!r} holds '|' or surrounding spaces, which "
                    "the CSV format cannot keep (it joins examples with ' | '); write YAML or .qdc instead"
                )
        writer.writerow(
            [
                code.title,
                code.parent or "",  # the parent's key: its path where its name is not unique
                code.description,
                code.inclusion,
                code.exclusion,
                EXAMPLE_SEPARATOR.join(code.examples),
                code.dimension or "",
                code.color or "",
                "true" if code.is_codable else "false",
                code.guid or "",
            ]
        )
    return out.getvalue()


def write_codebook_csv(cb: Codebook, path: str | os.PathLike[str]) -> None:
    """Write ``cb`` as CSV (atomically); raises InputError if an example holds ``|``."""
    write_atomic(path, codebook_to_csv(cb).encode("utf-8"))


def _read_qdc(path: str | os.PathLike[str]) -> Codebook:
    from pipeline.refi.qdc import read_qdc

    return read_qdc(path)


def _write_qdc(cb: Codebook, path: str | os.PathLike[str]) -> None:
    from pipeline.refi.qdc import write_qdc

    write_qdc(cb, path)


Reader = Callable[[str | os.PathLike[str]], Codebook]


Writer = Callable[[Codebook, str | os.PathLike[str]], None]


_FORMATS: dict[str, tuple[Reader, Writer]] = {
    ".yaml": (read_codebook_yaml, write_codebook_yaml),
    ".yml": (read_codebook_yaml, write_codebook_yaml),
    ".csv": (read_codebook_csv, write_codebook_csv),
    ".qdc": (_read_qdc, _write_qdc),
}


def supported_suffixes() -> list[str]:
    """The file suffixes :func:`read_codebook` and :func:`write_codebook` accept."""
    return list(_FORMATS)


def _format(path: str | os.PathLike[str]) -> tuple[Reader, Writer]:
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise InputError(
            f"{path}: unknown codebook format '{suffix or '(no suffix)'}'; use one of {supported_suffixes()}"
        )
    return _FORMATS[suffix]


def read_codebook(path: str | os.PathLike[str]) -> Codebook:
    """Read a codebook, choosing the reader by suffix (``.yaml``, ``.yml``, ``.csv``, ``.qdc``); a file
    over :data:`~pipeline.limits.CODEBOOK_FILE_BYTES` is refused before it is read."""
    reader = _format(path)[0]
    check_file_size(path, CODEBOOK_FILE_BYTES)
    return reader(path)


def write_codebook(cb: Codebook, path: str | os.PathLike[str]) -> None:
    """Write a codebook, choosing the writer by suffix (``.yaml``, ``.yml``, ``.csv``, ``.qdc``)."""
    _format(path)[1](cb, path)
