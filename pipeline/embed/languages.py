"""Which languages an embedding model covers, and what qualflow does with text in the others.

Every backend declares the languages it covers (``languages``: a tuple of language codes, or
``None`` for "any": a language-independent embedder, or a model that declares none). A
sentence-transformers folder declares them in its model card (the ``language:`` list of the
``README.md`` front matter; ``multilingual`` means any); all-MiniLM-L6-v2 says ``en``.

A project whose sources are in a language its model does not cover gets a
:class:`LanguageRoutedEmbedder`: segments in a covered language go to the model as before;
segments in another language go to the model named for it under ``[embedding.languages]``, or,
when none is named, to a :class:`CharNgramEmbedder` fitted on the project's own text (character
2-4-gram TF-IDF reduced with a truncated SVD: language-independent, no model needed). Each model
writes its own block of one vector, so one suggester (or one discovery run) sees every source,
and segments of different spaces never look alike by accident.

The fitted n-gram model is kept in ``<project>/.qualflow/charngram/`` and reused (its fingerprint,
a digest of what was fitted, is part of the routed embedder's fingerprint and so of every cache key
and model version); it is fitted again only when a language it was not fitted on appears.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed.base import Embedder, FloatMatrix, l2_normalize
from pipeline.embed.model_dir import KNOWN_MODEL_LANGUAGES, model_languages
from pipeline.text import detect_language, normalize

#: Names of a few languages for messages (others are shown by their code).
LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "tr": "Turkish", "pl": "Polish", "sv": "Swedish", "da": "Danish", "no": "Norwegian",
    "fi": "Finnish", "cs": "Czech", "sk": "Slovak", "sl": "Slovenian", "hr": "Croatian", "ro": "Romanian",
    "hu": "Hungarian", "et": "Estonian", "lv": "Latvian", "lt": "Lithuanian", "ca": "Catalan",
    "id": "Indonesian", "ms": "Malay", "vi": "Vietnamese", "tl": "Tagalog", "sw": "Swahili",
    "af": "Afrikaans", "sq": "Albanian", "is": "Icelandic", "ru": "Russian", "uk": "Ukrainian",
    "bg": "Bulgarian", "sr": "Serbian", "mk": "Macedonian", "be": "Belarusian", "kk": "Kazakh",
    "fa": "Persian", "ar": "Arabic", "ur": "Urdu", "ps": "Pashto", "hi": "Hindi", "mr": "Marathi",
    "ne": "Nepali", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "el": "Greek", "he": "Hebrew",
    "th": "Thai", "hy": "Armenian", "ka": "Georgian", "bn": "Bengali", "ta": "Tamil", "te": "Telugu",
    "kn": "Kannada", "ml": "Malayalam", "gu": "Gujarati", "pa": "Punjabi", "or": "Odia",
    "si": "Sinhala", "km": "Khmer", "lo": "Lao", "my": "Burmese", "am": "Amharic", "bo": "Tibetan",
}  # fmt: skip

CHARNGRAM_DIR = "charngram"


def language_name(code: str) -> str:
    """``"Persian (fa)"`` for ``"fa"``."""
    return f"{LANGUAGE_NAMES[code]} ({code})" if code in LANGUAGE_NAMES else code


def embedder_languages(embedder: Embedder) -> tuple[str, ...] | None:
    """The languages ``embedder`` covers (``None``: any), looking through cache wrappers."""
    inner = getattr(embedder, "inner", None)
    if inner is not None:
        return embedder_languages(inner)
    return getattr(embedder, "languages", None)


def covers(languages: tuple[str, ...] | None, language: str) -> bool:
    return languages is None or language in languages


# --------------------------------------------------------------------------- the n-gram fallback


class CharNgramEmbedder:
    """Character 2-4-gram TF-IDF (``char_wb``) + truncated SVD, fitted on a project's text.

    Language-independent: it needs no model, only text of the language it will embed. The
    fingerprint is a digest of the fitted vocabulary, IDF weights and SVD components, so a refit
    gets a new cache key.

    >>> e = CharNgramEmbedder(max_dim=8).fit(["بودجه کم است", "بودجه نداریم", "همکاری خوب است"] * 2)
    >>> X = e.encode(["بودجه کم است", "همکاری"])
    >>> X.shape[0], X.dtype.name, round(float(np.linalg.norm(X[0])), 3), e.fingerprint.startswith("charngram-v1:")
    (2, 'float32', 1.0, True)
    """

    languages: tuple[str, ...] | None = None  # any: it is fitted on whatever text it is given

    def __init__(self, max_dim: int = 256, ngram_range: tuple[int, int] = (2, 4), seed: int = 0) -> None:
        self.max_dim = max_dim
        self.ngram_range = ngram_range
        self.seed = seed
        self.fitted_languages: tuple[str, ...] = ()
        self._vectorizer: Any = None
        self._svd: Any = None
        self._fingerprint = ""

    def fit(self, texts: Sequence[str], languages: Iterable[str] = ()) -> CharNgramEmbedder:
        """Fit on ``texts`` (normalised, deduplicated); ``languages`` records what they were in."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = sorted({normalize(t) for t in texts if t.strip()})
        if not docs:
            raise ValueError("the character n-gram fallback needs some text to fit on")
        vec = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True, min_df=1, dtype=np.float32
        )
        T = vec.fit_transform(docs)
        n_comp = min(self.max_dim, T.shape[0] - 1, T.shape[1] - 1)
        svd = None
        if n_comp >= 2:
            svd = TruncatedSVD(n_components=n_comp, random_state=self.seed, algorithm="randomized")
            svd.fit(T)
        self._vectorizer, self._svd = vec, svd
        self.fitted_languages = tuple(sorted(set(languages)))
        h = hashlib.blake2b(digest_size=8)
        h.update(json.dumps(sorted(vec.vocabulary_.items()), ensure_ascii=False).encode())
        h.update(np.ascontiguousarray(vec.idf_, dtype="<f4").tobytes())
        if svd is not None:
            h.update(np.ascontiguousarray(svd.components_, dtype="<f4").tobytes())
        self._fingerprint = f"charngram-v1:{self.ngram_range[0]}-{self.ngram_range[1]}:{h.hexdigest()}"
        return self

    @property
    def fingerprint(self) -> str:
        if not self._fingerprint:
            raise ValueError("CharNgramEmbedder is not fitted")
        return self._fingerprint

    @property
    def dim(self) -> int:
        if self._vectorizer is None:
            raise ValueError("CharNgramEmbedder is not fitted")
        return int(self._svd.n_components if self._svd is not None else len(self._vectorizer.vocabulary_))

    def load(self) -> None:
        """Nothing to load (the fitted model is in memory)."""

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        T = self._vectorizer.transform([normalize(t) for t in texts])
        X = self._svd.transform(T) if self._svd is not None else T.toarray()
        return l2_normalize(X)

    def save(self, folder: Path) -> Path:
        """Write the fitted model to ``folder/<digest>.pkl`` and point ``folder/current.json`` at it."""
        folder.mkdir(parents=True, exist_ok=True)
        name = self.fingerprint.rsplit(":", 1)[1] + ".pkl"
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(folder / name)
        pointer = folder / "current.json"
        ptmp = pointer.with_suffix(".tmp")
        ptmp.write_text(json.dumps({"file": name, "fingerprint": self.fingerprint}), encoding="utf-8")
        ptmp.replace(pointer)
        return folder / name

    @staticmethod
    def load_current(folder: Path) -> CharNgramEmbedder | None:
        """The model ``folder/current.json`` points at, or ``None``."""
        pointer = folder / "current.json"
        if not pointer.is_file():
            return None
        path = folder / json.loads(pointer.read_text(encoding="utf-8"))["file"]
        if not path.is_file():
            return None
        obj = pickle.loads(path.read_bytes())  # noqa: S301 - our own file inside the project
        return obj if isinstance(obj, CharNgramEmbedder) else None


