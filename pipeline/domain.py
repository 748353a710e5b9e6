"""Plain dataclasses shared by every part of qualflow.

Offsets are always character offsets into ``Source.text``: the text exactly as stored after
decoding (UTF-8, newlines folded to ``\\n``). ``text[start:end]`` is what a person sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Role = Literal["interviewer", "participant", "unknown"]
Dimension = Literal["phenomenon", "causal", "context", "intervening", "strategy", "consequence"]
PARADIGM_DIMENSIONS: tuple[str, ...] = (
    "phenomenon",
    "causal",
    "context",
    "intervening",
    "strategy",
    "consequence",
)
#: How a coding came to be. ``consensus``: a lead's adjudication of a round (coder ``consensus``); codings
#: exports and REFI-QDA projects carry it, so a project with adjudications exports and imports again.
ORIGINS: tuple[str, ...] = ("human", "model-accepted", "imported", "consensus")


class SuggestionState(StrEnum):
    """Where a suggestion is in review. ``pending`` ones are in a coder's queue; a decision moves one to
    ``accepted``, ``rejected`` or ``recoded`` (undo moves it back); the queue marks ``covered`` (a
    coder coded it already), ``duplicate`` and ``superseded`` (a newer version of the source) itself."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RECODED = "recoded"
    COVERED = "covered"
    DUPLICATE = "duplicate"
    SUPERSEDED = "superseded"


DECIDED_STATES: tuple[SuggestionState, ...] = (
    SuggestionState.ACCEPTED,
    SuggestionState.REJECTED,
    SuggestionState.RECODED,
)
"""The states a coder's decision leads to."""


class CandidateState(StrEnum):
    """Where a candidate open code is in a lead's review."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    MERGED = "merged"
    REJECTED = "rejected"


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Turn:
    """One speaker turn: ``text[start:end]`` of its source is what the speaker said.

    ``start``/``end`` cover the spoken words only (no ``Name:`` prefix, no timestamps).
    """

    speaker: str
    start: int
    end: int
    role: Role = "unknown"
    timestamp: float | None = None  # seconds from the start of the recording, when the file has it


@dataclass(frozen=True)
class ParsedTranscript:
    """What a reader returns: the exact text and the speaker turns found in it."""

    text: str
    turns: tuple[Turn, ...]
    format: str  # "txt", "md", "otter", "docx", "odt", "rtf", "pdf", "vtt", "srt", "csv", "tsv", "xlsx"
    notes: tuple[str, ...] = ()  # what the reader passed over (a table's unreadable times), for the user


@dataclass
class Source:
    """A transcript as stored: one version of one named file."""

    name: str
    text: str
    turns: list[Turn]
    format: str
    language: str = "en"
    content_hash: str = ""
    version: int = 1
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Segment:
    """A unit for coding and suggesting; ``source_text[start:end] == text`` always holds."""

    source: str
    index: int
    start: int
    end: int
    text: str
    turn_index: int | None = None
    speaker: str | None = None
    role: Role = "unknown"


@dataclass
class Code:
    """One code of a codebook.

    ``name`` is the code's *key*, the string codings, suggestions and decisions store: its name as
    written in its file or QDA tool, or, when another code of the codebook has the same name
    (ignoring case; e.g. "Other" under three themes, or a category and its main code), its path
    ``parent/child`` (``/`` inside a name written ``\\/``, see :mod:`pipeline.codebook`). Then
    ``given_name`` keeps the name as written, which every writer uses. ``parent`` is the parent's key
    (``None`` for a top-level code).
    """

    name: str
    description: str = ""
    inclusion: str = ""
    exclusion: str = ""
    examples: list[str] = field(default_factory=list)
    parent: str | None = None
    dimension: str | None = None  # one of PARADIGM_DIMENSIONS
    color: str | None = None  # "#RRGGBB"
    guid: str | None = None
    is_codable: bool = True
    given_name: str | None = None  # the name as written, when ``name`` is a path

    @property
    def title(self) -> str:
        """The name as written in the code's file or QDA tool."""
        return self.given_name or self.name


@dataclass
class Codebook:
    """An ordered list of codes; keys (``Code.name``) are unique, parents exist, no cycles (see
    pipeline.codebook)."""

    codes: list[Code]
    name: str = "codebook"

    def names(self) -> list[str]:
        return [c.name for c in self.codes]

    def get(self, name: str) -> Code | None:
        for c in self.codes:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True)
class Coding:
    """A code applied by a coder to ``source.text[start:end]``."""

    source: str
    start: int
    end: int
    code: str
    coder: str
    origin: str = "human"
    created_at: str | None = None  # ISO 8601
    memo: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """A model's proposal of a code for a segment (``kind`` deductive) or a candidate open code."""

    source: str
    segment: int
    start: int
    end: int
    code: str
    score: float
    rank: int
    model: str  # "<name>@<version>"
    kind: Literal["deductive", "inductive"] = "deductive"
