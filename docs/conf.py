"""Sphinx configuration: ``make docs`` builds docs/_build/html (and the man page).

Offline by design: no intersphinx inventories and no external link checks. Warnings
are errors (``-W --keep-going -n``); references to names outside trustwire's public
API (the stdlib, cryptography) cannot resolve without intersphinx, so they are listed in
``nitpick_ignore_regex`` below, and references to a private module path of a name the
package re-exports (``trustwire.pki.store.Home``) resolve to the public one
(``trustwire.Home``).
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.autodoc import Options
from sphinx.ext.napoleon import Config, GoogleDocstring
from sphinx.util import logging

import trustwire

logger = logging.getLogger(__name__)

project = "trustwire"
author = "the trustwire authors"
copyright = "2026, the trustwire authors"
release = trustwire.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]  # + napoleon's Google parser, in setup()
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "tools", "README.md"]
myst_heading_anchors = 3         # [text](page.md#a-heading) links are checked, too
myst_enable_extensions = ["deflist"]

html_theme = "alabaster"          # ships with Sphinx: no theme dependency
html_title = f"trustwire {release}"
html_theme_options = {"description": "Mutually-authenticated TLS in Python", "fixed_sidebar": True}
html_show_sourcelink = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
NAPOLEON = Config(napoleon_use_rtype=False, napoleon_attr_annotations=False)

nitpicky = True
nitpick_ignore_regex = [
    # No intersphinx (offline): names from the stdlib and third-party packages.
    (r"py:.*", r"(ssl|asyncio|collections|pathlib|typing|datetime|dt|ipaddress|socket|enum|os|"
               r"types|concurrent|contextlib|email|cryptography|x509|click|sqlite3|io)\..*"),
    (r"py:.*", r"(Path|SSLContext|SSLSocket|Certificate|Awaitable|Callable|Coroutine|Iterator|"
               r"AsyncIterator|Iterable|Mapping|Sequence|Generator|AbstractEventLoop|Enum|TracebackType|"
               r"Literal|IPv4Address|IPv6Address|IPv4Network|IPv6Network|socket|datetime|timedelta|"
               r"BaseException|Exception|TimeoutError|ValueError|PrivateKeyTypes|CertificateRevocationList)"),
    (r"py:class", r"trustwire\.[\w.]+\.([A-Z]|_\w+)"),  # type variables, private base classes
]



def _google(app: Sphinx, what: str, name: str, obj: object, options: Options,
            lines: list[str]) -> None:
    """Google-style ``Args:/Returns:/Raises:`` (STYLE.md) through napoleon's parser, for
    functions and classes only: an attribute's docstring is prose whose first line may hold
    a colon, which napoleon's extension would read as ``type: description``."""
    if what in ("attribute", "data", "property"):
        return
    lines[:] = GoogleDocstring(lines, NAPOLEON, app, what, name, obj, options).lines()


def _public_alias(app: Sphinx, env: BuildEnvironment, node: pending_xref,
                  contnode: nodes.TextElement) -> nodes.reference | None:
    """Resolve a name by where the API reference documents it: ``trustwire.sub.mod.Name``
    and a bare ``Name`` -> ``trustwire.Name`` (re-exported) or ``trustwire.errors.Name``."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not re.fullmatch(r"(trustwire\.[\w.]+\.)?\w+", target):
        return None
    name = target.rsplit(".", 1)[-1]
    domain = env.get_domain("py")
    for candidate in (f"trustwire.{name}", f"trustwire.errors.{name}"):
        found = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                    candidate, node, contnode)
        if found is not None:
            return found
    return None


def _all_documented(app: Sphinx, env: BuildEnvironment) -> None:
    """Every name in ``trustwire.__all__`` has an entry in the API reference."""
    domain = env.get_domain("py")
    known = {name for name, *_ in domain.get_objects()}
    for name in trustwire.__all__:
        if f"trustwire.{name}" not in known:
            logger.warning("trustwire.%s is public (trustwire.__all__) but not in api.rst", name)


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-docstring", _google)
    app.connect("env-check-consistency", _all_documented)
    app.connect("missing-reference", _public_alias)
