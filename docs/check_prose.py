"""Check a built site for a reader at 1280 px: paragraphs of at most ``--words`` words
(150) and code or output blocks of at most ``--columns`` columns (90; wider ones scroll
sideways in the theme's page width).

    sphinx-build -b html docs docs/_build/html
    python docs/check_prose.py docs/_build/html

Every page is read, the rendered tutorials and the API pages included; the highlighted
module sources of ``_modules/`` (the ``[source]`` links) are not prose and are skipped.
Prints one line per offence and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import sys
from html.parser import HTMLParser
from pathlib import Path


class _Blocks(HTMLParser):
    """Collects the text of every ``<p>`` and every ``<pre>`` of a page."""

    def __init__(self):
        super().__init__()
        self.paragraphs, self.pres = [], []
        self._p = self._pre = None
        self._skip = 0                  # inside <script>/<style>

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "pre":
            self._pre = []
        elif tag == "p" and self._pre is None:
            self._p = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "pre" and self._pre is not None:
            self.pres.append("".join(self._pre))
            self._pre = None
        elif tag == "p" and self._p is not None:
            self.paragraphs.append(" ".join("".join(self._p).split()))
            self._p = None

    def handle_data(self, data):
        if self._skip:
            return
        if self._pre is not None:
            self._pre.append(data)
        elif self._p is not None:
            self._p.append(data)


def check(site: Path, words: int = 150, columns: int = 90):
    """The offences of the site: ``(page, kind, size, excerpt)``."""
    out = []
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site)
        if rel.parts[0] in ("_modules", "_static") or rel.name in ("genindex.html",
                                                                    "search.html",
                                                                    "py-modindex.html"):
            continue
        blocks = _Blocks()
        blocks.feed(page.read_text(encoding="utf-8"))
        for p in blocks.paragraphs:
            n = len(p.split())
            if n > words:
                out.append((str(rel), "paragraph", n, p[:70]))
        for pre in blocks.pres:
            for line in pre.splitlines():
                if len(line) > columns:
                    out.append((str(rel), "columns", len(line), line[:70]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("site", type=Path, help="the built HTML directory")
    ap.add_argument("--words", type=int, default=150)
    ap.add_argument("--columns", type=int, default=90)
    args = ap.parse_args(argv)
    offences = check(args.site, args.words, args.columns)
    for page, kind, size, excerpt in offences:
        unit = "words" if kind == "paragraph" else "columns"
        print(f"{page}: {kind} of {size} {unit}: {excerpt}")
    print(f"{len(offences)} offence(s)")
    return 1 if offences else 0


if __name__ == "__main__":
    sys.exit(main())
