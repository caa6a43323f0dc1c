"""The first-user story: ca init, issue server and client, list, revoke (issue 2's "done when")."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult, run_trustwire


def test_new_user_tour(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    home = tmp_path / "home"
    h = ("--home", home)
    assert cli(*h, "ca", "init").code == 0
    issued = cli(*h, "cert", "issue", "server", "--server", "--dns", "localhost")
    assert issued.code == 0 and "DNS:localhost" in issued.out
    assert cli(*h, "cert", "issue", "alice", "--client").code == 0
    listing = cli(*h, "cert", "list")
    assert listing.code == 0 and "alice" in listing.out and "server" in listing.out
    revoked = cli(*h, "cert", "revoke", "alice")
    assert revoked.code == 0 and "Revoked alice" in revoked.out
    data = json.loads(cli(*h, "cert", "list", "--json").out)
    assert {r["name"]: r["status"] for r in data} == {"alice": "revoked", "server": "valid"}
    server = next(r for r in data if r["name"] == "server")
    assert server["sans"]["dns"] == ["localhost"] and server["kind"] == "server"
    assert stat.S_IMODE((home / "certs" / "alice.key").stat().st_mode) == 0o600
    shown = json.loads(cli(*h, "cert", "show", "alice", "--json").out)
    assert shown["status"] == "revoked" and shown["common_name"] == "alice"
    ca = json.loads(cli(*h, "ca", "show", "--json").out)
    assert ca["crl"]["revoked"] == 1 and ca["certificates"]["revoked"] == 1
    assert cli(*h, "ca", "crl", "--out", tmp_path / "copy.pem").code == 0
    assert (tmp_path / "copy.pem").read_bytes() == (home / "ca" / "crl.pem").read_bytes()


def test_home_from_environment(tmp_path: Path, cli: Callable[..., CliResult],
                               monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("TRUSTWIRE_HOME", str(tmp_path / "envhome"))
    assert cli("ca", "init", "--name", "Env CA").code == 0
    assert (tmp_path / "envhome" / "ca" / "ca.crt").exists()


def test_renew_and_short_lived(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    h = ("--home", tmp_path / "home")
    cli(*h, "ca", "init")
    short = cli(*h, "cert", "issue", "job", "--client", "--hours", "2", "--json")
    old_serial = json.loads(short.out)["serial"]
    renewed = cli(*h, "cert", "renew", "job", "--revoke-old")
    assert renewed.code == 0 and "revoked (superseded)" in renewed.out
    everything = json.loads(cli(*h, "cert", "list", "--all", "--json").out)
    states = {r["serial"]: (r["state"], r["status"]) for r in everything}
    assert states[old_serial] == ("revoked", "revoked")
    assert len(everything) == 2


def test_csr_flow_keeps_the_key_where_it_was_made(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    h = ("--home", tmp_path / "home")
    cli(*h, "ca", "init")
    device = tmp_path / "device"
    made = cli("cert", "request", "sensor-7", "--dns", "sensor-7.example", "--out", device)
    assert made.code == 0
    assert stat.S_IMODE((device / "sensor-7.key").stat().st_mode) == 0o600
    signed = cli(*h, "cert", "sign", device / "sensor-7.csr", "--server", "--out",
                 device / "sensor-7.crt")
    assert signed.code == 0, signed.err
    assert (device / "sensor-7.crt").exists()
    assert not (tmp_path / "home" / "certs" / "sensor-7.key").exists()
    lint = cli("cert", "lint", device / "sensor-7.crt", "--purpose", "server")
    assert lint.code == 0, lint.out


def test_intermediate_with_constraints_and_offline_root(tmp_path: Path,
                                                       cli: Callable[..., CliResult]) -> None:
    h = ("--home", tmp_path / "home")
    init = cli(*h, "ca", "init", "--intermediate", "--permit-dns", "example.internal",
               "--permit-ip", "10.0.0.0/8", "--permit-uri", "spiffe://example.internal")
    assert init.code == 0 and "permitted" in init.out
    ok = cli(*h, "cert", "issue", "api", "--server", "--dns", "api.example.internal",
             "--ip", "10.1.1.1")
    assert ok.code == 0, ok.err
    exported = cli(*h, "ca", "export-root", "--out", tmp_path / "vault")
    assert exported.code == 0
    assert (tmp_path / "vault" / "ca.key").exists()
    assert not (tmp_path / "home" / "ca" / "ca.key").exists()
    assert cli(*h, "cert", "issue", "w", "--client",
               "--uri", "spiffe://example.internal/w").code == 0
    shown = json.loads(cli(*h, "ca", "show", "--json").out)
    assert shown["root"]["key_in_home"] is False
    assert "DNS:example.internal" in shown["intermediate"]["permitted"]


def test_console_script_and_module_both_run(tmp_path: Path) -> None:
    exe = shutil.which("trustwire") or str(Path(os.sys.executable).parent / "trustwire")
    env = {**os.environ, "TRUSTWIRE_HOME": str(tmp_path / "h")}
    first = subprocess.run([exe, "ca", "init"], capture_output=True, text=True, env=env,
                           check=False, timeout=60)
    assert first.returncode == 0, first.stderr
    second = run_trustwire("cert", "issue", "alice", "--client", env={"TRUSTWIRE_HOME": str(tmp_path / "h")})
    assert second.returncode == 0, second.stderr
    again = run_trustwire("ca", "init", env={"TRUSTWIRE_HOME": str(tmp_path / "h")})
    assert again.returncode == 1
    assert again.stderr.startswith("error: a CA already exists") and "Traceback" not in again.stderr
    helped = run_trustwire("cert", "issue", "--help")
    assert helped.returncode == 0 and "--server" in helped.stdout


def test_every_command_has_help(cli: Callable[..., CliResult]) -> None:
    for command in (["ca", "init"], ["ca", "show"], ["ca", "crl"], ["ca", "export-root"],
                    ["cert", "issue"], ["cert", "request"], ["cert", "sign"], ["cert", "list"],
                    ["cert", "show"], ["cert", "lint"], ["cert", "revoke"], ["cert", "renew"],
                    ["demo"]):
        result = cli(*command, "--help")
        assert result.code == 0 and "Usage:" in result.out, command
