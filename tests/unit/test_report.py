"""The HTML report: self-contained, every section, escaped text, CSVs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipeline.domain import Code, Codebook, Coding, Segment, Source, Turn
from pipeline.errors import InputError
from pipeline.report import ReportBundle, build_report, summarise_corpus, write_report

# A small, realistic project on network governance: code -> sentences that express it.
QUOTES: dict[str, list[str]] = {
    "resource interdependence": [
        "None of us could run the programme alone; the clinic has the staff and the council has the money.",
        "We depend on the housing association for referrals, and they depend on our outreach workers.",
    ],
    "policy mandate": [
        "The ministry made joint commissioning a condition of the grant, so we had to sit at one table.",
        "Once the regional plan required a partnership board, every agency had to send someone senior.",
    ],
    "fragmented services": [
        "Families were sent from one office to the next and told the same story five times.",
    ],
    "shared decision-making": [
        "Decisions about the budget are taken together at the board, not by the lead agency on its own.",
        "We vote on priorities once a year and everybody, even the smallest charity, has one vote.",
    ],
    "coordination across agencies": [
        "The case conference every fortnight is where the nurses, the police and the schools line things up.",
    ],
    "brokering": [
        "Part of my job is to translate between the health people and the social workers so they stop talking past each other.",
        "I spend a lot of time on the phone connecting a manager in one agency with someone who can actually help.",
    ],
    "joint planning": [
        "We wrote the three-year plan together, chapter by chapter, with every partner signing it off.",
    ],
    "information sharing": [
        "The shared case database finally lets us see who else is working with a family.",
    ],
    "trust": [
        "It took two years before people stopped guarding their own numbers and trusted each other.",
        "Trust grew when the council admitted openly that its own service had failed.",
    ],
    "leadership turnover": [
        "Every time the director changes we start again, because the new one wants their own priorities.",
    ],
    "power asymmetry": [
        "The big hospital trust sets the agenda; the voluntary groups mostly listen.",
    ],
    "regional politics": [
        "The election changed the mood in the county, and the partnership became a political football.",
    ],
    "funding climate": [
        "With austerity, every partner was cutting posts while we were asked to do more together.",
    ],
    "service integration": [
        "Now a family has one key worker instead of six different appointments across town.",
        "The waiting list went down because the teams stopped duplicating each other's assessments.",
    ],
    "accountability gaps": [
        "When something goes wrong nobody knows whose responsibility it is any more.",
    ],
    "legitimacy": [
        "Residents see the partnership as their own now, not as another layer of bureaucracy.",
    ],
    "time pressure": [
        "Everything has to happen before the end of the financial year, which leaves no time to reflect.",
    ],
}

CODEBOOK = Codebook(
    [
        Code("causal conditions", dimension="causal", is_codable=False, color="#2b5d8a"),
        Code("resource interdependence", parent="causal conditions", description="Partners need each other."),
        Code("policy mandate", parent="causal conditions"),
        Code("fragmented services", parent="causal conditions"),
        Code("network governance", dimension="phenomenon", is_codable=False, color="#b5541c"),
        Code("shared decision-making", parent="network governance"),
        Code("coordination across agencies", parent="network governance"),
        Code("brokering", dimension="strategy"),
        Code("joint planning", dimension="strategy"),
        Code("information sharing", dimension="strategy"),
        Code("trust", dimension="intervening"),
        Code("leadership turnover", dimension="intervening"),
        Code("power asymmetry", dimension="intervening"),
        Code("regional politics", dimension="context"),
        Code("funding climate", dimension="context"),
        Code("service integration", dimension="consequence"),
        Code("accountability gaps", dimension="consequence"),
        Code("legitimacy", dimension="consequence"),
        Code("time pressure"),
    ],
    name="Network governance codebook",
)

# Which codes each interview touches, in order of collection (new codes taper off).
PLAN: list[list[str]] = [
    [
        "resource interdependence",
        "shared decision-making",
        "brokering",
        "trust",
        "service integration",
        "funding climate",
    ],
    ["policy mandate", "shared decision-making", "joint planning", "leadership turnover", "trust"],
    [
        "fragmented services",
        "coordination across agencies",
        "brokering",
        "accountability gaps",
        "regional politics",
        "service integration",
    ],
    ["resource interdependence", "information sharing", "power asymmetry", "legitimacy", "brokering"],
    ["policy mandate", "shared decision-making", "trust", "service integration", "time pressure"],
    ["brokering", "coordination across agencies", "funding climate", "trust"],
    ["resource interdependence", "joint planning", "service integration", "legitimacy"],
    ["shared decision-making", "brokering", "information sharing", "power asymmetry"],
]


# Codes that the coder also applies to a passage of the first (when the interview has both).
PAIRS = {
    "brokering": "trust",
    "shared decision-making": "power asymmetry",
    "resource interdependence": "shared decision-making",
    "joint planning": "service integration",
    "information sharing": "coordination across agencies",
    "policy mandate": "shared decision-making",
    "funding climate": "brokering",
    "coordination across agencies": "service integration",
}


def demo_project(accepted: bool = True) -> tuple[list[Source], list[Segment], list[Coding]]:
    """Eight interviews; two coders on the first three; some accepted suggestions."""
    sources, segments, codings = [], [], []
    for k, codes in enumerate(PLAN, 1):
        name = f"int{k:02d}"
        text, turns = "", []
        for j, code in enumerate(codes):
            q = "Interviewer: Can you say more about that?\n"
            text += q
            quote = QUOTES[code][(k + j) % len(QUOTES[code])]
            line = f"Participant: {quote}\n"
            start = len(text) + len("Participant: ")
            turns.append(Turn("Participant", start, start + len(quote), "participant"))
            segments.append(
                Segment(name, j, start, start + len(quote), quote, j, "Participant", "participant")
            )
            text += line
            codings.append(Coding(name, start, start + len(quote), code, "ana"))
            partner = PAIRS.get(code)
            if partner in codes:
                codings.append(Coding(name, start, start + len(quote), partner, "ana"))
            if k <= 3:
                codings.append(Coding(name, start, start + len(quote), code, "ben"))
            if accepted and (k + j) % 3 == 0:
                codings.append(Coding(name, start, start + len(quote), code, "ana", origin="model-accepted"))
        sources.append(Source(name, text, turns, "txt"))
    return sources, segments, codings


def demo_bundle(**overrides: object) -> ReportBundle:
    sources, segments, codings = demo_project()
    kwargs: dict[str, object] = dict(
        project="Partnership boards study",
        sources=summarise_corpus(sources, segments, codings),
        codebook=CODEBOOK,
        codings=codings,
        segments=segments,
        source_texts={s.name: s.text for s in sources},
        source_order=[s.name for s in sources],
        agreement_html=None,
        agreement_csv=None,
        model_runs=[
            {
                "run_id": "a1b2",
                "suggester": "prototype",
                "version": "1",
                "metrics": {"micro_f1": 0.41, "alpha": 0.38},
                "promoted": False,
            },
            {
                "run_id": "c3d4",
                "suggester": "linear",
                "version": "2",
                "metrics": {"micro_f1": 0.63, "alpha": 0.57},
                "promoted": True,
            },
        ],
        generated_at="2025-01-31 10:00",
    )
    kwargs.update(overrides)
    return ReportBundle(**kwargs)  # type: ignore[arg-type]


HEADINGS = [
    "Corpus",
    "Codebook",
    "Saturation",
    "Inter-coder agreement",
    "Co-occurrence",
    "Paradigm model",
    "Model runs",
    "Tables as CSV",
]


@pytest.fixture(scope="module")
def rendered() -> tuple[str, dict[str, str]]:
    return build_report(demo_bundle())


def test_self_contained(rendered: tuple[str, dict[str, str]]) -> None:
    html, _ = rendered
    assert "http://" not in html and "https://" not in html
    for attr in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', html):
        assert not attr.startswith("//") and "://" not in attr, attr
        assert attr.startswith(("data:image/png;base64,", "#")) or attr.endswith(".csv"), attr
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert html.count('src="data:image/png;base64,') == 4  # saturation, heatmap, network, paradigm


def test_every_section(rendered: tuple[str, dict[str, str]]) -> None:
    html, _ = rendered
    for h in HEADINGS:
        assert re.search(rf"<h2>{re.escape(h)}</h2>", html), h
        assert h in html.split("</nav>")[0]  # and in the table of contents
    assert "No two coders yet" in html
    assert "Saturation reached at" in html or "Saturation not reached" in html
    assert "Accepted suggestions:" in html
    assert "shared decision-making" in html and "c3d4" in html


def test_csvs(rendered: tuple[str, dict[str, str]]) -> None:
    _, csvs = rendered
    assert {
        "corpus.csv",
        "codebook.csv",
        "saturation_human.csv",
        "saturation_runs_human.csv",
        "saturation_accepted.csv",
        "saturation_runs_accepted.csv",
        "cooccurrence_counts.csv",
        "cooccurrence_jaccard.csv",
        "cooccurrence_association.csv",
        "paradigm.csv",
        "exemplar_quotes.csv",
        "model_runs.csv",
    } <= set(csvs)
    words = len(demo_project()[0][0].text.split())
    assert csvs["corpus.csv"].splitlines()[:2] == [
        "source,turns,segments,words,coders",
        f"int01,6,6,{words},ana; ben",
    ]
    assert (
        csvs["model_runs.csv"].splitlines()[0]
        == "run_id,suggester,version,promoted,metric.micro_f1,metric.alpha"
    )
    assert csvs["saturation_human.csv"].splitlines()[1].startswith("1,int01,6,6,")


def test_escapes_quotes_and_urls() -> None:
    sources, segments, codings = demo_project(accepted=False)
    evil = '<script>alert("x")</script> see https://evil.example/x.png'
    s0 = sources[0]
    start = len(s0.text)
    s0.text += f"Participant: {evil}\n"
    start += len("Participant: ")
    codings.append(Coding(s0.name, start, start + len(evil), "legitimacy", "ana"))
    code = Code('<img src="//evil.example/a">', description="<b>bold</b>", color="red;background:url(x)")
    cb = Codebook([*CODEBOOK.codes, code], name=CODEBOOK.name)
    html, csvs = build_report(
        demo_bundle(codebook=cb, codings=codings, source_texts={s.name: s.text for s in sources})
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<img src="//' not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "https://" not in html and "https&#58;//evil.example" in html
    assert "url(x)" not in html
    assert "saturation_accepted.csv" not in csvs  # no accepted suggestions here


def test_agreement_fragment_and_empty_project(tmp_path: Path) -> None:
    html, csvs = build_report(
        demo_bundle(
            agreement_html="<p>Krippendorff's alpha 0.71</p>", agreement_csv="coder_a,coder_b,alpha\n"
        )
    )
    assert "<p>Krippendorff's alpha 0.71</p>" in html and "agreement.csv" in csvs
    with pytest.raises(InputError, match="agreement panel contains external references"):
        build_report(demo_bundle(agreement_html='<img src="https://x.org/a.png">'))
    empty = demo_bundle(
        sources=[], codings=[], segments=[], source_texts={}, source_order=[], model_runs=None
    )
    html, _ = build_report(empty)
    assert "no codings yet" in html and "No model runs recorded yet" in html


def test_unknown_code_named() -> None:
    with pytest.raises(InputError, match="uses code 'ghost', which is not in the codebook"):
        build_report(demo_bundle(codings=[Coding("int01", 0, 5, "ghost", "ana")]))


def test_write_report(tmp_path: Path) -> None:
    path = write_report(demo_bundle(), tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert "report.html" in files and "paradigm.csv" in files
    assert not [f for f in files if f.endswith(".tmp")]


@pytest.mark.browser
def test_screenshot(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    path = write_report(demo_bundle(), tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        png = page.screenshot(full_page=True)
        browser.close()
    assert all(w > 0 for w in widths) and len(widths) == 4
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
