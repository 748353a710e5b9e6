"""The report's no-external-resource check looks at markup (src/href/url()), never at escaped text."""

from __future__ import annotations

import pytest

from pipeline.agreement_report import agreement_panel, to_html
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError
from pipeline.html_refs import external_references
from pipeline.report import build_report
from tests.unit.test_report import demo_bundle

URL_TEXT = "I read it on https://example.org/news and //cdn.example.org too."


def test_a_quote_and_a_code_name_with_urls_make_a_report() -> None:
    text = URL_TEXT + " Fine."
    a, b = 0, len(URL_TEXT)
    segs = [Segment("s1", 0, a, b, text[a:b]), Segment("s1", 1, b + 1, len(text), text[b + 1 :])]
    code = "source: https://example.org"
    codings = [
        Coding("s1", a, b, code, "sara"),
        Coding("s1", a, b, "other", "omid"),
        Coding("s1", b + 1, len(text), code, "omid"),
        Coding("s1", b + 1, len(text), code, "sara"),
    ]
    panel = to_html(
        agreement_panel(
            codings, segs, {"s1": text}, coders=["sara", "omid"], codes=[code, "other"], n_boot=50, seed=0
        )
    )
    assert "https://example.org" in panel  # the quote and the code name are shown, escaped, as text
    assert external_references(panel) == []
    html, _ = build_report(demo_bundle(agreement_html=panel, agreement_csv="a\n"))
    assert "example.org" in html


@pytest.mark.parametrize(
    "markup",
    [
        '<img src="https://x.org/a.png">',
        "<a href='//x.org/'>x</a>",
        '<img src="https&#58;//x.org/a.png">',  # an entity does not hide it
        "<div style=\"background: url( 'http://x.org/b.png' )\"></div>",
        '<style>@import "https://x.org/s.css";</style>',
        "<style>p { background: url(//x.org/c) }</style>",
        '<img srcset="data:image/png;base64,AA 1x, https://x.org/2.png 2x">',
        '<form action="ftp://x.org/"></form>',
    ],
)
def test_real_external_references_are_still_refused(markup: str) -> None:
    assert external_references(markup)
    with pytest.raises(InputError, match="agreement panel contains external references"):
        build_report(demo_bundle(agreement_html=markup))


@pytest.mark.parametrize(
    "markup",
    [
        "<p>see https://example.org and http://a.b</p>",
        '<p>&lt;img src="https://x.org/a.png"&gt;</p>',
        '<img src="data:image/png;base64,iVBORw0KGgo=">',
        '<a href="#row-3">row</a>',
        '<td title="https://example.org">code</td>',
    ],
)
def test_text_and_data_uris_pass(markup: str) -> None:
    assert external_references(markup) == []
    build_report(demo_bundle(agreement_html=markup))
