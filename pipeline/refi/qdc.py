"""REFI-QDA codebook exchange (``.qdc``): read and write, plus the ``Codes`` element for ``.qdpx``.

A ``.qdc`` file is QDA-XML in namespace ``urn:QDA-XML:codebook:1.0``::

    <CodeBook xmlns="urn:QDA-XML:codebook:1.0">
      <Codes>
        <Code guid="..." name="trust" isCodable="true" color="#1f77b4">
          <Description>...</Description>
          <Code guid="..." name="trust-building" isCodable="true"/>
        </Code>
      </Codes>
    </CodeBook>

GUIDs are stable: a code keeps ``Code.guid`` when it has one, otherwise its guid is a UUID5 of its
name (:func:`code_guid`), so exporting twice writes the same file.

REFI has no field for a code's inclusion and exclusion criteria, examples or paradigm dimension, so
they travel inside ``Description``: the description first, then, after a blank line, one line per
field (:func:`encode_description`)::

    The participant relies on the care team.

    Inclusion: explicit statements of reliance
    Exclusion: reliance on family
    Example: I know they will call me back
    Example: second example,
      whose second line is indented by two spaces
    Dimension: context

The field block is the last paragraph of the text, and only when every line of it is a
``Inclusion:``/``Exclusion:``/``Example:``/``Dimension:`` line or a continuation indented by two
spaces. A foreign ``.qdc`` whose descriptions have no such paragraph imports with its description
unchanged; qualflow's own files round-trip losslessly (:func:`decode_description` inverts
:func:`encode_description` for every valid code).
"""

from __future__ import annotations

import os
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.codebook import join_path, validate_codebook
from pipeline.domain import Code, Codebook
from pipeline.errors import InputError
from pipeline.fileio import write_atomic
from pipeline.limits import CODEBOOK_FILE_BYTES, check_file_size

__all__ = [
    "NS_CODEBOOK",
    "NS_PROJECT",
    "CodeText",
    "code_guid",
    "code_guids",
    "codebook_to_qdc",
    "codes_element",
    "codes_from_element",
    "decode_description",
    "encode_description",
    "parse_xml",
    "read_qdc",
    "stable_guid",
    "write_qdc",
]

NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"
NS_PROJECT = "urn:QDA-XML:project:1.0"
# uuid5(NAMESPACE_URL, "urn:qualflow"): the namespace of every guid qualflow derives.
QUALFLOW_NAMESPACE = uuid.UUID("91fda3ce-ddc6-525e-a4d9-e0a4ec984516")

_FIELDS = ("Inclusion", "Exclusion", "Example", "Dimension")
_FIELD_LINE = re.compile(r"(Inclusion|Exclusion|Example|Dimension): ?(.*)")
_SHORT_COLOR = re.compile(r"#([0-9A-Fa-f])([0-9A-Fa-f])([0-9A-Fa-f])")


def stable_guid(kind: str, key: str) -> str:
    """A deterministic GUID for ``key`` of a kind (``code``, ``source``, ``user`` ...).

    >>> stable_guid("code", "trust") == stable_guid("code", "trust")
    True
    >>> len(stable_guid("code", "trust"))
    36
    """
    return str(uuid.uuid5(QUALFLOW_NAMESPACE, f"{kind}:{key}"))


def code_guid(code: Code) -> str:
    """``code.guid`` when set, otherwise a UUID5 of the code's key (its name, or path)."""
    return code.guid if code.guid else stable_guid("code", code.name)


def code_guids(cb: Codebook) -> dict[str, str]:
    """Map each code's key (``Code.name``) to the guid :func:`codes_element` writes for it."""
    return {c.name: code_guid(c) for c in cb.codes}


def normalize_guid(guid: str) -> str:
    """Lower case, without braces: the form guids are compared in.

    >>> normalize_guid("{0F8FAD5B-D9CB-469F-A165-70867728950E}")
    '0f8fad5b-d9cb-469f-a165-70867728950e'
    """
    return guid.strip().strip("{}").lower()


# --------------------------------------------------------------------------------------------------
# Description <-> description, inclusion, exclusion, examples, dimension
# --------------------------------------------------------------------------------------------------


