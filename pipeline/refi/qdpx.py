"""REFI-QDA project exchange (``.qdpx``): sources, users, codebook and text codings.

A ``.qdpx`` is a zip of ``project.qde`` (QDA-XML, namespace ``urn:QDA-XML:project:1.0``, schema
``Project-mrt2019.xsd``) and a ``Sources/`` folder the XML refers to as ``internal://<file>``.

What qualflow writes (element order and required attributes as the schema demands)::

    Project name= origin=
      Users/User guid= name=                      one per coder (its kept guid, see Determinism)
      CodeBook/Codes/Code ...                     nested, see pipeline.refi.qdc
      Sources/TextSource guid= name= plainTextPath="internal://<guid>.txt"
        PlainTextSelection guid= name= startPosition= endPosition= creatingUser= creationDateTime=
          Description                             memo + provenance (below)
          Coding guid= creatingUser= creationDateTime=
            CodeRef targetGUID=<code guid>
      Notes/Note guid= name= plainTextPath=       the ``notes`` argument, one text file each

Positions
    REFI counts characters (Unicode code points) from the start of the plain text; qualflow's offsets
    are Python ``str`` indices, which are code points too, so they are written unchanged. Imports
    fold ``\\r\\n``/``\\r`` to ``\\n`` (as every qualflow reader does) and move the positions with the
    text, counting ``\\r\\n`` as two characters in the file as written (what NVivo on Windows and
    QualCoder expect). NVivo is known to count UTF-16 code units (characters outside the Basic
    Multilingual Plane, e.g. emoji, as two): ``import_qdpx(..., positions="utf16")`` reads such files,
    and ``positions="auto"`` (``qualflow import qdpx --positions auto``, the default there) does so when
    ``Project/@origin`` names NVivo. A selection with no text between its positions (an ATLAS.ti point
    coding) or past the end of its text is skipped and counted, never an error.

Provenance
    REFI has no field for who or what made a coding. Each selection qualflow writes carries a
    ``Description``: the coding's ``memo`` (free text), for a model-accepted coding a line
    ``[qualflow] provenance: suggested by model linear@3 (score 0.820); accepted by ana``
    (:data:`PROVENANCE_MARK`), and a last line ``[qualflow] origin: <origin>`` with ``origin`` one of
    :data:`pipeline.domain.ORIGINS`. Import reads memo and origin back and drops the provenance line
    (also the unmarked one older qualflow wrote), so a round trip changes no memo; a selection from
    another tool gets origin ``imported`` and its Description (an annotation there) as memo.

Determinism
    GUIDs come from the content (``Code.guid``, ``Source.metadata["refi_guid"]``, the ``user_guids`` a
    project file gave the coders (:attr:`QdpxProject.user_guids`) or UUID5 of the names; selections from
    source, offsets, code, coder, time), selections are sorted, times are the codings' own and the zip
    entries carry a fixed date: the same input writes the same bytes. A project imported from NVivo,
    MAXQDA or ATLAS.ti and exported back so gives that tool its own users again, not a new one per coder.

One module, one concern: the REFI-QDA project exchange format, read and written side by side
so that every element's import and export can be checked against each other.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pipeline import __version__
from pipeline.codebook import GUID_RE, validate_codebook
from pipeline.domain import ORIGINS, Code, Codebook, Coding, Source, sha256_text
from pipeline.errors import InputError
from pipeline.fileio import fold_newlines, write_atomic
from pipeline.limits import QDPX_FILE_BYTES, check_file_size, open_zip, read_member
from pipeline.refi.qdc import (
    NS_PROJECT,
    code_guids,
    codes_element,
    codes_from_element,
    normalize_guid,
    parse_xml,
    stable_guid,
)
from pipeline.text import counted

__all__ = [
    "PROVENANCE_MARK",
    "unknown_user_warning",
    "Positions",
    "QdpxProject",
    "export_qdpx",
    "export_user_guids",
    "import_qdpx",
    "position_map",
    "project_qde",
]

Positions = Literal["auto", "characters", "utf16"]
"""How a file counts selection positions: ``characters`` (Unicode code points, the standard), ``utf16``
(UTF-16 code units, NVivo) or ``auto`` (``utf16`` when ``Project/@origin`` names NVivo)."""
SHOW_POSITIONS = 3  # skipped selections named by their positions in the skipped note, per source

_P = f"{{{NS_PROJECT}}}"
_PROVENANCE = re.compile(r"\[qualflow\] origin: (\S+)")
PROVENANCE_MARK = "[qualflow] provenance: "
FORMAT_MARK = "[qualflow] format: "
"""The last line of a source's Description naming the format qualflow read it from, for the formats
whose text reads differently as plain text (``md``: a heading is not a turn); an import restores it."""
_MARKED_FORMATS = ("md",)
# the provenance line qualflow wrote before it had a mark (read back as a memo then)
_OLD_PROVENANCE = re.compile(r"suggested by model \S+ \(score -?[0-9.]+\); accepted by .+")
_XSD_DATETIME = re.compile(r"-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_CONTROL = re.compile("[\x00-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class QdpxProject:
    """What :func:`import_qdpx` returns.

    Attributes
    ----------
    sources : list of Source
        Text sources, ``format="refi"`` (``"md"`` for a Markdown source qualflow exported, its
        Description's last line :data:`FORMAT_MARK`), no turns (re-parse them), ``metadata["refi_guid"]``
        set.
    codebook : Codebook
        Validated, in tree order; codes keep their REFI guids.
    codings : list of Coding
        One per ``Coding`` of a ``PlainTextSelection``, offsets into ``Source.text``.
    users : list of str
        User names, in the file's order (plus ``user-<first 8 characters of the guid>`` for each
        ``creatingUser`` guid the file's ``Users`` lack, and ``unknown`` for codings without one).
    notes : dict of str to str
        Project notes, name -> text.
    origin : str
        The tool that wrote the file (``Project/@origin``), e.g. ``MAXQDA 2020 (Release 20.2.1)``.
    skipped : list of str
        Sources, notes and selections not imported (PDF without a text representation, picture, audio,
        video; notes without text; selections with no text between their positions or past the end
        of their text, per source with the first positions; code sets), each with the number of its
        coded selections left out.
    skipped_selections : int
        Selections and codings on those sources, and those selections, not imported (never an error).
    positions : {"characters", "utf16"}
        How positions were counted (``auto`` resolved).
    notices : list of str
        One line each worth telling: how positions were counted, when ``auto`` chose it and a source
        has characters where the two countings differ.
    unknown_users : dict of str to str
        Coder name (``user-<first 8 characters>``) -> the ``creatingUser`` guid the file's ``Users``
        lack, as written (:func:`unknown_user_warning` says which codings are theirs).
    user_guids : dict of str to str
        Coder name -> the guid the file gives that user, as written (stripped): each ``User``'s (the
        first, for a name two users share) and each of ``unknown_users``; only GUIDs (``GUID_RE``). An
        export given these (:func:`export_qdpx` ``user_guids``) writes the users with them again.

    Memos (a ``Description`` or ``NoteRef`` notes) arrive as: a code's description (notes appended
    after a blank line), a source's ``metadata["memo"]``, a coding's ``memo``. Cases and variables
    arrive as participant metadata: a case's name is ``metadata["participant"]`` of each source it
    refers to, and each variable value (on the case or on the source) ``metadata[<variable name>]``
    (``group``, ``date``, ``order`` and any other). A set of sources becomes ``metadata["group"]``
    (unless a variable named ``group`` gave one; further sets go in ``metadata["sets"]``). The guids
    of the source, its case, its set and its variables are kept in ``refi_*`` metadata keys so an
    export writes them back.
    """

    sources: list[Source]
    codebook: Codebook
    codings: list[Coding]
    users: list[str]
    notes: dict[str, str] = field(default_factory=dict)
    origin: str = ""
    skipped: list[str] = field(default_factory=list)
    skipped_selections: int = 0
    positions: Literal["characters", "utf16"] = "characters"
    notices: list[str] = field(default_factory=list)
    unknown_users: dict[str, str] = field(default_factory=dict)
    user_guids: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------


def _source_guid(source: Source) -> str:
    return source.metadata.get("refi_guid") or stable_guid("source", source.name)


def export_user_guids(users: list[str], kept: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Each user's ``User/@guid`` in an export, distinct within the file.

    A user's ``kept`` guid (the one a project file gave the coder) when it is a GUID that no user before
    it in ``users`` has (guids compare lower case, without braces), else one derived from the name
    (``stable_guid("user", name)``, or of ``name#2``, ``name#3`` ... when a kept guid is that one).

    Returns
    -------
    guids : dict of str to str
        User -> guid, for every user.
    not_kept : dict of str to str
        User -> why its kept guid was not written (not a GUID; another user's), for those only.

    >>> a = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    >>> guids, not_kept = export_user_guids(["ana", "ben", "eve"], {"ana": a, "ben": a.lower()})
    >>> guids["ana"] == a, guids["ben"] == stable_guid("user", "ben"), not_kept
    (True, True, {'ben': "its guid 0f8fad5b-d9cb-469f-a165-70867728950e is the guid of user 'ana'"})
    """
    guids: dict[str, str] = {}
    taken: dict[str, str] = {}  # normalized guid -> user
    not_kept: dict[str, str] = {}
    for u in users:
        guid = (kept.get(u) or "").strip()
        if not guid:
            continue
        if not GUID_RE.fullmatch(guid):
            not_kept[u] = f"its guid '{guid}' is not a GUID"
        elif normalize_guid(guid) in taken:
            not_kept[u] = f"its guid {guid} is the guid of user '{taken[normalize_guid(guid)]}'"
        else:
            guids[u] = guid
            taken[normalize_guid(guid)] = u
    for u in users:
        if u in guids:
            continue
        guid, n = stable_guid("user", u), 1
        while guid in taken:  # a kept guid is the one derived from this name: another user's now
            n += 1
            guid = stable_guid("user", f"{u}#{n}")
        guids[u] = guid
        taken[guid] = u
    return {u: guids[u] for u in users}, not_kept


