"""Two (or more) `cert issue` processes at once: distinct names all succeed, one name wins once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_trustwire


def _spawn(home: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trustwire", "--home", str(home), "cert", "issue", name, "--client"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )


def test_concurrent_issue_is_safe(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_trustwire("--home", home, "ca", "init").returncode == 0
    procs = [_spawn(home, f"distinct{i}") for i in range(4)]
    procs += [_spawn(home, "same") for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for code, err in results[:4]:
        assert code == 0, err
    same = results[4:]
    assert sorted(code for code, _ in same) == [0, 1, 1, 1]
    for code, err in same:
        if code == 1:
            assert err.startswith("error: a certificate named 'same' already exists")
    records = json.loads(run_trustwire("--home", home, "cert", "list", "--all", "--json").stdout)
    names = [r["name"] for r in records]
    assert sorted(names) == sorted([f"distinct{i}" for i in range(4)] + ["same"])
    assert len({r["serial"] for r in records}) == len(records)
    assert not list(home.rglob("*.tmp"))
