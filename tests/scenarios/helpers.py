"""Assertions shared by the CLI scenarios."""

from __future__ import annotations

from tests.conftest import CliResult


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
