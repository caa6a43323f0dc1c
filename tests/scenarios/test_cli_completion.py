"""Shell completion for bash, zsh and fish, as docs/completion.md tells users to set it up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The console script users have on PATH after `pip install` (or in .venv/bin).
TRUSTWIRE = Path(sys.executable).with_name("trustwire")


def _source(shell: str) -> str:
    assert TRUSTWIRE.exists(), f"{TRUSTWIRE}: the package is not installed with its console script"
    result = subprocess.run([str(TRUSTWIRE)], env={**os.environ, "_TRUSTWIRE_COMPLETE": f"{shell}_source"},
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _trustwire_completion trustwire"),
    ("zsh", "#compdef trustwire"),
    ("fish", "complete --no-files --command trustwire"),
])
def test_completion_script_names_the_command(shell: str, marker: str) -> None:
    script = _source(shell)
    assert marker in script
    assert "_TRUSTWIRE_COMPLETE" in script  # it asks trustwire itself, so it follows the version


def _bash_complete(script: str, words: str) -> list[str]:
    """What bash offers for ``words`` (the last one being completed), via the sourced script."""
    bash = shutil.which("bash")
    assert bash is not None
    program = (f'eval "$1"\ncomplete -p trustwire\nCOMP_WORDS=({words}); '
               'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n_trustwire_completion trustwire\n'
               'printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run([bash, "-c", program, "bash", script], capture_output=True, text=True,
                            timeout=30, check=False,
                            env={**os.environ, "PATH": f"{TRUSTWIRE.parent}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "complete -o nosort -F _trustwire_completion trustwire"
    return lines[1:]


def test_bash_completes_commands_and_choices() -> None:
    script = _source("bash")
    assert set(_bash_complete(script, "trustwire ''")) >= {"ca", "cert", "serve", "send", "tunnel",
                                                          "probe", "renew", "demo"}
    assert _bash_complete(script, "trustwire ce") == ["cert"]
    assert set(_bash_complete(script, "trustwire serve --framing ''")) == {"length", "line"}
