"""Codebooks: the rules a codebook obeys, and its content hash (files: :mod:`pipeline.codebook_files`).

A codebook is an ordered list of :class:`~pipeline.domain.Code`; a code's ``parent`` is the key of
another code.

Code identity
-------------
A code is identified by its guid and by its *path*, the names from the top down joined by ``/``
(``Barriers/Other``); a ``/`` inside a name is written ``\\/`` and a backslash ``\\\\``
(:func:`join_path`, :func:`split_path`). Its *key* (``Code.name`` of a validated codebook, the string
codings and suggestions store) is its name when no other code has the same name ignoring case, and its
path otherwise; so a codebook without repeated names keys every code by its name, as before. Wherever
a person names a code (codings CSV, a codebook's ``parent``, ``--codes``, the recode box),
:func:`find_codes` / :func:`resolve_code` accept a key, a unique name, a path or a guid; an ambiguous
name is refused with its candidates listed by path (:func:`ambiguous_message`). :func:`validate_codebook` is the one gate every reader passes through: it checks the
rules below and returns the codes in *tree order* (each parent followed by its descendants, siblings
in the order given), the only order a nested format (YAML with nested ``codes:``, ``.qdc``) can
express. That is why a codebook keeps its :func:`codebook_hash` through YAML -> QDC -> CSV -> YAML.

Rules
-----
- names are non-empty, one line, unique among siblings ignoring case (the same name may sit under
  several parents, and a category may share its name with one of its codes);
- every ``parent`` names a code of the codebook (by name, path or guid), and parents form no cycle;
- ``dimension`` is empty or one of :data:`pipeline.domain.PARADIGM_DIMENSIONS`;
- ``color`` is empty or ``#RRGGBB``; ``guid`` is empty or a GUID (``8-4-4-4-12`` hex digits, braces
  allowed, as REFI-QDA requires) and unique;
- examples are non-empty; no text holds a control character other than newline and tab (XML cannot
  carry them). Readers fold ``\\r\\n`` and ``\\r`` to ``\\n``.

One module, one concern: the rules a codebook obeys (names, paths, parents, guids) and its hash;
every reader and writer relies on them, so they are stated once, here.
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
    name = code.title
    if not name.strip():
        return [f"code #{index + 1} has an empty name; give every code a name"]
    label = f"code '{name}'"
    problems: list[str] = []
    if "\n" in name or "\t" in name or _BAD_CHAR_RE.search(name):
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


def escape_name(name: str) -> str:
    r"""A name as one segment of a code path: ``\`` and ``/`` get a leading ``\``.

    >>> escape_name("yes/no")
    'yes\\/no'
    """
    return name.replace("\\", "\\\\").replace("/", "\\/")


def join_path(names: list[str]) -> str:
    r"""The path of a code from its ancestors' names and its own: ``theme/Other``.

    >>> join_path(["Barriers", "yes/no"])
    'Barriers/yes\\/no'
    """
    return "/".join(escape_name(n) for n in names)


def split_path(ref: str) -> list[str]:
    r"""The names in a code path; ``\/`` is a ``/`` inside a name, ``\\`` a backslash.

    >>> split_path("Barriers/yes\\/no")
    ['Barriers', 'yes/no']
    >>> split_path("Other")
    ['Other']
    """
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(ref):
        ch = ref[i]
        if ch == "\\" and i + 1 < len(ref) and ref[i + 1] in "/\\":
            current.append(ref[i + 1])
            i += 2
            continue
        if ch == "/":
            segments.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    segments.append("".join(current).strip())
    return segments


def _fold(text: str) -> str:
    return text.strip().casefold()


def _guid_key(guid: str) -> str:
    return guid.strip().strip("{}").lower()


def _find_cycle(parent_of: dict[int, int | None]) -> list[int] | None:
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    for start in parent_of:
        path: list[int] = []
        node: int | None = start
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


def _match_path(
    segments: list[str], paths: list[list[str] | None], titles: list[str], final: bool
) -> list[int] | None:
    """Codes whose path ends with ``segments`` (a full path from the top wins over a shorter suffix);
    ``None`` while a code of that name has no known path yet (unless ``final``)."""
    want = [_fold(s) for s in segments]
    n = len(want)
    if not final and any(p is None and _fold(titles[j]) == want[-1] for j, p in enumerate(paths)):
        return None
    found = [
        j for j, p in enumerate(paths) if p is not None and len(p) >= n and [_fold(x) for x in p[-n:]] == want
    ]
    exact = [j for j in found if len(paths[j] or []) == n]
    return exact if len(exact) == 1 else found


def validate_codebook(cb: Codebook, origin: str) -> Codebook:
    """Check a codebook and return it with its codes in tree order and named by their keys.

    A code's name must be unique among its siblings (ignoring case), not in the whole codebook: every
    QDA tool lets "Other" sit under several themes, and QualCoder lets a category share its name with
    a code. A ``parent`` may name the parent by its name (when no other code has it), its path
    (``theme/Other``; a unique ending of the path is enough) or its guid. The result names each code
    by its *key* (see :class:`pipeline.domain.Code`): its name when the name is unique in the
    codebook ignoring case, otherwise its path, with ``given_name`` keeping the name; ``parent``
    holds the parent's key.

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
        One line naming ``origin`` and each bad code: empty names, names twice under one parent
        (ignoring case), unknown or ambiguous parents (listing the candidates by path), cycles,
        unknown dimensions, colours that are not ``#RRGGBB``, bad guids.

    Examples
    --------
    >>> cb = Codebook([Code("b", parent="a"), Code("a", parent="b")])
    >>> validate_codebook(cb, "codebook.yaml")
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: codebook.yaml: codes form a cycle: b -> a -> b; give one of them no parent
    >>> book = validate_codebook(Codebook([Code("A"), Code("Other", parent="A"), Code("B"),
    ...                                    Code("Other", parent="B")]), "x")
    >>> book.names()
    ['A', 'A/Other', 'B', 'B/Other']
    >>> book.codes[1].title, book.codes[3].parent
    ('Other', 'B')
    """
    codes = list(cb.codes)
    problems: list[str] = []
    for i, code in enumerate(codes):
        problems.extend(_code_problems(code, i))
    if problems:
        return _raise(origin, problems)
    titles = [c.title.strip() for c in codes]
    by_fold: dict[str, list[int]] = {}
    for i, t in enumerate(titles):
        by_fold.setdefault(_fold(t), []).append(i)
    guids: dict[str, int] = {}
    for i, code in enumerate(codes):
        if code.guid is None:
            continue
        gkey = _guid_key(code.guid)
        if gkey in guids:
            problems.append(f"codes '{titles[guids[gkey]]}' and '{titles[i]}' share the guid {code.guid}")
        guids.setdefault(gkey, i)

    # parents: by guid or by a name no other code has first; paths once their ancestors are known
    parent_of: dict[int, int | None] = {}
    by_path: dict[int, list[str]] = {}
    for i, code in enumerate(codes):
        ref = code.parent
        if ref is None:
            parent_of[i] = None
            continue
        same = by_fold.get(_fold(ref), [])
        if GUID_RE.fullmatch(ref.strip()) and _guid_key(ref) in guids:
            parent_of[i] = guids[_guid_key(ref)]
        elif len(same) == 1:
            parent_of[i] = same[0]
        else:
            segments = split_path(ref)
            if len(segments) == 1 and segments[0] != ref.strip():  # one escaped name: "yes\\/no"
                same = by_fold.get(_fold(segments[0]), [])
                if len(same) == 1:
                    parent_of[i] = same[0]
                    continue
            if len(segments) > 1 and all(segments):
                by_path[i] = segments
            elif same:
                by_path[i] = segments  # a top-level code of that name, else ambiguous (below)
            else:
                problems.append(
                    f"code '{titles[i]}' has parent '{ref}', which is not in the codebook"
                    f"{did_you_mean(ref, titles)}"
                )
    cycle = _find_cycle({i: p for i, p in parent_of.items() if p is not None or i in parent_of})
    if cycle is not None:
        problems.append(
            f"codes form a cycle: {' -> '.join(titles[i] for i in cycle)}; give one of them no parent"
        )
        return _raise(origin, problems)
    paths: list[list[str] | None] = [None] * len(codes)

    def extend_paths() -> None:
        changed = True
        while changed:
            changed = False
            for i in range(len(codes)):
                if paths[i] is None and i in parent_of:
                    p = parent_of[i]
                    if p is None:
                        paths[i] = [titles[i]]
                        changed = True
                    elif paths[p] is not None:
                        paths[i] = [*(paths[p] or []), titles[i]]
                        changed = True

    extend_paths()
    final = last = False  # final: match among the paths known; last: report what still fails
    while by_path:
        progress = False
        for i, segments in list(by_path.items()):
            found = _match_path(segments, paths, titles, final)
            if found is None or (len(found) != 1 and not last):
                continue
            del by_path[i]
            progress = True
            ref = codes[i].parent
            if len(found) == 1:
                parent_of[i] = found[0]
                extend_paths()
            elif found:
                candidates = ", ".join(join_path(paths[j] or []) for j in found)
                problems.append(
                    f"code '{titles[i]}' has parent '{ref}', which names {len(found)} codes "
                    f"({candidates}); write the parent's path or guid"
                )
            else:
                problems.append(
                    f"code '{titles[i]}' has parent '{ref}', which is not in the codebook"
                    f"{did_you_mean(split_path(ref or '')[-1], titles)}"
                )
        if not progress:
            last, final = final, True
    if problems:
        return _raise(origin, problems)

    seen: dict[tuple[int | None, str], int] = {}
    for i in range(len(codes)):
        sib = (parent_of[i], _fold(titles[i]))
        if sib in seen:
            where = "" if parent_of[i] is None else f" under '{join_path(paths[parent_of[i] or 0] or [])}'"
            problems.append(
                f"code '{titles[i]}' appears twice{where} (also as '{titles[seen[sib]]}'; names of "
                "codes with the same parent are compared ignoring case); rename or merge one"
            )
        else:
            seen[sib] = i
    if problems:
        return _raise(origin, problems)
    keys = [
        titles[i] if len(by_fold[_fold(titles[i])]) == 1 else join_path(paths[i] or [])
        for i in range(len(codes))
    ]
    taken: dict[str, int] = {}
    for i, key in enumerate(keys):
        if _fold(key) in taken:
            problems.append(
                f"codes '{titles[taken[_fold(key)]]}' and '{titles[i]}' are both known as '{key}' (one "
                "by its name, one by its path); rename one"
            )
        taken.setdefault(_fold(key), i)
    if problems:
        return _raise(origin, problems)

    children: dict[int | None, list[int]] = {}
    for i in range(len(codes)):
        children.setdefault(parent_of[i], []).append(i)
    ordered: list[Code] = []

    def visit(parent: int | None) -> None:
        for i in children.get(parent, []):
            p = parent_of[i]
            ordered.append(
                replace(
                    codes[i],
                    name=keys[i],
                    given_name=titles[i] if keys[i] != titles[i] else None,
                    parent=keys[p] if p is not None else None,
                )
            )
            visit(i)

    visit(None)
    return Codebook(codes=ordered, name=cb.name)


def _raise(origin: str, problems: list[str]) -> Codebook:
    if len(problems) == 1:
        raise InputError(f"{origin}: {problems[0]}")
    raise InputError(f"{origin}: {len(problems)} problems: " + "; ".join(problems))


def code_paths(cb: Codebook) -> dict[str, str]:
    """Each code's key -> its full path from the top (``theme/Other``), for a validated codebook."""
    by_key = {c.name: c for c in cb.codes}
    out: dict[str, str] = {}
    for code in cb.codes:
        names, node, seen = [code.title], code, {code.name}
        while node.parent is not None and node.parent in by_key and node.parent not in seen:
            node = by_key[node.parent]
            seen.add(node.name)
            names.append(node.title)
        out[code.name] = join_path(names[::-1])
    return out