@dataclass
class CodeText:
    """The text fields of a code that travel inside a REFI ``Description``."""

    description: str = ""
    inclusion: str = ""
    exclusion: str = ""
    examples: list[str] = field(default_factory=list)
    dimension: str | None = None


def _field_lines(key: str, value: str) -> list[str]:
    first, *rest = value.split("\n")
    return [f"{key}: {first}", *(f"  {line}" for line in rest)]


def _parse_block(block: str) -> list[tuple[str, str]] | None:
    fields: list[tuple[str, list[str]]] = []
    for line in block.split("\n"):
        match = _FIELD_LINE.fullmatch(line)
        if match:
            fields.append((match.group(1), [match.group(2)]))
        elif line.startswith("  ") and fields:
            fields[-1][1].append(line[2:])
        else:
            return None
    return [(key, "\n".join(lines)) for key, lines in fields] or None


def _split(text: str) -> tuple[str, str]:
    cut = text.rfind("\n\n")
    return (text[:cut], text[cut + 2 :]) if cut >= 0 else ("", text)


def encode_description(code: Code) -> str:
    """The ``Description`` text for ``code``: its description, then a block of field lines.

    >>> print(encode_description(Code("t", description="Relies on staff.", examples=["I trust them"])))
    Relies on staff.
    <BLANKLINE>
    Example: I trust them
    """
    lines: list[str] = []
    if code.inclusion:
        lines += _field_lines("Inclusion", code.inclusion)
    if code.exclusion:
        lines += _field_lines("Exclusion", code.exclusion)
    for example in code.examples:
        lines += _field_lines("Example", example)
    if code.dimension:
        lines += _field_lines("Dimension", code.dimension)
    if not lines and _parse_block(_split(code.description)[1]) is not None:
        # the description itself ends like a field block: add an empty field so it stays a description
        lines = ["Inclusion: "]
    if not lines:
        return code.description
    block = "\n".join(lines)
    return f"{code.description}\n\n{block}" if code.description else block


def decode_description(text: str) -> CodeText:
    """Split a ``Description`` text back into the fields :func:`encode_description` wrote.

    >>> decode_description("Relies on staff.\\n\\nInclusion: explicit\\nDimension: context")
    CodeText(description='Relies on staff.', inclusion='explicit', exclusion='', examples=[], dimension='context')
    >>> decode_description("Plain text from another tool.").description
    'Plain text from another tool.'
    """
    head, block = _split(text)
    fields = _parse_block(block)
    if fields is None:
        return CodeText(description=text)
    out = CodeText(description=head)
    for key, value in fields:
        if key == "Inclusion":
            out.inclusion = f"{out.inclusion}\n{value}" if out.inclusion else value
        elif key == "Exclusion":
            out.exclusion = f"{out.exclusion}\n{value}" if out.exclusion else value
        elif key == "Example":
            out.examples.append(value)
        else:
            out.dimension = value.strip() or None
    return out


# --------------------------------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------------------------------


def parse_xml(data: bytes, origin: str) -> ET.Element:
    """Parse XML bytes; a syntax error becomes an InputError naming ``origin`` and the line."""
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        line, column = err.position
        reason = re.sub(r": line \d+, column \d+$", "", str(err))
        raise InputError(
            f"{origin} line {line}, column {column}: not well-formed XML ({reason}); "
            "export the file again from your QDA tool"
        ) from None
    except (LookupError, ValueError) as err:  # e.g. <?xml encoding="utf-x"?>: an unknown encoding
        raise InputError(
            f"{origin}: not readable XML ({err}); export the file again from your QDA tool as UTF-8"
        ) from None


def codes_element(cb: Codebook) -> ET.Element:
    """The ``<Codes>`` element of ``cb``, children nested in their parents.

    Tags are written without a namespace: the document's root element declares the default
    namespace (``xmlns=``), :data:`NS_CODEBOOK` in a ``.qdc``, :data:`NS_PROJECT` in a ``.qdpx``
    (ElementTree cannot combine ``default_namespace`` with plain attribute names).

    Parameters
    ----------
    cb : Codebook
        A validated codebook (tree order).
    """
    codes_el = ET.Element("Codes")
    elements: dict[str, ET.Element] = {}
    for code in cb.codes:
        parent_el = elements[code.parent] if code.parent is not None else codes_el
        el = ET.SubElement(parent_el, "Code")
        el.set("guid", code_guid(code))
        el.set("name", code.title)
        el.set("isCodable", "true" if code.is_codable else "false")
        if code.color:
            el.set("color", code.color)
        text = encode_description(code)
        if text:
            ET.SubElement(el, "Description").text = text
        elements[code.name] = el
    return codes_el