def _xsd_datetime(value: str) -> str:
    if _XSD_DATETIME.fullmatch(value):
        return value
    return datetime.fromisoformat(value).isoformat()


def _selection_description(coding: Coding) -> str:
    line = f"[qualflow] origin: {coding.origin}"
    return f"{coding.memo}\n{line}" if coding.memo else line


def _check_export(
    sources: list[Source], codebook: Codebook, codings: list[Coding], users: list[str], notes: dict[str, str]
) -> list[str]:
    problems: list[str] = []
    texts: dict[str, str] = {}
    for s in sources:
        if s.name in texts:
            problems.append(f"two sources are named '{s.name}'")
        texts[s.name] = s.text
        guid = s.metadata.get("refi_guid")
        if guid is not None and not GUID_RE.fullmatch(guid):
            problems.append(f"source '{s.name}' has refi_guid '{guid}', which is not a GUID")
    if len(set(users)) != len(users) or any(not u.strip() for u in users):
        problems.append(f"users must be distinct, non-empty names; got {users}")
    names = set(codebook.names())
    for i, c in enumerate(codings):
        where = f"coding {i + 1} ({c.source} {c.start}-{c.end} '{c.code}' by {c.coder})"
        text = texts.get(c.source)
        if text is None:
            problems.append(f"{where}: source '{c.source}' is not among the sources exported")
        elif not 0 <= c.start < c.end <= len(text):
            problems.append(f"{where}: offsets outside source '{c.source}' ({len(text)} characters)")
        if c.code not in names:
            problems.append(f"{where}: code '{c.code}' is not in the codebook")
        if c.coder not in users:
            problems.append(f"{where}: coder '{c.coder}' is not among the users {users}")
        if c.origin not in ORIGINS:
            problems.append(f"{where}: origin '{c.origin}' is not one of {list(ORIGINS)}")
        if c.created_at is not None:
            try:
                _xsd_datetime(c.created_at)
            except ValueError:
                problems.append(f"{where}: created_at '{c.created_at}' is not ISO 8601")
    if any(not title.strip() for title in notes):
        problems.append("a note has an empty title")
    return problems


