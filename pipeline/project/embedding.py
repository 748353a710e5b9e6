"""The project's embedder: ``[embedding] model``, with the sources of languages it does not cover routed
to the model ``[embedding.languages]`` names for them, or to character n-gram features fitted on the
project's own text (see :mod:`pipeline.embed.languages`); and the notes that say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from pipeline.embed.base import Embedder
from pipeline.embed.languages import (
    CHARNGRAM_DIR,
    CharNgramEmbedder,
    LanguageRoutedEmbedder,
    SourceLanguages,
    covers,
    embedder_languages,
    language_name,
    language_rule,
    spec_languages,
)
from pipeline.project.core import Project
from pipeline.text import counted


def project_embedder(
    project: Project,
    *,
    progress: bool = True,
    base_spec: str | None = None,
    extra_languages: Iterable[str] = (),
    extra_texts: Sequence[str] = (),
) -> Embedder:
    """The project's embedder, cached in ``.qualflow``: ``base_spec`` (default ``[embedding] model``)
    routed by language (:func:`routed_embedder`)."""
    from pipeline.embed.factory import make_embedder

    cfg = project.config.embedding
    base = make_embedder(
        base_spec or cfg.model,
        cache_dir=project.cache_dir,
        batch_size=cfg.batch_size,
        progress=progress,
        base_dir=project.root,
    )
    return routed_embedder(
        project, base, progress=progress, extra_languages=extra_languages, extra_texts=extra_texts
    )


def project_languages(project: Project) -> dict[str, str]:
    """Source name -> language of the project's current sources."""
    from sqlalchemy import select

    from pipeline.store.schema import SourceRow

    with project.store.transaction() as session:
        return dict(
            session.execute(select(SourceRow.name, SourceRow.language).where(SourceRow.is_current)).all()
        )


def uncovered_languages(project: Project, languages: Iterable[str]) -> list[str]:
    """The languages among ``languages`` that neither the project's model nor a configured model covers."""
    cfg = project.config.embedding
    base = spec_languages(cfg.model, project.root)
    return sorted({lang for lang in languages if not covers(base, lang) and lang not in cfg.languages})


def coverage_notes(project: Project, sources: Mapping[str, str] | None = None) -> list[str]:
    """One line per language of ``sources`` (name -> language; default: the project's current
    sources) that the project's model does not cover, saying what qualflow does about it."""
    srcs = project_languages(project) if sources is None else dict(sources)
    model = project.config.embedding.model
    base = spec_languages(model, project.root)
    out = []
    for lang in uncovered_languages(project, srcs.values()):
        names = sorted(n for n, lg in srcs.items() if lg == lang)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        out.append(
            f"{counted(len(names), 'source')} in {language_name(lang)} ({shown}): the embedding model {model!r} covers "
            f"{', '.join(base or ())} only, so {'its' if len(names) == 1 else 'their'} segments are scored with character n-gram features "
            f"fitted on this project's text instead (weaker than a model that knows {lang}); to use one, set "
            f'[embedding.languages] {lang} = "sentence-transformers:/path/to/model" in qualflow.toml'
        )
    return out


def routed_embedder(
    project: Project,
    base: Embedder,
    *,
    progress: bool = True,
    extra_languages: Iterable[str] = (),
    extra_texts: Sequence[str] = (),
) -> Embedder:
    """``base``, or a :class:`LanguageRoutedEmbedder` when the project has (or configures) languages
    ``base`` does not cover. ``extra_languages`` / ``extra_texts``: of sources not stored yet."""
    from pipeline.embed.factory import make_embedder
    from pipeline.store.queries import load_segments

    cfg = project.config.embedding
    present = set(project_languages(project).values()) | set(extra_languages)
    base_langs = embedder_languages(base)
    if not cfg.languages and all(covers(base_langs, lang) for lang in present):
        return base
    rule = source_language_rule(project)
    routes: dict[str, Embedder] = {}
    for lang, spec in sorted(cfg.languages.items()):
        routes[lang] = make_embedder(
            spec,
            cache_dir=project.cache_dir,
            batch_size=cfg.batch_size,
            progress=progress,
            base_dir=project.root,
        )
    fallback_langs = sorted(lang for lang in present if not covers(base_langs, lang) and lang not in routes)
    if fallback_langs:
        folder = project.cache_dir / CHARNGRAM_DIR
        fallback = CharNgramEmbedder.load_current(folder)
        if fallback is None or not set(fallback_langs) <= set(fallback.fitted_languages):
            with project.store.transaction() as session:
                texts = [r.text for r, _ in load_segments(session, project.config, include_interviewer=True)]
            texts += list(extra_texts)
            wanted = set(fallback_langs) | set(fallback.fitted_languages if fallback else ())
            fit_texts = [t for t in texts if rule(t) in wanted]
            fallback = CharNgramEmbedder().fit(fit_texts or texts, languages=wanted)
            fallback.save(folder)
        cached: Embedder = fallback
        if project.cache_dir is not None:
            from pipeline.embed.cache import CachedEmbedder, EmbeddingCache

            cached = CachedEmbedder(fallback, EmbeddingCache(project.cache_dir / "embeddings.sqlite"))
        for lang in fallback_langs:
            routes[lang] = cached
    if not routes:
        return base
    # "source": each segment goes where its source's language says (fingerprints name the rule)
    label = "source" if project.config.language == "auto" else project.config.language
    return LanguageRoutedEmbedder(base, routes, rule, rule=label, fallback_languages=fallback_langs)


def source_language_rule(project: Project) -> Callable[[str], str]:
    """The language of a text: the configured ``language``, or (``"auto"``) the language of the
    current source the text is a segment of (:class:`~pipeline.embed.languages.SourceLanguages`)."""
    if project.config.language != "auto":
        return language_rule(project.config.language)
    from sqlalchemy import select

    from pipeline.store.schema import SegmentRow, SourceRow

    with project.store.transaction() as session:
        q = (
            select(SegmentRow.text, SourceRow.language)
            .join(SourceRow, SegmentRow.source_id == SourceRow.id)
            .where(SourceRow.is_current)
            .order_by(SegmentRow.id)
        )
        return SourceLanguages((text, lang) for text, lang in session.execute(q))
