"""Write ``codings.csv`` from the coders' decisions held below as (source, quote, code, coder) rows.

Each quote is located with ``str.find`` in the exact text of its transcript and must occur exactly once,
so offsets are right by construction. The coded span is then the whole sentence, or run of sentences,
that the quote touches (coders code sentences, the quote only has to be unique); a quote prefixed with
``turn:`` codes the whole participant turn. Spans never include the ``Name:`` label. A coder field
``"sara+reza"`` is one decision both coders made on the same span. Run from the repository root::

    .venv/bin/python data/demo/make_codings.py
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABEL = re.compile(r"(\*\*)?[^:\n*]+:(\*\*)? ")  # "Name: " or "**Name:** " at a line start
SENTENCE_END = re.compile(r"[.?!](?= |$)")
FILES = {"int01": "int01.txt", "int02": "int02.txt", "int03": "int03.txt", "int04": "int04.md"}

TURN = "turn:"  # quote prefix: the span is the whole participant turn containing the quote

CODINGS: tuple[tuple[str, str, str, str], ...] = (
    # int01: Mina, head of strategic planning, headquarters
    ("int01", "Governance is the work of getting all those hands to", "inter-agency-coordination", "sara"),
    ("int01", "For me it means that almost nothing we deliver is", "inter-agency-coordination", "reza"),
    ("int01", "whoever feels the pain most tends to call the meeting.", "inter-agency-coordination", "reza"),
    ("int01", TURN + "Our structure was designed for a world where we", "organisational-structure", "sara"),
    ("int01", "Every decision of any weight still goes up to the board", "organisational-structure", "reza"),
    ("int01", "changed the employer registration form without telling", "organisational-structure", "sara"),
    ("int01", "our internal walls are sometimes higher than", "inter-organisational-misalignment", "reza"),
    ("int01", "The social security law is from a time before data exchange", "legal-background", "sara+reza"),
    ("int01", "We write memoranda of understanding, one partner at a time.", "tools", "sara+reza"),
    ("int01", "The welfare agency pays means-tested support to", "institutional-background", "sara+reza"),
    ("int01", "First, a clear mandate in law so that we are", "implementation-prerequisites", "sara+reza"),
    ("int01", "It comes and goes with the person. The previous", "implementation-prerequisites", "reza"),
    ("int01", "There is a small secretariat in my office that prepares a list of", "mechanisms", "sara+reza"),
    ("int01", "After the delays in pension payments two years ago, the", "stakeholder-pressure", "sara"),
    ("int01", "That kind of public questioning moves things faster than any", "stakeholder-pressure", "reza"),
    ("int01", "The most important is the shared employer register we built with the", "tools", "sara+reza"),
    ("int01", "We also set up a joint dashboard for the council so", "implementation-and-evaluation", "reza"),
    ("int01", "We tried it first in two provinces with very different", "phased-design", "sara+reza"),
    ("int01", "We agreed on a handful of indicators with the", "implementation-and-evaluation", "sara+reza"),
    ("int01", "The matching work that used to keep about forty people busy in", "efficiency", "sara+reza"),
    ("int01", "The time to the first pension payment has gone down from", "service-improvement", "sara"),
    ("int01", "Every new partner adds another interface, another", "increased-complexity", "sara+reza"),
    ("int01", "Some of our branch heads say they no longer understand", "reduced-accountability", "reza"),
    ("int01", "I would ask for one law that sets out data sharing between", "legal-background", "sara"),
    ("int01", "people underestimate how much of this rests on personal", "cultural-background", "sara"),
    # int02: Kaveh, director of information systems, headquarters
    ("int02", "here it can take a week just to find out who is allowed", "organisational-structure", "reza"),
    ("int02", TURN + "More every year. We exchange files or live", "inter-agency-coordination", "sara"),
    ("int02", "Our systems simply do not speak the same", "inter-organisational-misalignment", "sara+reza"),
    ("int02", "each agency bought its systems to serve its own", "inter-organisational-misalignment", "reza"),
    ("int02", "A signed agreement on what is shared and why,", "implementation-prerequisites", "sara+reza"),
    ("int02", "A good developer earns two or three times as much in a fintech", "resource-shortage", "sara"),
    ("int02", "We lose them faster than we can train them.", "resource-shortage", "reza"),
    ("int02", "the IT budget was cut in real terms, because the nominal figure", "resource-shortage", "reza"),
    ("int02", "Within six weeks we had to let employers file", "environmental-change", "sara+reza"),
    ("int02", "citizens now compare our portal with their banking app.", "social-background", "sara"),
    ("int02", "So digitalisation has pushed us to renegotiate almost every", "environmental-change", "sara"),
    ("int02", "The backbone now is a data exchange hub, a kind of common gateway", "tools", "sara+reza"),
    ("int02", "There is a technical working group with one architect from each", "mechanisms", "sara"),
    ("int02", "Proposals go through that group, and if they touch personal data they also", "tools", "reza"),
    ("int02", "We started with a single service, checking whether a person is", "phased-design", "sara+reza"),
    ("int02", "Once a month we send every partner a short", "implementation-and-evaluation", "sara+reza"),
    ("int02", TURN + "The clearest one is cost. We stopped paying for several", "cost-reduction", "sara"),
    ("int02", "we estimate the savings at around a fifth of the annual", "cost-reduction", "reza"),
    ("int02", "now most of them are fetched in the background and the", "service-improvement", "sara+reza"),
    ("int02", "Waiting times at the counters went down, and complaints about lost", "efficiency", "reza"),
    ("int02", "The data protection law requires a specific legal basis for", "legal-background", "sara+reza"),
    ("int02", "none of them was asked to make its system talk", "inter-organisational-misalignment", "sara"),
    ("int02", "Some agencies still re-check everything we send by hand", "cultural-background", "sara+reza"),
    ("int02", "The gateway has become critical, but nobody owns it legally.", "legal-background", "sara"),
    ("int02", "the citizen is left without anyone who will take", "reduced-accountability", "sara+reza"),
    ("int02", "I would create a proper career path for data", "implementation-prerequisites", "reza"),
    # int03: Leila, head of a provincial branch
    ("int03", "anything involving a new procedure, a new post or", "organisational-structure", "sara+reza"),
    ("int03", TURN + "Two years ago a circular required every pensioner", "organisational-structure", "sara"),
    ("int03", "We asked for an exception and the answer came back four", "organisational-structure", "reza"),
    ("int03", "The provincial labour directorate, the tax office, the", "inter-agency-coordination", "sara"),
    ("int03", "a lot gets solved by a phone call to someone you have", "cultural-background", "sara+reza"),
    ("int03", "the letter culture exists for a reason, because when", "cultural-background", "reza"),
    ("int03", "The population is getting older very quickly, because", "social-background", "sara+reza"),
    ("int03", "People also expect more than they used to; they see what", "social-background", "sara"),
    ("int03", "Inflation has been the big story for three years now.", "environmental-change", "sara+reza"),
    ("int03", "Local members of parliament also intervene, especially", "stakeholder-pressure", "sara+reza"),
    ("int03", "We have lost about fifteen percent of our posts in five", "resource-shortage", "sara+reza"),
    ("int03", "Since the pandemic most employers file online and younger", "environmental-change", "sara"),
    ("int03", "the older pensioners still come in with printouts they cannot", "social-background", "reza"),
    ("int03", "we set up a provincial social security committee about three", "mechanisms", "sara+reza"),
    ("int03", "so people no longer carry papers from one building to", "service-improvement", "sara"),
    ("int03", "Waiting times at those counters have fallen by about half.", "service-improvement", "reza"),
    ("int03", "We started with one town where the health office and our", "phased-design", "sara+reza"),
    ("int03", "The association now reviews our letters to pensioners", "public-participation", "sara+reza"),
    ("int03", "Twice a year we hold open meetings in the towns where anyone", "public-participation", "reza"),
    ("int03", "the citizen had nobody to complain to.", "reduced-accountability", "sara+reza"),
    ("int03", "it measures only what our branch does alone, so", "implementation-and-evaluation", "reza"),
    ("int03", "they told me to use the branch's own funds.", "resource-shortage", "sara"),
    ("int03", "It is not in any circular, so officially it does not", "implementation-prerequisites", "reza"),
    ("int03", "If they gave branches a framework and some real", "organisational-structure", "sara"),
    # int04: Farhad, policy adviser at the ministry (coded by sara only)
    ("int04", "Coordination, for us, is making sure that a worker who", "inter-agency-coordination", "sara"),
    ("int04", "job placement belongs to the employment service, which", "institutional-background", "sara"),
    ("int04", "The framework law is forty years old and has been amended so", "legal-background", "sara"),
    ("int04", "Nobody wants to give up a function because a", "inter-organisational-misalignment", "sara"),
    ("int04", "When a television programme showed a widow going from office", "stakeholder-pressure", "sara"),
    ("int04", "The employers' federation also lobbies hard, because they", "stakeholder-pressure", "sara"),
    ("int04", "Part of the managers' bonuses is tied to those shared targets, so it", "mechanisms", "sara"),
    ("int04", "When two managers lose money because the other one is slow, they", "mechanisms", "sara"),
    ("int04", "every exchange of data or service between two of its agencies is covered by", "tools", "sara"),
    ("int04", "Each quarter the agencies report against the shared", "implementation-and-evaluation", "sara"),
    ("int04", "we received over two thousand comments, many from", "public-participation", "sara"),
    ("int04", "we began with a single target, the first pension payment, and only", "phased-design", "sara"),
    ("int04", "coordination projects are the first to be postponed when the", "environmental-change", "sara"),
    ("int04", "The obvious one is that responsibility gets diluted.", "reduced-accountability", "sara"),
    ("int04", "has to send people to twenty meetings a month.", "increased-complexity", "sara"),
    ("int04", "sharing information can be used against you later, so the", "cultural-background", "sara"),
    ("int04", "gives a permanent legal basis for data exchange.", "legal-background", "sara"),
)


def resolve_span(text: str, quote: str) -> tuple[int, int]:
    """Character span coded by ``quote`` in ``text``.

    Parameters
    ----------
    text : str
        The transcript's exact text.
    quote : str
        A substring occurring exactly once in ``text``, optionally prefixed with :data:`TURN`.

    Returns
    -------
    tuple of (int, int)
        ``(start, end)`` of the sentences the quote touches (or of the whole turn with :data:`TURN`).

    Raises
    ------
    ValueError
        If the quote is not found exactly once, or is not inside a participant turn.
    """
    whole_turn = quote.startswith(TURN)
    quote = quote.removeprefix(TURN)
    if text.count(quote) != 1:
        raise ValueError(f"quote found {text.count(quote)} times, need exactly 1: {quote!r}")
    q_start = text.find(quote)
    q_end = q_start + len(quote)
    line_start = text.rfind("\n", 0, q_start) + 1
    line_end = text.find("\n", q_start)
    line_end = len(text) if line_end == -1 else line_end
    line = text[line_start:line_end]
    label = LABEL.match(line)
    if (
        label is None
        or line.startswith(("Interviewer", "**Interviewer"))
        or q_start < line_start + label.end()
    ):
        raise ValueError(f"quote is not in a participant turn: {quote!r}")
    body_start = line_start + label.end()
    if whole_turn:
        return body_start, line_end
    ends = [line_start + m.end() for m in SENTENCE_END.finditer(line)]
    start = max([e + 1 for e in ends if e + 1 <= q_start] + [body_start])
    end = min([e for e in ends if e >= q_end] + [line_end])
    return start, end


def build_rows() -> list[dict[str, str | int]]:
    """Resolve every decision in :data:`CODINGS` to character offsets.

    Returns
    -------
    list of dict
        One dict per (decision, coder) with keys ``source, start, end, code, coder``, sorted by source,
        start, coder and code.

    Raises
    ------
    ValueError
        If a quote cannot be resolved (see :func:`resolve_span`).
    """
    texts = {stem: (HERE / "transcripts" / name).read_text(encoding="utf-8") for stem, name in FILES.items()}
    rows: list[dict[str, str | int]] = []
    for source, quote, code, coders in CODINGS:
        try:
            start, end = resolve_span(texts[source], quote)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        for coder in coders.split("+"):
            rows.append({"source": source, "start": start, "end": end, "code": code, "coder": coder})
    rows.sort(key=lambda r: (str(r["source"]), int(r["start"]), str(r["coder"]), str(r["code"])))
    return rows


def main() -> None:
    """Write ``codings.csv`` next to this script."""
    with (HERE / "codings.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["source", "start", "end", "code", "coder"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(build_rows())


if __name__ == "__main__":
    main()
