"""Codebooks: the rules a codebook obeys, and its content hash (files: :mod:`pipeline.codebook_files`).

A codebook is an ordered list of :class:`~pipeline.domain.Code`; a code's ``parent`` is the name of
another code. :func:`validate_codebook` is the one gate every reader passes through: it checks the
rules below and returns the codes in *tree order* (each parent followed by its descendants, siblings
in the order given), the only order a nested format (YAML with nested ``codes:``, ``.qdc``) can
express. That is why a codebook keeps its :func:`codebook_hash` through YAML -> QDC -> CSV -> YAML.

Rules
-----
- names are non-empty, one line, unique ignoring case;
- every ``parent`` names a code of the codebook, and parents form no cycle;
- ``dimension`` is empty or one of :data:`pipeline.domain.PARADIGM_DIMENSIONS`;
- ``color`` is empty or ``#RRGGBB``; ``guid`` is empty or a GUID (``8-4-4-4-12`` hex digits, braces
  allowed, as REFI-QDA requires) and unique;
- examples are non-empty; no text holds a control character other than newline and tab (XML cannot
  carry them). Readers fold ``\\r\\n`` and ``\\r`` to ``\\n``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from pipeline.domain import PARADIGM_DIMENSIONS, Code, Codebook, sha256_text
from pipeline.errors import InputError, did_you_mean
from pipeline.fileio import fold_newlines

_COLOR_RE = re.compile(r"#[0-9A-Fa-f]{6}")


GUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}"
)


# Characters XML 1.0 cannot carry, plus CR (folded by the readers).
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_code(code: Code) -> Code:
    """Fold newlines in every text field and strip the names (what every reader does)."""
    return replace(
        code,
        name=code.name.strip(),
        description=fold_newlines(code.description),
        inclusion=fold_newlines(code.inclusion),
        exclusion=fold_newlines(code.exclusion),
        examples=[fold_newlines(e) for e in code.examples],
        parent=code.parent.strip() if code.parent is not None else None,
        dimension=code.dimension.strip() if code.dimension else None,
        color=code.color.strip() if code.color else None,
        guid=code.guid.strip() if code.guid else None,
    )


def _code_problems(code: Code, index: int) -> list[str]:
    if not code.name.strip():
        return [f"code #{index + 1} has an empty name; give every code a name"]
    label = f"code '{code.name}'"
    problems: list[str] = []
    if "\n" in code.name or "\t" in code.name or _BAD_CHAR_RE.search(code.name):
        problems.append(f"{label}: the name must be one line without control characters")
    if code.dimension is not None and code.dimension not in PARADIGM_DIMENSIONS:
        problems.append(
            f"{label}: unknown dimension '{code.dimension}'; choose one of {list(PARADIGM_DIMENSIONS)}"
        )
    if code.color is not None and not _COLOR_RE.fullmatch(code.color):
        problems.append(f"{label}: colour '{code.color}' is not #RRGGBB (for example #1f77b4)")
    if code.guid is not None and not GUID_RE.fullmatch(code.guid):
        problems.append(
            f"{label}: guid '{code.guid}' is not a GUID like 0f8fad5b-d9cb-469f-a165-70867728950e; "
            "remove it and qualflow derives one from the name"
        )
    for i, example in enumerate(code.examples):
        if not example.strip():
            problems.append(f"{label}: example {i + 1} is empty; remove it")
    fields = {
        "description": code.description,
        "inclusion": code.inclusion,
        "exclusion": code.exclusion,
        **{f"example {i + 1}": e for i, e in enumerate(code.examples)},
    }
    for field_name, text in fields.items():
        bad = _BAD_CHAR_RE.search(text)
        if bad:
            problems.append(
                f"{label}: {field_name} holds the control character U+{ord(bad.group()):04X}; remove it"
            )
    return problems


def _find_cycle(parent_of: dict[str, str | None]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in parent_of:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent_of and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = parent_of[node]
        if node is not None and state.get(node) == 1:
            cycle = path[path.index(node) :]
            return [*cycle, node]
        for done in path:
            state[done] = 2
    return None


def _tree_order(codes: list[Code]) -> list[Code]:
    children: dict[str | None, list[Code]] = {}
    for code in codes:
        children.setdefault(code.parent, []).append(code)
    ordered: list[Code] = []

    def visit(parent: str | None) -> None:
        for child in children.get(parent, []):
            ordered.append(child)
            visit(child.name)

    visit(None)
    return ordered


def validate_codebook(cb: Codebook, origin: str) -> Codebook:
    """Check a codebook and return it with its codes in tree order.

    Parameters
    ----------
    cb : Codebook
        The codebook as read.
    origin : str
        The file it came from, named in every message.

    Returns
    -------
    Codebook
        A new codebook, same codes, parents before their children (siblings keep their order).

    Raises
    ------
    InputError
        One line naming ``origin`` and each bad code: empty or duplicate names (ignoring case),
        unknown parents, cycles, unknown dimensions, colours that are not ``#RRGGBB``, bad guids.

    Examples
    --------
    >>> cb = Codebook([Code("b", parent="a"), Code("a", parent="b")])
    >>> validate_codebook(cb, "codebook.yaml")
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: codebook.yaml: codes form a cycle: b -> a -> b; give one of them no parent
    """
    problems: list[str] = []
    for i, code in enumerate(cb.codes):
        problems.extend(_code_problems(code, i))
    seen: dict[str, str] = {}
    for code in cb.codes:
        key = code.name.strip().lower()
        if not key:
            continue
        if key in seen:
            problems.append(
                f"code '{code.name}' appears twice (also as '{seen[key]}'; names are compared "
                "ignoring case); rename or merge one"
            )
        else:
            seen[key] = code.name
    guids: dict[str, str] = {}
    for code in cb.codes:
        if code.guid is None:
            continue
        gkey = code.guid.strip("{}").lower()
        if gkey in guids:
            problems.append(f"codes '{guids[gkey]}' and '{code.name}' share the guid {code.guid}")
        guids.setdefault(gkey, code.name)
    names = {c.name for c in cb.codes}
    for code in cb.codes:
        if code.parent is not None and code.parent not in names:
            problems.append(
                f"code '{code.name}' has parent '{code.parent}', which is not in the codebook"
                f"{did_you_mean(code.parent, names)}"
            )
    if not problems:
        cycle = _find_cycle({c.name: c.parent for c in cb.codes})
        if cycle is not None:
            problems.append(f"codes form a cycle: {' -> '.join(cycle)}; give one of them no parent")
    if len(problems) == 1:
        raise InputError(f"{origin}: {problems[0]}")
    if problems:
        raise InputError(f"{origin}: {len(problems)} problems: " + "; ".join(problems))
    return Codebook(codes=_tree_order(list(cb.codes)), name=cb.name)


def codebook_hash(cb: Codebook) -> str:
    """Hex SHA-256 of the codes' content, in order; guids and the codebook's name are left out.

    Two codebooks that read the same to a coder hash the same whatever file format they came from.

    >>> a = codebook_hash(Codebook([Code("trust", guid="0f8fad5b-d9cb-469f-a165-70867728950e")]))
    >>> a == codebook_hash(Codebook([Code("trust")], name="other"))
    True
    """
    rows = [
        [
            c.name,
            c.description,
            c.inclusion,
            c.exclusion,
            list(c.examples),
            c.parent,
            c.dimension,
            c.color,
            c.is_codable,
        ]
        for c in cb.codes
    ]
    return sha256_text(json.dumps(rows, ensure_ascii=False, separators=(",", ":")))
