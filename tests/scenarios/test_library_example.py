"""The README's library example runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import Pki

EXAMPLE = Path(__file__).parents[2] / "examples" / "hello.py"


def test_hello_example(pki: Pki) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLE), str(pki.home.root)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Response from server: HELLO, SERVER!\n"


def test_public_api_is_importable() -> None:
    import trustwire as tw

    for name in tw.__all__:
        assert hasattr(tw, name), name
