"""The documentation site's promises: a page per diagnosis reason, and a link checker that
catches what it should. (``make docs`` builds the site with warnings as errors and runs
the checker over it; these tests keep both honest without building it again.)"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from trustwire.errors import DOCS_URL, REASONS, Diagnosis, HandshakeError

DOCS = Path(__file__).parents[2] / "docs"


def _checklinks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("checklinks", DOCS / "tools" / "checklinks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["checklinks"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_reason_has_a_page_and_every_page_a_reason() -> None:
    pages = {p.stem for p in (DOCS / "reasons").glob("*.md")} - {"index"}
    assert pages == set(REASONS)
    assert len(REASONS) == len(set(REASONS))


@pytest.mark.parametrize("reason", REASONS)
def test_reason_page_says_what_it_means_and_what_fixes_it(reason: str) -> None:
    text = (DOCS / "reasons" / f"{reason}.md").read_text()
    assert text.startswith(f"# `{reason}`: ")
    assert "## What it means" in text and "## What fixes it" in text
    assert re.search(r"```sh\n(.*\n)*?(trustwire|timedatectl|openssl) ", text), "no command to run"
    index = (DOCS / "reasons" / "index.md").read_text()
    assert f"[`{reason}`]({reason}.md)" in index


def test_handshake_errors_point_at_their_reason_page() -> None:
    diagnosis = Diagnosis(reason="unknown-ca", side="server", what="this client's certificate",
                          why="the server does not trust the CA that issued it")
    assert diagnosis.docs_url == f"{DOCS_URL}/reasons/unknown-ca.html"
    assert HandshakeError(diagnosis).docs_url == diagnosis.docs_url


def test_docs_url_is_the_published_documentation_url() -> None:
    with (DOCS.parent / "pyproject.toml").open("rb") as f:
        urls = tomllib.load(f)["project"]["urls"]
    assert urls["Documentation"].rstrip("/") == DOCS_URL


def _site(root: Path, pages: dict[str, str]) -> Path:
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")
    return root


def test_checklinks_passes_sound_links_and_catches_broken_ones(tmp_path: Path) -> None:
    checklinks = _checklinks()
    site = _site(tmp_path, {
        "index.html": '<a href="a.html#part">a</a> <a href="sub/">sub</a> <a href="#top">top</a>'
                      '<h1 id="top">x</h1> <a href="https://example.invalid/">out</a>'
                      '<img src="img/p.png"> <a href="https://docs.test/sub/b.html#b">abs</a>',
        "a.html": '<section id="part"></section><a href="sub/b.html">b</a>',
        "sub/index.html": '<a href="../a.html">up</a>',
        "sub/b.html": '<span id="b"></span><a name="old"></a><a href="../index.html#top">t</a>',
    })
    (site / "img").mkdir()
    (site / "img" / "p.png").write_bytes(b"\x89PNG")
    assert checklinks.check_site(site, base="https://docs.test") == []
    assert checklinks.main([str(site)]) == 0

    _site(site, {"broken.html": '<a href="gone.html">1</a> <a href="a.html#nowhere">2</a>'
                                '<a href="#missing">3</a> <img src="nope.png"> <a href="../../x">4</a>'
                                '<a href="https://docs.test/reasons/none.html">5</a>'})
    broken = {(b.page, b.url, b.why) for b in checklinks.check_site(site, base="https://docs.test")}
    assert broken == {
        ("broken.html", "gone.html", "no such file"), ("broken.html", "a.html#nowhere", "no such anchor"),
        ("broken.html", "#missing", "no such anchor"), ("broken.html", "nope.png", "no such file"),
        ("broken.html", "../../x", "points outside the site"),
        ("broken.html", "https://docs.test/reasons/none.html", "no such file"),
    }
    assert checklinks.main([str(site)]) == 1