def find_codes(ref: str, cb: Codebook) -> list[Code]:
    """The codes a person may mean by ``ref`` in a validated codebook: one, none, or the candidates
    of an ambiguous name.

    ``ref`` is a code's key (its name, or its path where names collide), its guid, a name no other
    code has (ignoring case), or a path (``theme/Other``; a unique ending of the full path is enough).

    >>> cb = validate_codebook(Codebook([Code("A"), Code("Other", parent="A"), Code("B"),
    ...                                  Code("Other", parent="B"), Code("trust")]), "x")
    >>> [c.name for c in find_codes("Other", cb)]
    ['A/Other', 'B/Other']
    >>> [c.name for c in find_codes("b/other", cb)], [c.name for c in find_codes("Trust", cb)]
    (['B/Other'], ['trust'])
    """
    ref = ref.strip()
    exact = cb.get(ref)
    if exact is not None:
        return [exact]
    if GUID_RE.fullmatch(ref):
        for code in cb.codes:
            if code.guid and _guid_key(code.guid) == _guid_key(ref):
                return [code]
    folded = _fold(ref)
    for code in cb.codes:
        if _fold(code.name) == folded:
            return [code]
    named = [c for c in cb.codes if _fold(c.title) == folded]
    if named:
        return named
    segments = split_path(ref)
    if len(segments) < 2 or not all(segments):
        return []
    full = code_paths(cb)
    chains: list[list[str] | None] = [split_path(full[c.name]) for c in cb.codes]
    found = _match_path(segments, chains, [c.title for c in cb.codes], True) or []
    return [cb.codes[j] for j in found]


