"""Check every internal link and anchor of a built HTML site, offline.

Usage: python docs/tools/checklinks.py SITE_DIR [--base URL]

Reads every ``*.html`` under SITE_DIR, collects the ``id``/``name`` anchors each
defines, and checks each ``href`` and ``src`` that stays on the site: a relative URL,
or an absolute one under ``--base`` (the published address, so links the code prints
are checked against the pages that exist). The target file must exist and, when the
URL has a fragment, the target page must define that anchor. External links are not
fetched (no network). Prints one line per broken link and exits 1 if there is any.

Sphinx with myst checks links between Markdown pages itself; this also covers what it
does not see: links inside docstrings, raw HTML, the theme's templates and images.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["BrokenLink", "check_site", "main"]

EXTERNAL_SCHEMES = ("http", "https", "mailto", "data", "javascript", "ftp", "tel")


@dataclass(frozen=True, kw_only=True)
class BrokenLink:
    page: str
    """The page holding the link, relative to the site."""
    url: str
    """The link as written."""
    why: str

    def __str__(self) -> str:
        return f"{self.page}: {self.url}: {self.why}"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.anchors.add(value)
            elif (name == "href" and tag in ("a", "link", "area")) or (
                    name == "src" and tag in ("img", "script", "iframe", "source")):
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check_site(site: Path, *, base: str | None = None) -> list[BrokenLink]:
    """Every broken internal link of the HTML files under ``site``.

    Args:
        site: the built site's root directory.
        base: the published URL of ``site``; absolute links under it count as internal.
    """
    site = site.resolve()
    pages = {path: _parse(path) for path in sorted(site.rglob("*.html"))}
    prefix = base.rstrip("/") + "/" if base else None
    broken: list[BrokenLink] = []
    for path, page in pages.items():
        where = path.relative_to(site).as_posix()
        for url in page.links:
            target = url
            if prefix and url.startswith(prefix):
                target = "/" + url[len(prefix):]
            parts = urlsplit(target)
            if parts.scheme in EXTERNAL_SCHEMES or parts.netloc:
                continue
            if parts.path.startswith("/"):
                file = site / unquote(parts.path.lstrip("/"))
            elif parts.path:
                file = path.parent / unquote(parts.path)
            else:
                file = path
            file = file.resolve()
            if file.is_dir():
                file = file / "index.html"
            if not file.is_relative_to(site):
                broken.append(BrokenLink(page=where, url=url, why="points outside the site"))
            elif not file.is_file():
                broken.append(BrokenLink(page=where, url=url, why="no such file"))
            elif parts.fragment:
                anchors = pages[file].anchors if file in pages else set()
                if unquote(parts.fragment) not in anchors:
                    broken.append(BrokenLink(page=where, url=url, why="no such anchor"))
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--base", default=None, help="the published URL of SITE")
    args = parser.parse_args(argv)
    if not any(args.site.glob("*.html")):
        print(f"checklinks: no HTML pages in {args.site}", file=sys.stderr)
        return 2
    broken = check_site(args.site, base=args.base)
    for link in broken:
        print(link, file=sys.stderr)
    pages = sum(1 for _ in args.site.rglob("*.html"))
    print(f"checklinks: {pages} pages, {len(broken)} broken links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
