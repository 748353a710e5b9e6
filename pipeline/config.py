"""``qualflow.toml``: the typed project configuration.

Read once at the edge (CLI, flows, review app) and passed in; library code never reads it itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, InputError
from pipeline.gate import check_promotion_metric
from pipeline.text import DETECTED_LANGUAGES

DEFAULT_REGISTERED_MODEL = "qualflow-suggester"
"""The MLflow registered model the flows train, gate and load the champion from."""

CONFIG_NAME = "qualflow.toml"
SEGMENT_MODES = ("turn", "sentence", "paragraph", "window")


@dataclass
class SegmentationConfig:
    mode: str = "sentence"  # turn | sentence | paragraph | window
    window: int = 3  # sentences per window (mode "window")
    stride: int = 2  # sentences between window starts (mode "window")
    include_interviewer: bool = False  # interviewer turns are stored, marked, and skipped by default


@dataclass
class EmbeddingConfig:
    model: str = "onnx-fp32:minilm"  # see `qualflow models list`; a folder: "sentence-transformers:/path"
    # (all-MiniLM-L6-v2 as float32 ONNX: torch's AnnoMI κ exactly, at its speed and 0.4x its memory;
    # int8 `onnx:minilm`, the default until 2026-12-02, is faster, 0.008-0.012 κ lower: docs/benchmarks.md)
    batch_size: int = 32
    # [embedding.languages] fa = "sentence-transformers:/path": the model for sources in a language
    # `model` does not cover (otherwise: character n-gram features fitted on the project's text)
    languages: dict[str, str] = field(default_factory=dict)


@dataclass
class SuggesterConfig:
    # "auto": evidence for a multi-label codebook, linear for an exclusive one (params exclusive = true)
    name: str = "auto"
    # how `train` resolves name = "auto": "cv" chooses among the candidates by grouped cross-validation
    # on the training sources' codings (the rule's choice on ties or too little data); "rule": the rule
    select: str = "cv"
    top_k: int = 3
    # the operating point of the suggesters that take one (evidence): share of coded segments that
    # should get a suggestion, or (when > 0) the top-1 precision to reach instead
    min_coverage: float = 0.95
    target_precision: float = 0.0
    # the per-source gate (evidence) never suggests a segment scoring below this (0: no floor, so a
    # source of one or two segments always gets its best one)
    source_floor: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    # contrastive fine-tuning of the sentence-transformer on the coded segments when training
    # (`qualflow train --fine-tune` for one run), within this many minutes of training
    fine_tune: bool = False
    fine_tune_minutes: float = 10.0
    # adjacent segments of one turn whose best code agrees become one suggestion on the passage
    # (pipeline.passages.merge_passages), of at most this many segments
    merge_passages: bool = True
    max_passage_segments: int = 5

    def __post_init__(self) -> None:
        # every caller builds suggesters from `params`: the operating point travels in it (explicit
        # params win; models.make_suggester drops these keys for suggesters without them)
        defaults = {"min_coverage": 0.95, "target_precision": 0.0, "source_floor": 0.0}
        for key, default in defaults.items():
            value = getattr(self, key)
            if value != default:
                self.params.setdefault(key, value)


@dataclass
class DiscoverConfig:
    max_candidates: int = 20  # most candidates one run proposes (a lead's review: tens, not hundreds)
    member_similarity: float = 0.1  # cosine to a candidate's centroid that makes a segment a member
    min_sources: int = 3  # a candidate needs segments from at least this many sources
    strength: float = 0.3  # share of the known codes' direction removed from each segment
    lexical_weight: float = 0.3  # weight of word overlap (TF-IDF + SVD) beside the embedding
    min_cluster_size: int = 3  # smallest cluster (core segments) that can become a candidate
    min_words: int = 4  # shorter segments ("Of course.") are left out of discovery
    # the earlier clustering's settings: still read, no longer used by `qualflow discover`
    clusterer: str = "agglomerative"
    distance_threshold: float = 0.7


REVIEW_POLICIES = ("first-wins", "independent")


@dataclass
class ReviewConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    blind: bool = False
    policy: str = "first-wins"  # "first-wins" | "independent" (every assigned coder decides for themselves)
    max_body_bytes: int = 1_048_576  # a larger request body is refused (413) before it is read
    behind_https_proxy: bool = False  # mark the session cookie Secure (it always is when served over HTTPS)
    login_failures_per_account: int = 5  # failed logins before an account is locked (doubling back-off)
    login_failures_per_client: int = 20  # failed logins before a client address is locked
    login_lockout_max_seconds: int = 900  # the longest lockout


TASK_RUNNERS = ("thread", "dask")


@dataclass
class FlowsConfig:
    process_every_minutes: int = 10
    retrain_cron: str = "0 2 * * *"
    promotion_metric: str = "macro_f1"
    promotion_margin: float = 0.0
    # `qualflow serve` registers the deployments in this Prefect work pool (type process) and exits;
    # `prefect worker start --pool NAME` runs them. Empty: `qualflow serve` runs them itself.
    work_pool: str = ""
    # "dask": process_interviews fans parsing and embedding out over Dask (dask_address, or a
    # LocalCluster of dask_workers processes); "thread": everything in the flow's process
    task_runner: str = "thread"
    dask_address: str = ""  # e.g. "tcp://10.0.0.6:8786" (a running dask scheduler); empty: LocalCluster
    dask_workers: int = 2  # LocalCluster size (one thread each)


@dataclass
class ProjectConfig:
    """Everything in ``qualflow.toml``. Relative paths are relative to the project folder."""

    name: str = "qualflow project"
    language: str = "auto"  # "auto" detects per source; or "en", "fa", ...
    interviewer_names: list[str] = field(default_factory=list)
    database_url: str = "sqlite:///qualflow.db"
    mlflow_tracking_uri: str = "sqlite:///mlflow.db"
    mlflow_experiment: str = "qualflow"
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    suggester: SuggesterConfig = field(default_factory=SuggesterConfig)
    discover: DiscoverConfig = field(default_factory=DiscoverConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)


_SECTIONS = {
    "segmentation": SegmentationConfig,
    "embedding": EmbeddingConfig,
    "suggester": SuggesterConfig,
    "discover": DiscoverConfig,
    "review": ReviewConfig,
    "flows": FlowsConfig,
}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for key, value in data.items():
        if key in _SECTIONS and cls is ProjectConfig:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table")
            kwargs[key] = _build(_SECTIONS[key], value, f"{where} [{key}]")
            continue
        default = getattr(defaults, key)
        expected: tuple[type, ...] = (int, float) if isinstance(default, float) else (type(default),)
        ok = isinstance(value, expected) and not (isinstance(value, bool) and not isinstance(default, bool))
        if not ok:
            kind = {
                bool: "true or false",
                int: "a whole number",
                float: "a number",
                str: "a string",
                list: "a list",
                dict: "a table",
            }.get(type(default), type(default).__name__)
            raise ConfigError(f"{where}: {key} = {value!r} must be {kind} (default {default!r})")
        kwargs[key] = float(value) if isinstance(default, float) else value
    return cls(**kwargs)


@lru_cache(maxsize=1)
def spacy_languages() -> frozenset[str]:
    """The language codes ``spacy.blank()`` knows (its ``spacy.lang`` packages), found without importing
    spaCy (every command reads the config)."""
    spec = importlib.util.find_spec("spacy")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    langs = Path(next(iter(spec.submodule_search_locations))) / "lang"
    if not langs.is_dir():
        return frozenset()
    return frozenset(p.name for p in langs.iterdir() if (p / "__init__.py").is_file())


def validate_language(language: str, where: str) -> str:
    """``language`` as qualflow uses it (trimmed, lower case: ``"EN"`` is ``"en"``), checked: ``"auto"``,
    a code spaCy knows or one the language detection gives.

    >>> validate_language(" EN ", "qualflow.toml")
    'en'
    >>> validate_language("klingon", "qualflow.toml")
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: qualflow.toml: language = 'klingon' must be "auto" or a language code such as "en", "de" or "fa" (a code spaCy or the language detection knows; default "auto")
    """
    code = language.strip().lower()
    if code != "auto" and code not in spacy_languages() | DETECTED_LANGUAGES:
        raise ConfigError(
            f'{where}: language = {language!r} must be "auto" or a language code such as "en", "de" or "fa" '
            '(a code spaCy or the language detection knows; default "auto")'
        )
    return code


def validate(cfg: ProjectConfig, where: str) -> ProjectConfig:
    cfg.language = validate_language(cfg.language, where)
    if cfg.segmentation.mode not in SEGMENT_MODES:
        raise ConfigError(
            f"{where}: segmentation mode {cfg.segmentation.mode!r} is not one of {list(SEGMENT_MODES)}"
        )
    if cfg.segmentation.window < 1 or cfg.segmentation.stride < 1:
        raise ConfigError(f"{where}: segmentation window and stride must be at least 1")
    r = cfg.review
    if (
        min(
            r.max_body_bytes,
            r.login_failures_per_account,
            r.login_failures_per_client,
            r.login_lockout_max_seconds,
        )
        < 1
    ):
        raise ConfigError(
            f"{where}: [review] max_body_bytes, login_failures_per_account, login_failures_per_client and "
            "login_lockout_max_seconds must be at least 1"
        )
    if r.policy not in REVIEW_POLICIES:
        raise ConfigError(f"{where}: [review] policy {r.policy!r} is not one of {list(REVIEW_POLICIES)}")
    if cfg.embedding.batch_size < 1:
        raise ConfigError(
            f"{where}: [embedding] batch_size = {cfg.embedding.batch_size!r} must be at least 1 (default 32)"
        )
    if not 1 <= r.port <= 65535:
        raise ConfigError(f"{where}: [review] port = {r.port!r} must be in 1-65535 (default 8000)")
    for lang, spec in cfg.embedding.languages.items():
        if not isinstance(spec, str) or not spec.strip():
            raise ConfigError(
                f'{where}: [embedding.languages] {lang} must name a model, e.g. "sentence-transformers:/path"'
            )
    validate_select(cfg.suggester.select, where)
    try:
        check_promotion_metric(cfg.flows.promotion_metric, f"{where}: [flows] promotion_metric")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if not cfg.flows.promotion_margin >= 0:
        raise ConfigError(
            f"{where}: [flows] promotion_margin {cfg.flows.promotion_margin!r} is negative: a challenger "
            "worse than the champion would be promoted; use 0 or more (default 0)"
        )
    if cfg.suggester.fine_tune_minutes <= 0:
        raise ConfigError(f"{where}: suggester fine_tune_minutes must be more than 0 (default 10)")
    if cfg.suggester.top_k < 1:
        raise ConfigError(f"{where}: suggester top_k must be at least 1")
    if cfg.suggester.max_passage_segments < 1:
        raise ConfigError(
            f"{where}: suggester max_passage_segments must be at least 1 (default 5; 1: no merging)"
        )
    if not 0.0 < cfg.suggester.min_coverage <= 1.0:
        raise ConfigError(f"{where}: suggester min_coverage must be in (0, 1], e.g. 0.95")
    if not 0.0 <= cfg.suggester.target_precision <= 1.0:
        raise ConfigError(f"{where}: suggester target_precision must be in [0, 1] (0: off)")
    if not 0.0 <= cfg.suggester.source_floor <= 1.0:
        raise ConfigError(
            f"{where}: suggester source_floor = {cfg.suggester.source_floor!r} must be a score in [0, 1] "
            "(default 0: no floor)"
        )
    _validate_discover(cfg.discover, where)
    _validate_flows(cfg.flows, where)
    return cfg


SELECT_METHODS = ("cv", "rule")


def validate_select(select: str, where: str) -> None:
    """``[suggester] select`` is one of :data:`SELECT_METHODS` (the config file and the retrain flow's
    parameter both go through here).

    >>> validate_select("cvv", "qualflow.toml")
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: qualflow.toml: suggester select = 'cvv' must be one of ['cv', 'rule'] (default "cv")
    """
    if select not in SELECT_METHODS:
        raise ConfigError(
            f'{where}: suggester select = {select!r} must be one of {list(SELECT_METHODS)} (default "cv")'
        )


def _validate_flows(f: FlowsConfig, where: str) -> None:
    # retrain_cron is checked by flows.serve.check_retrain_cron, with Prefect (which this layer must not
    # import), when the CLI opens a project and before `qualflow serve` registers anything
    rules = [
        (
            f.process_every_minutes >= 1,
            f"process_every_minutes = {f.process_every_minutes!r} must be at least 1 (default 10)",
        ),
        (
            f.task_runner in TASK_RUNNERS,
            f'task_runner = {f.task_runner!r} must be one of {list(TASK_RUNNERS)} (default "thread")',
        ),
        (f.dask_workers >= 1, f"dask_workers = {f.dask_workers!r} must be at least 1 (default 2)"),
        (
            not f.dask_address or re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+", f.dask_address) is not None,
            f"dask_address = {f.dask_address!r} must be a Dask scheduler address like "
            '"tcp://10.0.0.6:8786", or empty for a LocalCluster',
        ),
        (
            f.work_pool == f.work_pool.strip() and not any(c in f.work_pool for c in "/%&><"),
            f"work_pool = {f.work_pool!r} must be a Prefect work pool name (no spaces around it, "
            'none of / % & < >), e.g. "qualflow"',
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"{where} [flows]: {message}")


def _validate_discover(d: DiscoverConfig, where: str) -> None:
    rules = [
        (d.max_candidates >= 1, f"max_candidates = {d.max_candidates!r} must be at least 1 (default 20)"),
        (
            -1.0 <= d.member_similarity < 1.0,
            f"member_similarity = {d.member_similarity!r} must be a cosine in [-1, 1) (default 0.1)",
        ),
        (d.min_sources >= 1, f"min_sources = {d.min_sources!r} must be at least 1 (default 3)"),
        (0.0 <= d.strength <= 1.0, f"strength = {d.strength!r} must be between 0 and 1 (default 0.3)"),
        (
            0.0 <= d.lexical_weight < 1.0,
            f"lexical_weight = {d.lexical_weight!r} must be in [0, 1) (default 0.3)",
        ),
        (
            d.min_cluster_size >= 1,
            f"min_cluster_size = {d.min_cluster_size!r} must be at least 1 (default 3)",
        ),
        (d.min_words >= 0, f"min_words = {d.min_words!r} must be 0 or more (default 4)"),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"{where} [discover]: {message}")


def load_config(project_dir: Path) -> ProjectConfig:
    path = project_dir / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"{project_dir}: not a qualflow project (no {CONFIG_NAME}); run `qualflow init {project_dir}` "
            "or pass --project DIR"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}; fix the TOML syntax") from None
    return validate(_build(ProjectConfig, data, str(path)), str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")


_COMMENTS = {
    "language": 'language of the transcripts: "auto" detects it per source, or "en", "fa", ...',
    "interviewer_names": "speaker names that are interviewers (others are participants); empty = infer",
    "database_url": "SQLAlchemy URL; relative SQLite paths are inside the project folder",
    "mlflow_tracking_uri": "MLflow tracking store (a local SQLite file by default, or a server URL)",
}


#: Settings still read (old project files keep loading) but no longer used, so not written for new projects.
_NOT_WRITTEN = {("discover", "clusterer"), ("discover", "distance_threshold")}


def dumps_config(cfg: ProjectConfig) -> str:
    """``cfg`` as commented TOML (the file `qualflow init` writes)."""
    data = asdict(cfg)
    lines = ["# qualflow project settings (see docs/configuration.md)", ""]
    for key, value in data.items():
        if key in _SECTIONS:
            continue
        if key in _COMMENTS:
            lines.append(f"# {_COMMENTS[key]}")
        lines.append(f"{key} = {_toml_value(value)}")
    for section in _SECTIONS:
        lines += ["", f"[{section}]"]
        for key, value in data[section].items():
            if (section, key) not in _NOT_WRITTEN:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def resolve_project_dir(project: Path | None) -> Path:
    """``--project``, else ``QUALFLOW_PROJECT``, else the current folder."""
    if project is not None:
        return project.resolve()
    env = os.environ.get("QUALFLOW_PROJECT")
    return Path(env).resolve() if env else Path.cwd()


def resolve_sqlite_url(url: str, project_dir: Path) -> str:
    """Make a relative ``sqlite:///file.db`` URL point inside the project folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite://":
        rel = url[len(prefix) :]
        if rel and rel != ":memory:":
            return prefix + str((project_dir / rel).resolve())
    return url


def scheme_key(seg: SegmentationConfig) -> str:
    """The name under which segments of one segmentation setting are stored."""
    if seg.mode == "window":
        return f"window-{seg.window}-{seg.stride}"
    return seg.mode
