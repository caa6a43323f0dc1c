"""`--json` on every command that prints data: the shapes of `cert issue` / `ca show`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def data(result: CliResult) -> dict[str, object]:
    assert result.code == 0, result.err
    parsed = json.loads(result.out)
    assert isinstance(parsed, dict)
    return parsed


def test_every_data_command_prints_json(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    init = data(cli("--home", home, "ca", "init", "--json"))
    assert init == data(cli("--home", home, "ca", "show", "--json"))
    issued = data(cli("--home", home, "cert", "issue", "alice", "--client", "--json"))
    shape = set(issued)

    renewed = data(cli("--home", home, "cert", "renew", "alice", "--hours", "1", "--json"))
    assert set(renewed) == shape and renewed["name"] == "alice"
    assert renewed["serial"] != issued["serial"]

    assert cli("cert", "request", "dev", "--dns", "dev.example", "--out", tmp_path / "dev").code == 0
    signed = data(cli("--home", home, "cert", "sign", tmp_path / "dev" / "dev.csr", "--server",
                      "--json"))
    assert set(signed) == shape and signed["name"] == "dev" and signed["key_in_home"] is False

    dry = data(cli("--home", home, "cert", "revoke", "dev", "--dry-run", "--json"))
    assert dry["dry_run"] is True and dry["record"]["state"] == "current"  # type: ignore[index]
    revoked = data(cli("--home", home, "cert", "revoke", "dev", "--json"))
    record = revoked["record"]
    assert isinstance(record, dict) and set(record) == shape
    assert revoked["dry_run"] is False and record["state"] == "revoked"

    crl = data(cli("--home", home, "ca", "crl", "--json", "--out", tmp_path / "crl.pem"))
    shown = data(cli("--home", home, "ca", "show", "--json"))["crl"]
    assert isinstance(shown, dict)
    assert {k: v for k, v in crl.items() if k != "out"} == shown
    assert crl["revoked"] == 1 and crl["out"] == str(tmp_path / "crl.pem")

    check = data(cli("--home", home, "renew", "--identity", "alice", "--once", "--json"))
    assert check["renewed"] is False and check["name"] == "alice"
    assert set(check["record"]) == shape  # type: ignore[arg-type]
    due = data(cli("--home", home, "renew", "--identity", "alice", "--once", "--before", "0.99",
                   "--json"))
    assert due["renewed"] is True and due["record"]["serial"] != renewed["serial"]  # type: ignore[index]
