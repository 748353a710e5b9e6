"""The project database schema (SQLAlchemy 2, portable SQL: SQLite by default, PostgreSQL by URL).

Changes to these tables go through an Alembic migration in ``pipeline/store/migrations``.
Nothing is ever deleted from ``decisions``; codings are retracted, not deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SourceRow(Base):
    """One version of one transcript. ``text`` is exactly what offsets point into."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_sources_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    file_hash: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the raw bytes
    text_hash: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    role_override: Mapped[dict] = mapped_column(JSON, default=dict)  # speaker -> role
    ingest_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    turns: Mapped[list[TurnRow]] = relationship(
        back_populates="source", order_by="TurnRow.idx", cascade="all, delete-orphan"
    )


class TurnRow(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("source_id", "idx", name="uq_turns_source_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[float | None] = mapped_column(Float, nullable=True)

    source: Mapped[SourceRow] = relationship(back_populates="turns")


class SegmentRow(Base):
    """A coding unit; ``sources.text[start:end] == text``. ``scheme`` names the segmentation."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("source_id", "scheme", "idx", name="uq_segments_source_scheme_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    scheme: Mapped[str] = mapped_column(String(64))
    idx: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    turn_idx: Mapped[int | None] = mapped_column(Integer, nullable=True)
    speaker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16))


class CodebookVersionRow(Base):
    __tablename__ = "codebook_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    codes: Mapped[list[CodeRow]] = relationship(
        back_populates="codebook_version", order_by="CodeRow.position", cascade="all, delete-orphan"
    )


class CodeRow(Base):
    __tablename__ = "codes"
    __table_args__ = (UniqueConstraint("codebook_version_id", "name", name="uq_codes_version_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    codebook_version_id: Mapped[int] = mapped_column(ForeignKey("codebook_versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    parent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    inclusion: Mapped[str] = mapped_column(Text, default="")
    exclusion: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[list] = mapped_column(JSON, default=list)
    dimension: Mapped[str | None] = mapped_column(String(32), nullable=True)
    color: Mapped[str | None] = mapped_column(String(16), nullable=True)
    guid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    is_codable: Mapped[bool] = mapped_column(Boolean, default=True)
    # ``name`` is the code's key (its path where the name is shared); the name as written then
    given_name: Mapped[str | None] = mapped_column(String(255), nullable=True)

    codebook_version: Mapped[CodebookVersionRow] = relationship(back_populates="codes")


class CoderRow(Base):
    """A person (``kind='human'``) or a model version (``kind='model'``, name ``model:<name>@<v>``)."""

    __tablename__ = "coders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="human")
    role: Mapped[str] = mapped_column(String(16), default="coder")  # coder | lead
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # the REFI-QDA User guid a project file gave this coder (as written there); an export writes it back
    guid: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ModelVersionRow(Base):
    """A suggester version that made suggestions (mirrors the MLflow registry when one is used)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    suggester: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    embedding: Mapped[str] = mapped_column(String(255), default="")
    codebook_version_id: Mapped[int | None] = mapped_column(ForeignKey("codebook_versions.id"), nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class CodingRow(Base):
    """A coding of ``sources.text[start:end]``. At most one *active* coding per (source, start, end, code,
    coder): the partial unique index ``uq_codings_active`` (migration 0008) refuses a second, identical
    one however many requests race; retracted codings (``active=False``) stay out of it, as history."""

    __tablename__ = "codings"
    __table_args__ = (
        Index("ix_codings_source_coder", "source_id", "coder_id"),
        Index(
            "uq_codings_active",
            "source_id",
            "start",
            "end",
            "code",
            "coder_id",
            unique=True,
            sqlite_where=sql_text("active"),
            postgresql_where=sql_text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(255))
    codebook_version_id: Mapped[int] = mapped_column(ForeignKey("codebook_versions.id"))
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id"))
    origin: Mapped[str] = mapped_column(String(32), default="human")
    suggestion_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id"), nullable=True)
    memo: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # when the coding was made: from another tool, a REFI-QDA project file's creationDateTime
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # when it was written into this project (what a coding round counts; migration 0007)
    stored_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, nullable=True)


class CandidateRow(Base):
    """A candidate open code proposed by discovery; its members are inductive suggestions."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(255))
    keyphrases: Mapped[list] = mapped_column(JSON, default=list)
    quotes: Mapped[list] = mapped_column(JSON, default=list)  # segment ids
    coherence: Mapped[float] = mapped_column(Float, default=0.0)
    nearest_codes: Mapped[list] = mapped_column(JSON, default=list)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    codebook_version_id: Mapped[int | None] = mapped_column(ForeignKey("codebook_versions.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # a pipeline.domain.CandidateState
    resolution: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # unit mean of the members' raw embeddings: later runs continue it (same id) or, once it is
    # rejected, keep clusters like it out (migration 0002)
    centroid: Mapped[list] = mapped_column(JSON, default=list)
    # why it ranks where it does: score, coherence, sources, novelty, nearest code, placement, rank,
    # and the embedding and language the centroid belongs to (see models.discover.OpenCode.reasons)
    reasons: Mapped[dict] = mapped_column(JSON, default=dict)


class SuggestionRow(Base):
    __tablename__ = "suggestions"
    __table_args__ = (
        UniqueConstraint(
            "segment_id", "code", "model_version_id", "kind", name="uq_suggestions_segment_code_model_kind"
        ),
        Index("ix_suggestions_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), index=True)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(255))  # code name, or candidate label for inductive
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="deductive")
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    codebook_version_id: Mapped[int] = mapped_column(ForeignKey("codebook_versions.id"))
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # a pipeline.domain.SuggestionState
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("coders.id"), nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # optimistic concurrency
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DecisionRow(Base):
    """Append-only log of what coders did with suggestions (undo is a new decision)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id"), index=True)
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id"))
    action: Mapped[str] = mapped_column(String(16))  # accept|reject|recode|undo
    new_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    codebook_version_id: Mapped[int] = mapped_column(ForeignKey("codebook_versions.id"))
    previous_state: Mapped[str] = mapped_column(String(16))
    resulting_state: Mapped[str] = mapped_column(String(16))
    applied: Mapped[bool] = mapped_column(Boolean, default=True)  # False when another coder was first
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProcessedFileRow(Base):
    """Files the processing flow has finished, by content hash (idempotency across crashes)."""

    __tablename__ = "processed_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_hash: Mapped[str] = mapped_column(String(64), unique=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # done | failed
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoginThrottleRow(Base):
    """Failed logins per account (``account:<name>``) and per client (``client:<address>``).

    Kept in the project database so that every review-app process sees the same counts
    (see ``review/throttle.py``). Times are Unix seconds.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[float] = mapped_column(Float, default=0.0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)


class ReviewSessionRow(Base):
    """A logged-in review-app session, shared by every server process (migration 0005).

    ``token_hash`` is the SHA-256 of the random session id in the (signed) cookie: the table never holds
    a usable session id. Logout deletes the row; a password change deletes the coder's rows. Times are
    Unix seconds.
    """

    __tablename__ = "review_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


# --------------------------------------------------------------------------- rounds (migration 0006)


class RoundRow(Base):
    """A coding round: a set of assignments under one codebook version (``state`` open | closed).

    ``results`` holds what closing computed (coders, units, every coefficient with its interval).
    """

    __tablename__ = "rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    codebook_version_id: Mapped[int] = mapped_column(ForeignKey("codebook_versions.id"))
    state: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    results: Mapped[dict] = mapped_column(JSON, default=dict)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AssignmentRow(Base):
    """One coder's assignment in a round: a whole source, or a sample of its segments (``segment_ids``)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("round_id", "coder_id", "source_id", name="uq_assignments_round_coder_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    segment_ids: Mapped[list] = mapped_column(JSON, default=list)  # empty: the whole source
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CoderDecisionRow(Base):
    """Independent review: one coder's current state on one suggestion (the log stays in ``decisions``).

    The unique key (suggestion, coder) is the concurrency rule: no lost or duplicated decision per coder.
    """

    __tablename__ = "coder_decisions"
    __table_args__ = (
        UniqueConstraint("suggestion_id", "coder_id", name="uq_coder_decisions_suggestion_coder"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id"), index=True)
    coder_id: Mapped[int] = mapped_column(ForeignKey("coders.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AdjudicationRow(Base):
    """A lead's settlement of one disagreement unit of a round, recorded as the coder ``consensus``.

    ``codes`` are the consensus codes of the unit, ``coding_ids`` the consensus codings made,
    ``settled_coding_ids`` / ``settled_decision_ids`` the coders' codings and decisions it settled.
    """

    __tablename__ = "adjudications"
    __table_args__ = (
        UniqueConstraint("round_id", "source_id", "start", "end", name="uq_adjudications_round_unit"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    lead_id: Mapped[int] = mapped_column(ForeignKey("coders.id"))
    choice: Mapped[str] = mapped_column(String(64))
    codes: Mapped[list] = mapped_column(JSON, default=list)
    memo: Mapped[str | None] = mapped_column(Text, nullable=True)
    coding_ids: Mapped[list] = mapped_column(JSON, default=list)
    settled_coding_ids: Mapped[list] = mapped_column(JSON, default=list)
    settled_decision_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
