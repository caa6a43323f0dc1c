"""Assertions shared by the CLI scenarios."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import CliResult, require_tool


def assert_clean_error(result: CliResult, code: int, *fragments: str) -> None:
    """A refused command: the right exit code, ``error: <one sentence>`` (+ hint), no traceback."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert lines, "no error message on stderr"
    assert lines[0].startswith("error: "), result.err
    assert all(line.startswith(("error: ", "hint: ", "see: ", "warning: ")) for line in lines), result.err
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, result.err)


NOBODY = 65534


@contextlib.contextmanager
def shared_home(home: Path, *, owner: int = 0) -> Iterator[Path]:
    """A copy of ``home`` that another user can read: directories 0755, certificates and the
    inventory 0644, keys 0600, everything owned by ``owner`` (root: readable by others but
    writable by root alone). Lives under a fresh 0755 directory in /tmp (pytest's tmp_path
    is 0700 for root)."""
    parent = Path(tempfile.mkdtemp(prefix="tw-shared-", dir="/tmp"))
    try:
        parent.chmod(0o755)
        copy = parent / "home"
        shutil.copytree(home, copy)
        for path in [copy, *copy.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
            else:
                path.chmod(0o600 if path.suffix == ".key" else 0o644)
            os.chown(path, owner, owner)
        yield copy
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def as_user(uid: int, *args: str | Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> CliResult:
    """``python -m trustwire ARGS`` as ``uid`` (setpriv, from util-linux), cwd /."""
    result = subprocess.run(
        [require_tool("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         sys.executable, "-m", "trustwire", *[str(a) for a in args]],
        capture_output=True, text=True, timeout=timeout, check=False, cwd="/",
        env={**os.environ, "HOME": "/nonexistent", **(env or {})},
    )
    return CliResult(result.returncode, result.stdout, result.stderr)
