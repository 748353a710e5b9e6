"""Find the external references in an HTML fragment: what a browser would fetch, never what it shows.

Only markup counts: URL-valued attributes (``src``, ``href``, ``srcset``, ``action``, ...), ``url()`` and
``@import`` in ``style`` attributes and ``<style>`` elements. Text, including escaped text such as a
quote that mentions ``https://example.org``, is text and never a reference.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

URL_ATTRIBUTES = frozenset(
    {
        "src",
        "href",
        "srcset",
        "action",
        "formaction",
        "poster",
        "data",
        "background",
        "cite",
        "longdesc",
        "manifest",
        "ping",
        "xlink:href",
        "codebase",
        "archive",
        "imagesrcset",
    }
)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.IGNORECASE | re.DOTALL)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")


def is_external(url: str) -> bool:
    """Whether a browser would fetch ``url`` from elsewhere: any scheme but ``data:``, or ``//host``.

    >>> [is_external(u) for u in ("https://x.org/a.png", "//x.org", "data:image/png;base64,AA", "#top", "a.png")]
    [True, True, False, False, False]
    """
    u = "".join(url.split())  # browsers drop tabs and newlines inside URLs
    if u.startswith(("//", "\\\\", "/\\", "\\/")):
        return True
    m = _SCHEME.match(u)
    return m is not None and m.group(1).lower() != "data"


def _css_urls(css: str) -> list[str]:
    return [m.group(2) if m.group(2) is not None else m.group(4) for m in _CSS_URL.finditer(css)]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._in_style = True
        for name, value in attrs:
            if value is None:
                continue
            if name in URL_ATTRIBUTES:
                urls = (
                    [part.strip().split(" ")[0] for part in value.split(",")] if "srcset" in name else [value]
                )
                self.found += [u for u in urls if is_external(u)]
            elif name == "style":
                self.found += [u for u in _css_urls(value) if is_external(u)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += [u for u in _css_urls(data) if is_external(u)]


def external_references(html: str) -> list[str]:
    """The external URLs the markup of ``html`` refers to, in document order.

    >>> external_references('<p>see https://example.org &lt;img src="https://x"&gt;</p>')
    []
    >>> external_references('<img src="https://x.org/a.png"><p style="background:url(//y.org/b)">')
    ['https://x.org/a.png', '//y.org/b']
    """
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser.found