# --------------------------------------------------------------------------- routing by language


class LanguageRoutedEmbedder:
    """One vector space made of blocks: the base model's, and one per other model a language uses.

    A text's language is ``language_of(text)``; its vector is its model's vector in that model's
    block and zeros elsewhere (still of unit length). Languages not in ``routes`` go to ``base``.

    Parameters
    ----------
    base : Embedder
        The project's model (``[embedding] model``).
    routes : mapping of language code to Embedder
        The model for each language the base does not cover (configured, or the n-gram fallback).
    language_of : callable
        Text -> language code (deterministic: the cache keys by text).
    fallback_languages : iterable of str
        The routed languages that use the n-gram fallback (for messages).
    """

    languages: tuple[str, ...] | None = None

    def __init__(
        self,
        base: Embedder,
        routes: Mapping[str, Embedder],
        language_of: Callable[[str], str],
        *,
        rule: str = "auto",
        fallback_languages: Iterable[str] = (),
    ) -> None:
        self.base = base
        self.routes = dict(sorted(routes.items()))
        self.language_of = language_of
        self.rule = rule
        self.fallback_languages = tuple(sorted(fallback_languages))
        self.blocks: list[Embedder] = [base]
        for emb in self.routes.values():
            if all(emb.fingerprint != b.fingerprint for b in self.blocks):
                self.blocks.append(emb)
        self._dims: list[int] | None = None

    @property
    def fingerprint(self) -> str:
        routes = ",".join(f"{lang}={emb.fingerprint}" for lang, emb in self.routes.items())
        return f"lang[{self.rule}]({self.base.fingerprint}|{routes})"

    def _block_of(self, emb: Embedder) -> int:
        return next(i for i, b in enumerate(self.blocks) if b.fingerprint == emb.fingerprint)

    def dims(self) -> list[int]:
        if self._dims is None:
            self._dims = [b.dim for b in self.blocks]
        return self._dims

    @property
    def dim(self) -> int:
        return sum(self.dims())

    def load(self) -> None:
        for b in self.blocks:
            b.load()

    def block_index(self, text: str) -> int:
        lang = self.language_of(text)
        return self._block_of(self.routes[lang]) if lang in self.routes else 0

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        dims = self.dims()
        offsets = np.concatenate([[0], np.cumsum(dims)]).astype(int)
        out = np.zeros((len(texts), int(offsets[-1])), dtype=np.float32)
        which = np.array([self.block_index(t) for t in texts], dtype=int)
        for b, emb in enumerate(self.blocks):
            rows = np.flatnonzero(which == b)
            if len(rows):
                out[rows, offsets[b] : offsets[b + 1]] = emb.encode([texts[i] for i in rows])
        return out