def project_qde(
    *,
    sources: list[Source],
    codebook: Codebook,
    codings: list[Coding],
    users: list[str],
    notes: dict[str, str] | None = None,
    project_name: str = "qualflow",
    user_guids: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """Build ``project.qde`` and the files of ``Sources/`` (the parts :func:`export_qdpx` zips).

    Returns
    -------
    qde : bytes
        The project XML, UTF-8.
    files : dict of str to bytes
        Zip path (``Sources/<guid>.txt``) -> content, in the order they are written.

    Raises
    ------
    InputError
        A coding whose source, code or coder is not exported, offsets outside their source, an
        unknown origin, duplicate source names, a user guid (``user_guids``) that is not a GUID or is
        another user's too, and every rule of :func:`pipeline.codebook.validate_codebook`.
    """
    notes = notes or {}
    codebook = validate_codebook(codebook, "codebook to export")
    problems = _check_export(sources, codebook, codings, users, notes)
    guid_of_user, not_kept = export_user_guids(users, user_guids or {})
    problems += [f"user '{u}': {why}" for u, why in not_kept.items()]
    if problems:
        raise InputError(
            f"cannot export the project: {counted(len(problems), 'problem')}: " + "; ".join(problems)
        )

    guids_of_codes = code_guids(codebook)
    root = ET.Element(
        "Project", {"xmlns": NS_PROJECT, "name": project_name, "origin": f"qualflow {__version__}"}
    )
    if users:
        users_el = ET.SubElement(root, "Users")
        for u in users:
            ET.SubElement(users_el, "User", {"guid": guid_of_user[u], "name": u})
    if codebook.codes:
        ET.SubElement(root, "CodeBook").append(codes_element(codebook))
    source_values, variable_guids = _variables(sources)
    if variable_guids:
        variables_el = ET.SubElement(root, "Variables")
        for var, vguid in variable_guids.items():
            ET.SubElement(variables_el, "Variable", {"guid": vguid, "name": var, "typeOfVariable": "Text"})
    cases: dict[str, tuple[str, list[str]]] = {}  # participant -> (case guid, source guids)
    for source in sources:
        who = source.metadata.get("participant", "").strip()
        if who:
            case_guid = source.metadata.get("refi_case_guid") or stable_guid("case", who)
            cases.setdefault(who, (case_guid, []))[1].append(_source_guid(source))
    if cases:
        cases_el = ET.SubElement(root, "Cases")
        for who, (case_guid, members) in cases.items():
            case_el = ET.SubElement(cases_el, "Case", {"guid": case_guid, "name": who})
            for member in members:
                ET.SubElement(case_el, "SourceRef", {"targetGUID": member})

    files: dict[str, bytes] = {}
    by_source: dict[str, list[Coding]] = {}
    for c in codings:
        by_source.setdefault(c.source, []).append(c)
    if sources:
        sources_el = ET.SubElement(root, "Sources")
    for source in sources:
        guid = _source_guid(source)
        files[f"Sources/{guid}.txt"] = source.text.encode("utf-8")
        src_el = ET.SubElement(
            sources_el,
            "TextSource",
            {"guid": guid, "name": source.name, "plainTextPath": f"internal://{guid}.txt"},
        )
        memo = source.metadata.get("memo") or ""
        if source.format in _MARKED_FORMATS:
            memo = f"{memo}\n{FORMAT_MARK}{source.format}" if memo else f"{FORMAT_MARK}{source.format}"
        if memo:
            ET.SubElement(src_el, "Description").text = memo
        ordered = sorted(
            by_source.get(source.name, []),
            key=lambda c: (c.start, c.end, c.code, c.coder, c.created_at or "", c.origin, c.memo or ""),
        )
        seen: dict[str, int] = {}
        for c in ordered:
            key = "\x1f".join([guid, str(c.start), str(c.end), c.code, c.coder, c.created_at or ""])
            seen[key] = seen.get(key, 0) + 1
            key = f"{key}\x1f{seen[key]}"
            attrs = {
                "guid": stable_guid("selection", key),
                "name": _CONTROL.sub(" ", source.text[c.start : c.end][:60]),
                "startPosition": str(c.start),
                "endPosition": str(c.end),
                "creatingUser": guid_of_user[c.coder],
            }
            if c.created_at is not None:
                attrs["creationDateTime"] = _xsd_datetime(c.created_at)
            sel = ET.SubElement(src_el, "PlainTextSelection", attrs)
            ET.SubElement(sel, "Description").text = _selection_description(c)
            coding_attrs = {"guid": stable_guid("coding", key), "creatingUser": guid_of_user[c.coder]}
            if c.created_at is not None:
                coding_attrs["creationDateTime"] = attrs["creationDateTime"]
            coding_el = ET.SubElement(sel, "Coding", coding_attrs)
            ET.SubElement(coding_el, "CodeRef", {"targetGUID": guids_of_codes[c.code]})
        for var, value in source_values.get(source.name, {}).items():
            vv = ET.SubElement(src_el, "VariableValue")
            ET.SubElement(vv, "VariableRef", {"targetGUID": variable_guids[var]})
            ET.SubElement(vv, "TextValue").text = value
    if notes:
        notes_el = ET.SubElement(root, "Notes")
        for title, text in notes.items():
            guid = stable_guid("note", title)
            files[f"Sources/{guid}.txt"] = text.encode("utf-8")
            ET.SubElement(
                notes_el, "Note", {"guid": guid, "name": title, "plainTextPath": f"internal://{guid}.txt"}
            )
    kept_set_guids: dict[str, str] = {}  # group -> the set guid an import kept (any member's)
    set_members: dict[str, list[str]] = {}  # group -> source guids
    for source in sources:
        groups = [source.metadata.get("group", "").strip()]
        groups += [g.strip() for g in source.metadata.get("sets", "").split(";")]
        for i, group in enumerate(g for g in groups if g):
            # every set's guid is kept in refi_set_guid:<name>; older imports kept the first one's only,
            # in refi_set_guid
            kept = source.metadata.get(f"refi_set_guid:{group}") or (
                source.metadata.get("refi_set_guid") if i == 0 else None
            )
            if kept and GUID_RE.fullmatch(kept):
                kept_set_guids.setdefault(group, kept)
            set_members.setdefault(group, []).append(_source_guid(source))
    if set_members:
        sets_el = ET.SubElement(root, "Sets")
        for group, members in set_members.items():
            set_guid = kept_set_guids.get(group) or stable_guid("set", group)
            set_el = ET.SubElement(sets_el, "Set", {"guid": set_guid, "name": group})
            for member in members:
                ET.SubElement(set_el, "MemberSource", {"targetGUID": member})
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n", files


# metadata keys that are not variables: qualflow's own and those written as cases, sets, memos
_NOT_VARIABLES = ("participant", "group", "sets", "memo", "source")


def _variables(sources: list[Source]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Per source, its variable values (metadata but participant, group, memo and ``refi_*``), and
    each variable's guid (kept from an import, else derived from its name)."""
    values: dict[str, dict[str, str]] = {}
    guids: dict[str, str] = {}
    for source in sources:
        for key, value in source.metadata.items():
            if key.startswith("refi_") or key in _NOT_VARIABLES or not str(value).strip() or not key.strip():
                continue
            values.setdefault(source.name, {})[key] = str(value)
            kept = source.metadata.get(f"refi_var_guid:{key}")
            guids.setdefault(key, kept if kept and GUID_RE.fullmatch(kept) else stable_guid("variable", key))
    return values, guids


def export_qdpx(
    path: str | os.PathLike[str],
    *,
    sources: list[Source],
    codebook: Codebook,
    codings: list[Coding],
    users: list[str],
    notes: dict[str, str] | None = None,
    project_name: str = "qualflow",
    user_guids: Mapping[str, str] | None = None,
) -> None:
    """Write a REFI-QDA project (``.qdpx``) atomically; the same input writes the same bytes.

    Parameters
    ----------
    path : path-like
        The ``.qdpx`` to write.
    sources : list of Source
        Text sources; ``metadata["refi_guid"]``, when set, is kept as the source's guid.
    codebook : Codebook
        Every coded code must be in it.
    codings : list of Coding
        Offsets into their source's text; ``coder`` must be in ``users``; ``memo`` and ``origin``
        travel in the selection's Description (see the module docstring).
    users : list of str
        Coder names, written as REFI ``User`` elements.
    notes : dict of str to str, optional
        Project notes (title -> text), written as ``Note`` elements.
    project_name : str
        ``Project/@name``.
    user_guids : mapping of str to str, optional
        User -> the guid to write it with (one a project file gave it, :attr:`QdpxProject.user_guids`);
        the others get one derived from their name (:func:`export_user_guids`).
    """
    qde, files = project_qde(
        sources=sources,
        codebook=codebook,
        codings=codings,
        users=users,
        notes=notes,
        project_name=project_name,
        user_guids=user_guids,
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in [("project.qde", qde), *files.items()]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    write_atomic(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------------


class _Archive:
    """The zip, with ``internal://`` paths resolved case-insensitively under ``Sources/``."""

    def __init__(self, zf: zipfile.ZipFile, origin: str, prefix: str) -> None:
        self.zf = zf
        self.origin = origin
        self.by_lower = {n.lower(): n for n in zf.namelist()}
        self.prefix = prefix

    def internal(self, uri: str, what: str) -> bytes:
        if not uri.startswith("internal://"):
            raise InputError(
                f"{self.origin}: {what} refers to the external file {uri}; export the project from your "
                "QDA tool with all sources embedded"
            )
        rel = uri[len("internal://") :].lstrip("/")
        for candidate in (f"{self.prefix}sources/{rel}", f"{self.prefix}{rel}"):
            member = self.by_lower.get(candidate.lower())
            if member is not None:
                return read_member(self.zf, member, self.origin)
        raise InputError(f"{self.origin}: {what} refers to {uri}, which is not inside the archive")

    def text(self, uri: str, what: str) -> str:
        data = self.internal(uri, what)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{self.origin}: {what}: {uri} is not UTF-8 text") from None


def _docx_text(data: bytes, origin: str, what: str) -> str:
    import docx

    try:
        open_zip(io.BytesIO(data), f"{origin}: {what}").close()
    except zipfile.BadZipFile as err:
        raise InputError(f"{origin}: {what}: the .docx inside cannot be read ({err})") from None
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises several types for broken files
        raise InputError(f"{origin}: {what}: the .docx inside cannot be read ({err})") from None
    return "\n".join(p.text for p in document.paragraphs)


def position_map(raw: str, positions: Literal["characters", "utf16"]) -> tuple[list[int] | None, int]:
    """Map file positions to offsets into ``fold_newlines(raw)``; ``None`` means identity.

    Returns the map (length: number of position units + 1) and the number of units.
    """
    if "\r" not in raw and (positions == "characters" or all(ord(ch) <= 0xFFFF for ch in raw)):
        return None, len(raw)
    mapping: list[int] = []
    folded = 0
    for i, ch in enumerate(raw):
        units = 2 if positions == "utf16" and ord(ch) > 0xFFFF else 1
        mapping.extend([folded] * units)
        if not (ch == "\r" and raw[i + 1 : i + 2] == "\n"):
            folded += 1
    mapping.append(folded)
    return mapping, len(mapping) - 1


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _memo_and_origin(selection: ET.Element) -> tuple[str | None, str]:
    desc = selection.find(f"{_P}Description")
    text = fold_newlines(desc.text or "") if desc is not None else ""
    head, _, last = text.rpartition("\n")
    match = _PROVENANCE.fullmatch(last)
    if match and match.group(1) in ORIGINS:
        origin = match.group(1)
        # qualflow's own provenance line (which model suggested it) is no memo; the origin says it
        memo, _, prov = head.rpartition("\n")
        if prov.startswith(PROVENANCE_MARK) or (
            origin == "model-accepted" and _OLD_PROVENANCE.fullmatch(prov)
        ):
            head = memo
        return head or None, origin
    return text or None, "imported"


def import_qdpx(path: str | os.PathLike[str], *, positions: Positions = "characters") -> QdpxProject:
    """Read a REFI-QDA project: text sources, users, codebook and text codings.

    A pure function: it returns the data or raises, it writes nothing.

    Parameters
    ----------
    path : path-like
        The ``.qdpx`` file.
    positions : {"characters", "utf16", "auto"}
        How the file counts positions: Unicode characters (the standard; MAXQDA, ATLAS.ti,
        QualCoder), UTF-16 code units (NVivo), or ``auto``: UTF-16 code units when ``Project/@origin``
        names NVivo, else characters (with a line in ``notices`` when a source has characters the two
        count differently).

    Returns
    -------
    QdpxProject

    Raises
    ------
    InputError
        Not a zip; no ``project.qde`` or not REFI project XML (root ``Project`` in
        ``urn:QDA-XML:project:1.0``); a text source without text or with an external file; a
        selection whose positions are not whole numbers (naming its guid and source); a coding whose
        code is not in the codebook; duplicate source names; every codebook rule.
    """
    origin = str(path)
    if not Path(path).is_file():
        raise InputError(f"{origin}: no such file")
    check_file_size(path, QDPX_FILE_BYTES)
    try:
        zf = open_zip(path, origin)  # a zip bomb is refused here, before anything is inflated
    except zipfile.BadZipFile:
        raise InputError(
            f"{origin}: not a zip archive (a .qdpx is a zip of project.qde and Sources/); "
            "export the project again as REFI-QDA .qdpx"
        ) from None
    with zf:
        qde_names = sorted(
            (n for n in zf.namelist() if n.lower().endswith(".qde")), key=lambda n: (n.count("/"), n)
        )
        if not qde_names:
            raise InputError(f"{origin}: no project.qde inside; is it a REFI-QDA project export?")
        qde = qde_names[0]
        prefix = qde.rsplit("/", 1)[0] + "/" if "/" in qde else ""
        archive = _Archive(zf, origin, prefix)
        root = parse_xml(read_member(zf, qde, origin), f"{origin}!{qde}")
        if root.tag != f"{_P}Project":
            raise InputError(
                f"{origin}: {qde} is not a REFI-QDA project (root element {root.tag}, expected Project "
                f"in namespace {NS_PROJECT})"
            )
        return _read_project(root, archive, origin, positions)


def _read_project(root: ET.Element, archive: _Archive, origin: str, asked: Positions) -> QdpxProject:
    tool = root.get("origin", "")
    positions: Literal["characters", "utf16"] = (
        asked if asked != "auto" else "utf16" if "nvivo" in tool.lower() else "characters"
    )
    users: dict[str, str] = {}
    user_names: list[str] = []
    user_guids: dict[str, str] = {}  # coder name -> the guid the file gives the user, as written
    for u in root.iterfind(f"{_P}Users/{_P}User"):
        guid = u.get("guid", "")
        name = (u.get("name") or u.get("id") or guid).strip()
        users[normalize_guid(guid)] = name
        if name not in user_names:
            user_names.append(name)
        if GUID_RE.fullmatch(guid.strip()):
            user_guids.setdefault(name, guid.strip())

    codes_el = root.find(f"{_P}CodeBook/{_P}Codes")
    codes = codes_from_element(codes_el, NS_PROJECT, origin) if codes_el is not None else []
    codebook = validate_codebook(Codebook(codes=codes, name=root.get("name") or Path(origin).stem), origin)
    code_by_guid = {normalize_guid(c.guid): c.name for c in codebook.codes if c.guid}
    case_guids = {normalize_guid(c.get("guid", "")) for c in root.iterfind(f"{_P}Cases/{_P}Case")}

    unknown_users: dict[str, str] = {}  # coder name -> guid, for creatingUser guids Users lack

    def coder_of(*elements: ET.Element) -> str:
        for el in elements:
            guid = el.get("creatingUser")
            if guid:
                name = users.get(normalize_guid(guid))
                if name is None:  # a user the file does not list: named by its guid, the same each time
                    name = f"user-{normalize_guid(guid)[:8]}"
                    unknown_users.setdefault(name, guid)
                    if GUID_RE.fullmatch(guid.strip()):
                        user_guids.setdefault(name, guid.strip())
                if name not in user_names:
                    user_names.append(name)
                return name
        if "unknown" not in user_names:
            user_names.append("unknown")
        return "unknown"

    def time_of(*elements: ET.Element) -> str | None:
        for el in elements:
            value = el.get("creationDateTime")
            if value:
                return value.strip()
        return None

    notes_by_guid: dict[str, str] = {}
    notes: dict[str, str] = {}
    skipped: list[str] = []
    for note in root.iterfind(f"{_P}Notes/{_P}Note"):
        title = (note.get("name") or note.get("guid") or "").strip()
        content = note.find(f"{_P}PlainTextContent")
        if note.get("plainTextPath"):
            text = fold_newlines(archive.text(note.get("plainTextPath", ""), f"note '{title}'"))
        elif content is not None:
            text = fold_newlines(content.text or "")
        else:
            skipped.append(f"Note '{title}'")
            continue
        notes[title] = text
        notes_by_guid[normalize_guid(note.get("guid", ""))] = text

    def memo_of(*elements: ET.Element, description: bool = True) -> str | None:
        """The Description (when ``description``) and the notes each element refers to, joined."""
        parts: list[str] = []
        for el in elements:
            desc = el.find(f"{_P}Description") if description else None
            if desc is not None and (desc.text or "").strip():
                parts.append(fold_newlines(desc.text or "").strip())
            for ref in el.findall(f"{_P}NoteRef"):
                text = notes_by_guid.get(normalize_guid(ref.get("targetGUID", "")), "").strip()
                if text and text not in parts:
                    parts.append(text)
        return "\n\n".join(parts) or None

    if codes_el is not None:  # code memos: notes a Code refers to, after its description
        code_notes = {
            normalize_guid(el.get("guid", "")): memo_of(el, description=False)
            for el in codes_el.iter(f"{_P}Code")
            if el.find(f"{_P}NoteRef") is not None
        }
        if any(code_notes.values()):
            codebook = Codebook(
                codes=[_with_memo(c, code_notes.get(normalize_guid(c.guid or ""))) for c in codebook.codes],
                name=codebook.name,
            )

    variables = {
        normalize_guid(v.get("guid", "")): (v.get("name") or v.get("guid") or "").strip()
        for v in root.iterfind(f"{_P}Variables/{_P}Variable")
    }

    def values_of(el: ET.Element) -> dict[str, str]:
        out: dict[str, str] = {}
        for vv in el.findall(f"{_P}VariableValue"):
            ref = vv.find(f"{_P}VariableRef")
            guid = normalize_guid(ref.get("targetGUID", "")) if ref is not None else ""
            name = variables.get(guid)
            value = next((child.text for child in vv if _local(child.tag) != "VariableRef"), None)
            if name and value is not None and value.strip():
                out[name] = value.strip()
                out[f"refi_var_guid:{name}"] = guid
        return out

    source_meta: dict[str, dict[str, str]] = {}  # source guid -> metadata from cases and sets
    for case in root.iterfind(f"{_P}Cases/{_P}Case"):
        case_values = values_of(case)
        for ref in case.findall(f"{_P}SourceRef"):
            meta = source_meta.setdefault(normalize_guid(ref.get("targetGUID", "")), {})
            if (case.get("name") or "").strip():  # MAXQDA writes a nameless case for file variables
                meta.setdefault("participant", (case.get("name") or "").strip())
                meta.setdefault("refi_case_guid", case.get("guid", ""))
            for key, value in case_values.items():
                meta.setdefault(key, value)
    for set_el in root.iterfind(f"{_P}Sets/{_P}Set"):
        set_name = (set_el.get("name") or "").strip()
        for ref in set_el.findall(f"{_P}MemberSource"):
            meta = source_meta.setdefault(normalize_guid(ref.get("targetGUID", "")), {})
            if "group" not in meta:
                meta["group"] = set_name
                meta["refi_set_guid"] = set_el.get("guid", "")
            else:
                meta["sets"] = f"{meta['sets']}; {set_name}" if meta.get("sets") else set_name
                meta[f"refi_set_guid:{set_name}"] = set_el.get("guid", "")
        member_codes = len(set_el.findall(f"{_P}MemberCode"))
        if member_codes:  # qualflow's codebook has no sets of codes
            skipped.append(
                f"Set '{set_name}': its {counted(member_codes, 'code')} (qualflow has no code sets)"
            )

    sources: list[Source] = []
    codings: list[Coding] = []
    skipped_selections = 0
    wide: list[str] = []  # sources with characters outside the BMP: where the two countings differ
    for el in root.iterfind(f"{_P}Sources/*"):
        kind = _local(el.tag)
        guid = el.get("guid", "")
        name = (el.get("name") or guid).strip()
        text_el = el if kind == "TextSource" else el.find(f"{_P}Representation")
        if text_el is None:  # PDF without a text representation, pictures, audio, video
            count = sum(1 for child in el.iter() if _local(child.tag).endswith("Selection"))
            count += len(el.findall(f"{_P}Coding"))
            skipped_selections += count
            skipped.append(f"{kind} '{name}'" + (f" ({counted(count, 'coded selection')})" if count else ""))
            continue
        if text_el is not el:  # a PDF's text: its PDF selections are skipped, the text's imported
            count = sum(1 for child in el.findall(f"{_P}PDFSelection"))
            skipped_selections += count
            if count:
                skipped.append(f"{kind} '{name}': {counted(count, 'PDF selection')} (its text imported)")
        what = f"source '{name}'"
        content = text_el.find(f"{_P}PlainTextContent")
        plain_path, rich_path = text_el.get("plainTextPath"), text_el.get("richTextPath")
        if plain_path:
            raw = archive.text(plain_path, what)
        elif content is not None:
            raw = content.text or ""
        elif rich_path and rich_path.lower().endswith(".docx"):
            raw = _docx_text(archive.internal(rich_path, what), origin, what)
        else:
            raise InputError(
                f"{origin}: {what} has no plain text (no PlainTextContent or plainTextPath, and no .docx "
                "richTextPath); export it with its text"
            )
        text = fold_newlines(raw)
        mapping, units = position_map(raw, positions)
        if any(ord(ch) > 0xFFFF for ch in raw):
            wide.append(name)
        if any(s.name == name for s in sources):
            raise InputError(f"{origin}: two sources are named '{name}'; rename one in your QDA tool")
        metadata = {"refi_guid": guid, **source_meta.get(normalize_guid(guid), {})}
        for key, value in values_of(el).items():  # variables on the source itself (MAXQDA)
            metadata.setdefault(key, value)
        memo = memo_of(el) if el is text_el else memo_of(el, text_el)
        fmt = "refi"
        head, _, last = (memo or "").rpartition("\n")
        if last.startswith(FORMAT_MARK) and last[len(FORMAT_MARK) :].strip() in _MARKED_FORMATS:
            fmt, memo = last[len(FORMAT_MARK) :].strip(), head
        if memo:
            metadata["memo"] = memo
        sources.append(
            Source(
                name=name,
                text=text,
                turns=[],
                format=fmt,
                content_hash=sha256_text(text),
                metadata=metadata,
            )
        )
        for coding_el in text_el.findall(f"{_P}Coding"):  # codes the whole source
            code = _code_of(coding_el, code_by_guid, case_guids, origin, f"{what} (whole-source coding)")
            if code is not None:
                codings.append(
                    Coding(
                        name,
                        0,
                        len(text),
                        code,
                        coder_of(coding_el, text_el),
                        "imported",
                        time_of(coding_el, text_el),
                        memo_of(coding_el, description=False),
                    )
                )
        empty: list[str] = []  # positions of selections with no text between them
        past: list[str] = []  # positions of selections past the end of the text
        for sel in text_el.findall(f"{_P}PlainTextSelection"):
            sel_guid = sel.get("guid", "?")
            where = f"selection {sel_guid} of {what}"
            try:
                start, end = int(sel.get("startPosition", "")), int(sel.get("endPosition", ""))
            except ValueError:
                raise InputError(
                    f"{origin}: {where}: startPosition/endPosition "
                    f"'{sel.get('startPosition')}'/'{sel.get('endPosition')}' are not whole numbers"
                ) from None
            if not 0 <= start < end:  # an ATLAS.ti point coding (start == end) codes no text
                empty.append(f"{start}-{end}")
                continue
            if end > units:
                past.append(f"{start}-{end}")
                continue
            if mapping is not None:
                start, end = mapping[start], mapping[end]
            sel_memo, coding_origin = _memo_and_origin(sel)
            sel_notes = memo_of(sel, description=False)
            for coding_el in sel.findall(f"{_P}Coding"):
                code = _code_of(coding_el, code_by_guid, case_guids, origin, where)
                if code is None:
                    continue
                parts = [p for p in (sel_memo, sel_notes, memo_of(coding_el, description=False)) if p]
                codings.append(
                    Coding(
                        source=name,
                        start=start,
                        end=end,
                        code=code,
                        coder=coder_of(coding_el, sel),
                        origin=coding_origin,
                        created_at=time_of(coding_el, sel),
                        memo="\n\n".join(dict.fromkeys(parts)) or None,
                    )
                )
        if empty:
            skipped_selections += len(empty)
            skipped.append(
                f"{kind} '{name}': {counted(len(empty), 'selection')} with no text between their positions "
                f"({_first(empty)})"
            )
        if past:
            skipped_selections += len(past)
            other = "characters" if positions == "utf16" else "utf16"
            unit = "UTF-16 code units" if positions == "utf16" else "characters"
            skipped.append(
                f"{kind} '{name}': {counted(len(past), 'selection')} past the end of its text ({units} {unit}): "
                f"{_first(past)}; if the file counts positions differently, import it with "
                f"--positions {other}"
            )

    notices: list[str] = []
    if asked == "auto" and wide:  # the choice matters: say which, and how to choose the other
        writer = f"the file was written by {tool}" if tool else "the file does not name its tool"
        if positions == "utf16":
            how, other = f"UTF-16 code units, as NVivo counts them ({writer})", "characters"
        else:
            how, other = f"characters, as the REFI-QDA standard counts them ({writer})", "utf16"
        shown = _first([f"'{n}'" for n in wide])
        notices.append(
            f"positions counted in {how}: {shown} ha{'s' if len(wide) == 1 else 've'} characters outside "
            "the Basic Multilingual Plane (e.g. emoji), which UTF-16 counts as two; if codings after them "
            f"look shifted, import the file into a fresh project with --positions {other}"
        )
    return QdpxProject(
        sources=sources,
        codebook=codebook,
        codings=codings,
        users=user_names,
        notes=notes,
        origin=root.get("origin", ""),
        skipped=skipped,
        skipped_selections=skipped_selections,
        positions=positions,
        notices=notices,
        unknown_users=unknown_users,
        user_guids=user_guids,
    )


def unknown_user_warning(unknown_users: dict[str, str], codings: list[Coding]) -> list[str]:
    """One line naming each ``creatingUser`` guid the file's ``Users`` lack (``unknown_users`` of a
    :class:`QdpxProject`) with how many of ``codings`` (those imported) are theirs; none without such.

    >>> one = [Coding("s", 0, 1, "c", "user-d3b9da0f")]
    >>> unknown_user_warning({"user-d3b9da0f": "D3B9DA0F-EB28"}, one)[0].partition("coder): ")[2]
    "creatingUser D3B9DA0F-EB28: 1 coding as 'user-d3b9da0f'"
    """
    counts: dict[str, int] = {}
    for c in codings:
        if c.coder in unknown_users:
            counts[c.coder] = counts.get(c.coder, 0) + 1
    if not counts:
        return []
    each = "; ".join(
        f"creatingUser {unknown_users[name]}: {n} coding{'s' if n != 1 else ''} as '{name}'"
        for name, n in counts.items()
    )
    return [
        "codings by users the file's Users do not list, kept under a coder named by the guid's first 8 "
        f"characters (the same on every import; agreement counts each as a coder): {each}"
    ]


def _first(items: list[str]) -> str:
    """The first :data:`SHOW_POSITIONS` of ``items``, and how many more."""
    more = len(items) - SHOW_POSITIONS
    return ", ".join(items[:SHOW_POSITIONS]) + (f" and {more} more" if more > 0 else "")


def _with_memo(code: Code, memo: str | None) -> Code:
    if not memo or memo in code.description:
        return code
    return dataclasses.replace(
        code, description=f"{code.description}\n\n{memo}" if code.description else memo
    )


def _code_of(
    coding_el: ET.Element, code_by_guid: dict[str, str], case_guids: set[str], origin: str, where: str
) -> str | None:
    """The code name a ``Coding`` refers to; ``None`` for a reference to a Case (case membership)."""
    ref = coding_el.find(f"{_P}CodeRef")
    target = normalize_guid(ref.get("targetGUID", "")) if ref is not None else ""
    if target in code_by_guid:
        return code_by_guid[target]
    if target in case_guids:
        return None
    raise InputError(
        f"{origin}: {where}: a Coding refers to code guid '{target}', which is not in the codebook"
    )