def _parse_codable(value: str | None, where: str) -> bool:
    if value is None:
        return True
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise InputError(f"{where}: isCodable='{value}' is not true or false")


def codes_from_element(codes_el: ET.Element, ns: str, origin: str) -> list[Code]:
    """Read the nested ``Code`` elements under ``codes_el`` (a ``Codes`` element), parents first.

    The result is not validated; pass it through :func:`pipeline.codebook.validate_codebook`.
    """
    out: list[Code] = []

    def visit(el: ET.Element, ancestors: list[str]) -> None:
        parent = join_path(ancestors) if ancestors else None  # validate_codebook resolves the path
        for child in el.findall(f"{{{ns}}}Code"):
            guid = child.get("guid")
            name = (child.get("name") or "").strip()
            if not name:
                raise InputError(f"{origin}: the Code with guid {guid} has no name; name it in your QDA tool")
            where = f"{origin}: code '{name}'"
            color = child.get("color")
            if color:
                color = color.strip()
                short = _SHORT_COLOR.fullmatch(color)
                if short:
                    color = "#" + "".join(c * 2 for c in short.groups())
            desc_el = child.find(f"{{{ns}}}Description")
            text = decode_description(
                (desc_el.text or "").replace("\r\n", "\n") if desc_el is not None else ""
            )
            out.append(
                Code(
                    name=name,
                    description=text.description,
                    inclusion=text.inclusion,
                    exclusion=text.exclusion,
                    examples=text.examples,
                    parent=parent,
                    dimension=text.dimension,
                    color=color or None,
                    guid=guid.strip() if guid else None,
                    is_codable=_parse_codable(child.get("isCodable"), where),
                )
            )
            visit(child, [*ancestors, name])

    visit(codes_el, [])
    return out


def codebook_to_qdc(cb: Codebook) -> bytes:
    """The bytes :func:`write_qdc` writes: UTF-8 XML, indented, deterministic.

    Raises
    ------
    InputError
        ``cb`` has no codes: REFI-QDA's ``CodeBook`` needs ``Codes`` with at least one ``Code``.
    """
    cb = validate_codebook(cb, "codebook to write")
    if not cb.codes:
        raise InputError(
            "the codebook has no codes, and a REFI-QDA .qdc needs at least one; import a codebook with codes first"
        )
    root = ET.Element("CodeBook", {"xmlns": NS_CODEBOOK})
    root.append(codes_element(cb))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_qdc(cb: Codebook, path: str | os.PathLike[str]) -> None:
    """Write ``cb`` as a REFI-QDA ``.qdc`` codebook (atomically)."""
    write_atomic(path, codebook_to_qdc(cb))


def read_qdc(path: str | os.PathLike[str]) -> Codebook:
    """Read a REFI-QDA ``.qdc`` codebook.

    Parameters
    ----------
    path : path-like
        The ``.qdc`` file (root ``CodeBook`` in ``urn:QDA-XML:codebook:1.0``).

    Returns
    -------
    Codebook
        Validated, in tree order, named after the file's stem.

    Raises
    ------
    InputError
        Not XML (file and line), not a REFI codebook (root or namespace), a Code without a name, and
        every rule of :func:`pipeline.codebook.validate_codebook`.
    """
    origin = str(path)
    check_file_size(path, CODEBOOK_FILE_BYTES)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{origin}: no such file") from None
    root = parse_xml(data, origin)
    ns = next((n for n in (NS_CODEBOOK, NS_PROJECT) if root.tag == f"{{{n}}}CodeBook"), None)
    if ns is None:
        raise InputError(
            f"{origin}: not a REFI-QDA codebook (root element {root.tag}, expected CodeBook in "
            f"namespace {NS_CODEBOOK}); export the codebook as REFI-QDA .qdc"
        )
    codes_el = root.find(f"{{{ns}}}Codes")
    codes = codes_from_element(codes_el, ns, origin) if codes_el is not None else []
    return validate_codebook(Codebook(codes=codes, name=Path(path).stem), origin)
