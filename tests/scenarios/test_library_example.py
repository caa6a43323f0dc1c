"""The README's and the docs' Python examples run as written.

A block marked ``<!-- test: run -->`` is a script: it runs in a fresh interpreter whose
``~`` holds the home the README's quick start makes (its ``trustwire ca`` and
``trustwire cert`` commands, run here as written), and a ``print(...)  # text`` in it
must print that text. ``<!-- test: conftest -->`` and ``<!-- test: pytest -->`` blocks
(docs/testing.md) are a conftest.py and a test module that pytest runs together.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, Pki

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "hello.py"
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^<!-- test: (run|conftest|pytest) -->\n```python\n(.*?)^```\n", re.M | re.S)


def blocks(kind: str) -> list[tuple[str, str]]:
    """(where, code) of every ``kind`` block in the README and the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            if match[1] == kind:
                line = text.count("\n", 0, match.start()) + 2
                found.append((f"{page.relative_to(ROOT)}:{line}", match[2]))
    return found


def quick_start_commands() -> list[list[str]]:
    """The README quick start's ``trustwire ca`` / ``trustwire cert`` commands, as argv lists."""
    section = README.read_text().split("## Quick start", 1)[1]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in script.splitlines():
        for command in line.split("&&"):
            argv = shlex.split(command, comments=True)
            if argv[:2] in (["trustwire", "ca"], ["trustwire", "cert"]):
                commands.append(argv[1:])
    return commands


@pytest.fixture
def demo_user(tmp_path: Path, cli: Callable[..., CliResult]) -> Path:
    """A HOME directory in which the quick start's commands made ~/.trustwire-demo."""
    user = tmp_path / "user"
    commands = quick_start_commands()
    assert [c[:2] for c in commands[:3]] == [["ca", "init"], ["cert", "issue"], ["cert", "issue"]]
    for argv in commands:
        result = cli("--home", user / ".trustwire-demo", *argv)
        assert result.code == 0, (argv, result.err)
    return user


def _python(code: str, user: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=False, cwd=user, env={**os.environ, "HOME": str(user)})


def test_readme_and_docs_have_runnable_examples() -> None:
    where = [w.split(":")[0] for w, _ in blocks("run")]
    assert "README.md" in where and "docs/library.md" in where
    assert len(blocks("conftest")) == 1 and len(blocks("pytest")) == 1


@pytest.mark.parametrize(("where", "code"), blocks("run"), ids=[w for w, _ in blocks("run")])
def test_runnable_block(where: str, code: str, demo_user: Path) -> None:
    result = _python(code, demo_user)
    assert result.returncode == 0, f"{where}: {result.stderr}"
    expected = re.findall(r"^print\(.*\)\s+# (.*)$", code, re.M)
    if "Hello, server!" in code:
        expected = ["Response from server: HELLO, SERVER!"]
    assert expected, f"{where}: say what it prints"
    assert result.stdout.splitlines() == expected, where


def test_testing_page_fixtures_run_under_pytest(tmp_path: Path) -> None:
    ((_, conftest),), ((_, tests),) = blocks("conftest"), blocks("pytest")
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_with_trustwire.py").write_text(tests)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "no:xdist", str(tmp_path)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_readme_links_resolve() -> None:
    text = README.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert len(local) >= 10
    for link in local:
        assert (ROOT / link).exists(), link


def test_hello_example(pki: Pki) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE), str(pki.home.root)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Response from server: HELLO, SERVER!\n"


def test_public_api_is_importable() -> None:
    import trustwire as tw

    for name in tw.__all__:
        assert hasattr(tw, name), name
