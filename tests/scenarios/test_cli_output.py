"""Output people read and pipe: no split fingerprints, dates or SAN lists at 80 columns;
--json for send; -v and -q."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult, Pki, require_tool, run_trustwire
from tests.scenarios.helpers import assert_clean_error
from tests.servers import serve_process
from trustwire.pki.ca import CertKind, fingerprint
from trustwire.pki.info import pin_form
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home

Cli = Callable[..., CliResult]
SANS = ["DNS:a-rather-long-service-name.example.internal", "DNS:second-name.example.internal",
        "IP:10.20.30.40", "URI:spiffe://example.internal/ns/prod/sa/payments"]


def wide_home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    home.init_ca(name="a CA with a fairly long name for the table")
    home.issue("payments-api-with-a-long-name", kind=CertKind.SERVER, sans=SubjectAltNames.parse(
        dns=["a-rather-long-service-name.example.internal", "second-name.example.internal"],
        ips=["10.20.30.40"], uris=["spiffe://example.internal/ns/prod/sa/payments"]))
    return home


def piped(home: Home, *args: str) -> str:
    result = run_trustwire("--home", home.root, *args, env={"COLUMNS": "80", "TERM": "xterm"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def whole_on_one_line(out: str, *values: str) -> None:
    for value in values:
        assert any(value in line for line in out.splitlines()), (value, out)


def test_cert_list_show_and_ca_show_keep_values_whole_at_80_columns(tmp_path: Path) -> None:
    home = wide_home(tmp_path)
    with home.inventory() as inventory:
        record = inventory.current("payments-api-with-a-long-name")
    assert record is not None
    listed = piped(home, "cert", "list")
    whole_on_one_line(listed, ", ".join(SANS), f"{record.not_after:%Y-%m-%d %H:%M}",
                      "payments-api-with-a-long-name")
    shown = piped(home, "cert", "show", "payments-api-with-a-long-name")
    whole_on_one_line(shown, pin_form(record.fingerprint), ", ".join(SANS),
                      record.not_after.isoformat(), record.not_before.isoformat())
    ca = piped(home, "ca", "show")
    root = home.root_cert()
    whole_on_one_line(ca, pin_form(fingerprint(root)), root.not_valid_after_utc.isoformat(),
                      "a CA with a fairly long name for the table")
    assert "\x1b[" not in listed + shown + ca  # no colour codes into a pipe


def test_send_json(pki: Pki) -> None:
    with serve_process(pki.home.root, "--identity", "server") as (_, port):
        result = run_trustwire("--home", pki.home.root, "send", f"localhost:{port}", "one", "two",
                               "--identity", "alice", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["ONE", "TWO"]


def test_quiet_prints_only_errors_and_data(tmp_path: Path, cli: Cli, home: Home) -> None:
    loose = tmp_path / "loose.pass"
    loose.write_text("a passphrase\n")
    loose.chmod(0o644)  # readable by others: a warning normally
    home.issue("alice", kind=CertKind.CLIENT)
    out = tmp_path / "alice.p12"
    normal = cli("--home", home.root, "cert", "export", "alice", "--p12", out, "--passphrase-file", loose)
    assert normal.code == 0 and "warning: " in normal.err and "Exported alice" in normal.out
    quiet = cli("-q", "--home", home.root, "cert", "export", "alice", "--p12", out,
                "--passphrase-file", loose, "--force")
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    data = cli("--quiet", "--home", home.root, "cert", "list", "--json")
    assert data.code == 0 and json.loads(data.out)[0]["name"] == "alice" and data.err == ""
    failed = cli("-q", "--home", home.root, "cert", "show", "nobody")
    assert_clean_error(failed, 1, "no certificate named or numbered 'nobody'")


def test_quiet_serve_does_not_announce(pki: Pki) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "trustwire", "-q", "--home", str(pki.home.root),
                             "serve", "--listen", "127.0.0.1:0", "--identity", "server"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(3)
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=15)
    assert "serving" not in err and "trustwire:" not in err, err


def test_verbose_logs_debug_detail(cli: Cli, home: Home, tmp_path: Path) -> None:
    result = cli("-v", "--home", home.root, "ca", "install", "--store", "nss", "--nss-db",
                 tmp_path / "missing")
    assert f"trustwire: debug: home: {home.root}" in result.err
    plain = cli("--home", home.root, "cert", "list")
    assert "debug" not in plain.err
    both = cli("-v", "-q", "cert", "list")
    assert_clean_error(both, 2, "give either --verbose or --quiet")


def test_verbose_shows_the_store_tools_it_runs(cli: Cli, home: Home, tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    subprocess.run([require_tool("certutil"), "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    result = cli("-v", "--home", home.root, "ca", "install", "--store", "nss", "--nss-db", db)
    assert result.code == 0, result.err
    assert re.search(r"trustwire: debug: running \S*certutil -d sql:\S+ -A ", result.err), result.err


def test_certificate_data_prints_verbatim_never_as_markup(cli: Cli, home: Home, tmp_path: Path) -> None:
    """Subjects and SANs are data, not rich markup: an OU of ``[/x]`` prints (it used to end
    in a MarkupError, an internal error), ``[red]`` stays visible, and IPv6 ``:1234:`` or
    ``:ab:`` stays an address instead of turning into emoji."""
    issued = cli("--home", home.root, "cert", "issue", "odd", "--server", "--dns", "odd.example",
                 "--ip", "fd00::1234:5678", "--ip", "2001:db8:ab:cd::1", "--ou", "[/x]",
                 "--org", "[red]Acme")
    assert issued.code == 0, issued.err
    addresses = "IP:fd00::1234:5678, IP:2001:db8:ab:cd::1"
    assert addresses in issued.out, issued.out
    listed = cli("--home", home.root, "cert", "list")
    assert listed.code == 0 and addresses in listed.out, listed.out + listed.err
    shown = cli("--home", home.root, "cert", "show", "odd")
    assert shown.code == 0, shown.err
    assert "OU=[/x],O=[red]Acme,CN=odd" in shown.out and addresses in shown.out, shown.out
    # A certificate file from anywhere: its subject is whatever its maker wrote.
    foreign = tmp_path / "foreign.crt"
    foreign.write_bytes(home.identity("odd").cert.read_bytes())
    from_file = cli("--home", home.root, "cert", "show", foreign)
    assert from_file.code == 0 and "OU=[/x]" in from_file.out, from_file.out + from_file.err
    linted = cli("--home", home.root, "cert", "lint", foreign)
    assert "Traceback" not in linted.err and "OU=[/x],O=[red]Acme,CN=odd" in linted.out, linted.out


def test_verbose_and_quiet_work_after_the_subcommand_too(cli: Cli, home: Home, tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    subprocess.run([require_tool("certutil"), "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    loud = cli("--home", home.root, "ca", "install", "--store", "nss", "--nss-db", db, "-v")
    assert loud.code == 0, loud.err
    assert re.search(r"trustwire: debug: running \S*certutil ", loud.err), loud.err
    issued = cli("--home", home.root, "cert", "issue", "alice", "--client", "-q", "--json")
    assert issued.code == 0 and json.loads(issued.out)["name"] == "alice" and issued.err == ""
    loose = tmp_path / "loose.pass"
    loose.write_text("a passphrase\n")
    loose.chmod(0o644)  # readable by others: a warning, unless quiet
    quiet = cli("--home", home.root, "cert", "export", "alice", "--p12", tmp_path / "a.p12",
                "--passphrase-file", loose, "--quiet")
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
    listed = cli("--home", home.root, "cert", "-v", "list")  # on a group, too
    assert listed.code == 0 and "alice" in listed.out
    after = cli("--home", home.root, "cert", "list")  # the next invocation starts normal again
    assert "debug" not in after.err
    for args in (("cert", "list", "-v", "-q"), ("-q", "cert", "list", "-v"), ("ca", "-q", "show", "-v")):
        assert_clean_error(cli("--home", home.root, *args), 2, "give either --verbose or --quiet")
