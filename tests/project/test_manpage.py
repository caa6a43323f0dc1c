"""trustwire(1): generated from the command tree, every command in it, and it renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click

from tests.conftest import require_tool
from trustwire.cli.main import cli

TOOL = Path(__file__).parents[2] / "docs" / "tools" / "manpage.py"


def _command_paths(group: click.Group, prefix: str = "trustwire") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        paths.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            paths += _command_paths(command, f"{prefix} {name}")
    return paths


def _render(page: Path) -> str:
    groff = require_tool("groff")
    result = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-P-cbou", str(page)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # -ww: no warning at all
    return result.stdout


def test_man_page_has_every_command_and_renders(tmp_path: Path) -> None:
    page = tmp_path / "man" / "trustwire.1"
    result = subprocess.run([sys.executable, str(TOOL), str(page)], capture_output=True, text=True,
                            timeout=60, check=False, env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"})
    assert result.returncode == 0, result.stderr
    roff = page.read_text()
    assert roff.startswith('.TH TRUSTWIRE 1 "2026-01-01" ')
    headings = re.findall(r"^\.SS (.+)$", roff, re.M)
    expected = _command_paths(cli)
    assert len(expected) >= 20  # ca x4, cert x8, serve, send, tunnel x2, probe, renew, demo
    assert sorted(h.replace("\\-", "-") for h in headings) == sorted(expected)

    text = _render(page)
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "GLOBAL OPTIONS", "ENVIRONMENT",
                    "FILES", "EXIT STATUS", "SEE ALSO"):
        assert re.search(rf"^{heading}$", text, re.M), heading
    for path in expected:
        assert re.search(rf"^ +{re.escape(path)}$", text, re.M), path
    # Options come from click, with their help text: one example per command group.
    assert "--allow-cn" in text and "--key-type [ecdsa-p256|" in text and "--proxy-protocol" in text
    assert "TRUSTWIRE_HOME" in text and "-h, --help" in text

    if shutil.which("man"):  # man-db, where installed: what a user runs
        shown = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, timeout=30,
                               check=False, env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "100"})
        assert shown.returncode == 0, shown.stderr
        assert "trustwire tunnel server" in shown.stdout