# --------------------------------------------------------------------------- reading a spec


def why_embedding_changed(old: str, new: str) -> str:
    """Why a model's embedding fingerprint ``old`` is not the project's ``new``, for the message that
    stops comparing them: a routed project trained before qualflow routed segments by their source's
    language (``lang[auto]``) gets that reason, not "qualflow.toml changed".

    >>> why_embedding_changed("lang[auto](st:a|fa=b)", "lang[source](st:a|fa=b)")[:55]
    'this version of qualflow embeds each segment by the lan'
    >>> why_embedding_changed("st:a", "st:b")
    "it was trained on embedding 'st:a' and the project now uses 'st:b'"
    """
    if old.startswith("lang[auto](") and new.startswith("lang[source]("):
        return (
            "this version of qualflow embeds each segment by the language of its source (it read each "
            "text alone before, so some short segments went to another model)"
        )
    return f"it was trained on embedding {old!r} and the project now uses {new!r}"


def language_rule(project_language: str) -> Callable[[str], str]:
    """How a text's language is found: the configured one, or :func:`detect_language` per text."""
    if project_language != "auto":
        return lambda _text: project_language
    return detect_language


class SourceLanguages:
    """A text's language is that of the source it is a segment of (decided once per source at ingest,
    on all its text), so a short German answer ("Warum?") is not taken for English; a text that is no
    source's segment, or the segment of sources in two languages, is detected on its own.

    >>> rule = SourceLanguages([("Warum Kunst?", "de"), ("OK.", "de"), ("OK.", "en")])
    >>> rule("Warum  Kunst?"), rule("OK."), rule("Ich habe den Film gestern gesehen und er hat mich sehr berührt.")
    ('de', 'en', 'de')
    """

    def __init__(self, texts_languages: Iterable[tuple[str, str]]) -> None:
        by_text: dict[str, str | None] = {}
        for text, lang in texts_languages:
            key = normalize(text)
            by_text[key] = lang if by_text.get(key, lang) == lang else None
        self.by_text = by_text

    def __call__(self, text: str) -> str:
        lang = self.by_text.get(normalize(text))
        return lang if lang is not None else detect_language(text)


def spec_languages(spec: str, base_dir: Path) -> tuple[str, ...] | None:
    """The languages of the model ``spec`` names, read without loading it."""
    from pipeline.embed.factory import ONNX_BACKENDS, parse_embedder_spec
    from pipeline.embed.model_dir import resolve_model_dir

    backend, arg = parse_embedder_spec(spec)
    if backend == "hashing":
        return None
    if backend in ONNX_BACKENDS:
        from pipeline.embed.onnx import is_onnx_export

        path = Path(arg).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if arg and is_onnx_export(path):
            manifest = json.loads((path / "qualflow_onnx.json").read_text(encoding="utf-8"))
            langs = manifest.get("languages", "unset")
            if langs != "unset":
                return None if langs is None else tuple(langs)
            label = str(manifest.get("source_fingerprint", "")).split(":")
            return KNOWN_MODEL_LANGUAGES.get(label[1]) if len(label) > 1 else None
    return model_languages(resolve_model_dir(arg or "minilm", base_dir))