def ambiguous_message(ref: str, candidates: list[Code], cb: Codebook) -> str:
    """``code 'Other' is ambiguous: A/Other, B/Other; write its path or guid`` (one line)."""
    full = code_paths(cb)
    return (
        f"code '{ref}' is ambiguous: it names {len(candidates)} codes "
        f"({', '.join(full[c.name] for c in candidates)}); write its path or guid"
    )


def not_codable_message(ref: str, code: Code, cb: Codebook) -> str:
    """Why a coding of ``code`` (named ``ref``) is refused: the codebook says it is not codable (a
    category or theme; QualCoder's categories, REFI-QDA ``isCodable="false"``, ``codable: false``), and
    what to do instead (one line).

    >>> cb = validate_codebook(Codebook([Code("Barriers", is_codable=False), Code("cost", parent="Barriers"),
    ...                                  Code("time", parent="Barriers")]), "x")
    >>> not_codable_message("barriers", cb.codes[0], cb)
    "code 'barriers' is a category, not codable in the codebook (codable: false); code the passage with one of its codes (cost, time), or make 'Barriers' codable in the codebook and import the codebook again"
    """
    children = [display_name(c, cb) for c in cb.codes if c.parent == code.name and c.is_codable]
    instead = (
        f"code the passage with one of its codes ({', '.join(children)})"
        if children
        else "code the passage with a codable code"
    )
    return (
        f"code '{ref}' is a category, not codable in the codebook (codable: false); {instead}, or make "
        f"'{display_name(code, cb)}' codable in the codebook and import the codebook again"
    )


def resolve_code(ref: str, cb: Codebook) -> Code | None:
    """The code ``ref`` names (see :func:`find_codes`); ``None`` when there is none.

    Raises
    ------
    InputError
        When ``ref`` names several codes, listing them by path.
    """
    found = find_codes(ref, cb)
    if len(found) > 1:
        raise InputError(ambiguous_message(ref, found, cb))
    return found[0] if found else None


def display_name(code: str | Code, cb: Codebook) -> str:
    """How a code is shown: its name, or its path where another code has the same name (its key).

    A stored code string (a coding's or suggestion's ``code``) is shown as the key of the code it
    names in ``cb``, or unchanged when it names none or several.

    >>> cb = validate_codebook(Codebook([Code("A"), Code("Other", parent="A"), Code("Other")]), "x")
    >>> display_name(cb.codes[1], cb), display_name("A", cb)
    ('A/Other', 'A')
    """
    if isinstance(code, Code):
        return code.name
    found = find_codes(code, cb)
    return found[0].name if len(found) == 1 else code


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
