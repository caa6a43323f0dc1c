"""Every bad input of issue 2: one clear sentence, exit 1 or 2, nothing changed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import CliResult, snapshot
from tests.scenarios.helpers import assert_clean_error

Cli = Callable[..., CliResult]


@pytest.fixture
def h(tmp_path: Path, cli: Cli) -> tuple[str, Path]:
    home = tmp_path / "home"
    assert cli("--home", home, "ca", "init").code == 0
    assert cli("--home", home, "cert", "issue", "alice", "--client").code == 0
    return ("--home", home)


def test_no_ca_yet(tmp_path: Path, cli: Cli) -> None:
    for args in (["cert", "issue", "a", "--client"], ["cert", "list"], ["ca", "show"],
                 ["cert", "revoke", "a"], ["ca", "crl"]):
        result = cli("--home", tmp_path / "nothing", *args)
        assert_clean_error(result, 1, "there is no CA")
        assert "trustwire ca init" in result.err


def test_ca_exists(h: tuple[str, Path], cli: Cli) -> None:
    before = snapshot(h[1])
    assert_clean_error(cli(*h, "ca", "init"), 1, "a CA already exists")
    assert snapshot(h[1]) == before


def test_duplicate_name(h: tuple[str, Path], cli: Cli) -> None:
    before = snapshot(h[1])
    result = cli(*h, "cert", "issue", "alice", "--client")
    assert_clean_error(result, 1, "named 'alice' already exists")
    assert "cert renew alice" in result.err
    assert snapshot(h[1]) == before


@pytest.mark.parametrize(("args", "fragment"), [
    (["--dns", "bad..name"], "invalid DNS name"),
    (["--dns", "10.0.0.1"], "is an IP address"),
    (["--ip", "999.1.1.1"], "invalid IP address"),
    (["--uri", "no-scheme"], "invalid URI"),
    (["--uri", "spiffe://UPPER/x"], "invalid SPIFFE ID"),
])
def test_invalid_names(h: tuple[str, Path], cli: Cli, args: list[str], fragment: str) -> None:
    before = snapshot(h[1])
    assert_clean_error(cli(*h, "cert", "issue", "svc", "--server", *args), 2, fragment)
    assert snapshot(h[1]) == before


@pytest.mark.parametrize(("args", "fragment"), [
    (["cert", "issue", "x", "--client", "--key-type", "dsa-1024"], "Invalid value for '--key-type'"),
    (["cert", "issue", "x"], "choose exactly one of --server, --client or --both"),
    (["cert", "issue", "x", "--client", "--server"], "choose exactly one"),
    (["cert", "issue", "x", "--client", "--days", "3", "--hours", "2"], "either --days or --hours"),
    (["cert", "issue", "x", "--client", "--days", "500"], "at most 397 days"),
    (["cert", "issue", "../x", "--client"], "invalid certificate name"),
    (["cert", "issue", "alice\n", "--client"], "invalid certificate name 'alice\\n'"),
    (["cert", "issue", "bob\r", "--client"], "invalid certificate name 'bob\\r'"),
    (["cert", "revoke", "alice", "--reason", "bored"], "unknown revocation reason"),
    (["ca", "init", "--permit-dns", "x.internal"], "add --intermediate"),
    (["cert", "frobnicate"], "No such command"),
])
def test_usage_errors_exit_2(h: tuple[str, Path], cli: Cli, args: list[str], fragment: str) -> None:
    before = snapshot(h[1])
    assert_clean_error(cli(*h, *args), 2, fragment)
    assert snapshot(h[1]) == before


def test_revoking_an_unknown_name(h: tuple[str, Path], cli: Cli) -> None:
    before = snapshot(h[1])
    result = cli(*h, "cert", "revoke", "nobody")
    assert_clean_error(result, 1, "no certificate named or numbered 'nobody'")
    assert snapshot(h[1]) == before


def test_revoke_dry_run_changes_nothing(h: tuple[str, Path], cli: Cli) -> None:
    before = snapshot(h[1])
    result = cli(*h, "cert", "revoke", "alice", "--dry-run")
    assert result.code == 0 and "Would revoke alice" in result.out
    assert snapshot(h[1]) == before


def _csr(tmp_path: Path, name: str, dns: list[str]) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    path = tmp_path / f"{name}.csr"
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


def test_csr_with_a_bad_signature(h: tuple[str, Path], cli: Cli, tmp_path: Path) -> None:
    path = _csr(tmp_path, "dev", ["dev.example"])
    der = bytearray(x509.load_pem_x509_csr(path.read_bytes()).public_bytes(serialization.Encoding.DER))
    der[-6] ^= 0x55
    path.write_bytes(bytes(der))
    before = snapshot(h[1])
    assert_clean_error(cli(*h, "cert", "sign", path, "--client"), 1, "signature does not verify")
    assert snapshot(h[1]) == before


def test_csr_that_is_not_a_csr(h: tuple[str, Path], cli: Cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.csr"
    junk.write_text("hello")
    assert_clean_error(cli(*h, "cert", "sign", junk, "--client"), 1,
                       "not a PEM or DER certificate signing request")
    assert_clean_error(cli(*h, "cert", "sign", tmp_path / "missing.csr", "--client"), 2,
                       "cannot read the CSR")


def test_csr_outside_the_name_constraints(tmp_path: Path, cli: Cli) -> None:
    h = ("--home", tmp_path / "ih")
    cli(*h, "ca", "init", "--intermediate", "--permit-dns", "example.internal")
    path = _csr(tmp_path, "x", ["api.evil.com"])
    before = snapshot(tmp_path / "ih")
    assert_clean_error(cli(*h, "cert", "sign", path, "--server"), 1,
                       "DNS:api.evil.com lies outside the CA's permitted names")
    assert_clean_error(cli(*h, "cert", "issue", "y", "--server", "--ip", "10.0.0.1"), 1,
                       "IP:10.0.0.1 lies outside")
    assert snapshot(tmp_path / "ih") == before


def test_corrupted_index(h: tuple[str, Path], cli: Cli) -> None:
    (h[1] / "index.db").write_bytes(b"\x00garbage" * 512)
    before = snapshot(h[1])
    result = cli(*h, "cert", "issue", "bob", "--client")
    assert_clean_error(result, 1, "is damaged")
    assert "backup" in result.err
    assert_clean_error(cli(*h, "cert", "list"), 1, "is damaged")
    assert snapshot(h[1]) == before


def test_corrupted_ca_cert(h: tuple[str, Path], cli: Cli) -> None:
    (h[1] / "ca" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    before = snapshot(h[1])
    assert_clean_error(cli(*h, "cert", "issue", "bob", "--client"), 1,
                       "ca.crt is not a valid PEM or DER certificate")
    assert snapshot(h[1]) == before


def test_corrupted_ca_key(h: tuple[str, Path], cli: Cli) -> None:
    (h[1] / "ca" / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    before = snapshot(h[1])
    result = cli(*h, "cert", "issue", "bob", "--client")
    assert_clean_error(result, 1, "ca.key is not a valid PEM private key")
    assert "AAAA" not in result.err
    assert snapshot(h[1]) == before


def test_wrong_and_missing_passphrase(tmp_path: Path, cli: Cli) -> None:
    good, bad = tmp_path / "good.pass", tmp_path / "bad.pass"
    good.write_text("correct horse battery\n")
    bad.write_text("wrong\n")
    good.chmod(0o600)
    bad.chmod(0o600)
    h = ("--home", tmp_path / "ph")
    assert cli(*h, "ca", "init", "--passphrase-file", good).code == 0
    before = snapshot(tmp_path / "ph")
    wrong = cli(*h, "cert", "issue", "a", "--client", "--passphrase-file", bad)
    assert_clean_error(wrong, 1, "wrong passphrase for")
    assert "correct horse" not in wrong.err and "wrong\n" not in wrong.err.split(":", 1)[1]
    missing = cli(*h, "cert", "issue", "a", "--client")
    assert_clean_error(missing, 1, "is encrypted and no passphrase was given")
    assert "--passphrase-file" in missing.err
    assert snapshot(tmp_path / "ph") == before
    assert cli(*h, "cert", "issue", "a", "--client", "--passphrase-file", good).code == 0


def test_empty_passphrase_file(tmp_path: Path, cli: Cli) -> None:
    empty = tmp_path / "empty.pass"
    empty.write_text("\n")
    assert_clean_error(cli("--home", tmp_path / "x", "ca", "init", "--passphrase-file", empty), 2,
                       "is empty")
    assert not (tmp_path / "x" / "ca").exists()


def test_request_refuses_to_overwrite_a_key(tmp_path: Path, cli: Cli) -> None:
    assert cli("cert", "request", "dev", "--out", tmp_path / "d").code == 0
    before = (tmp_path / "d" / "dev.key").read_bytes()
    assert_clean_error(cli("cert", "request", "dev", "--out", tmp_path / "d"), 1,
                       "refusing to overwrite a private key")
    assert (tmp_path / "d" / "dev.key").read_bytes() == before


# -- the disk itself refuses -----------------------------------------------------------------

def test_read_only_home(tmp_path: Path, cli: Cli, tmpfs: Callable[..., Path]) -> None:
    mount = tmpfs("ro")
    home = mount / "home"
    assert cli("--home", home, "ca", "init").code == 0
    assert cli("--home", home, "cert", "issue", "alice", "--client").code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    before = snapshot(home)
    for args in (["cert", "issue", "bob", "--client"], ["cert", "revoke", "alice"],
                 ["cert", "renew", "alice"], ["ca", "crl"]):
        result = cli("--home", home, *args)
        assert_clean_error(result, 1, "Read-only file system")
        assert "writable" in result.err
    assert snapshot(home) == before
    listing = cli("--home", home, "cert", "list", "--json")  # reading still works
    assert listing.code == 0 and "alice" in listing.out


def test_disk_full(tmp_path: Path, cli: Cli, tmpfs: Callable[..., Path]) -> None:
    mount = tmpfs("full", size="512k")
    home = mount / "home"
    assert cli("--home", home, "ca", "init").code == 0
    assert cli("--home", home, "cert", "issue", "alice", "--client").code == 0
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # the disk is now full
    finally:
        os.close(fd)
    before = snapshot(home)
    for args in (["cert", "issue", "bob", "--client"], ["cert", "revoke", "alice"]):
        result = cli("--home", home, *args)
        assert_clean_error(result, 1)
        assert "No space left on device" in result.err or "full" in result.err
        assert "disk space" in result.err
    assert snapshot(home) == before
    filler.unlink()
    assert cli("--home", home, "cert", "issue", "bob", "--client").code == 0  # recovers


def test_a_home_owned_by_another_user_is_refused(h: tuple[str, Path], cli: Cli) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the home away")
    home = h[1]
    os.chown(home / "ca", 65534, 65534)
    try:
        before = snapshot(home)
        for args in (["cert", "issue", "eve", "--client"], ["ca", "crl"], ["cert", "revoke", "alice"],
                     ["cert", "list"]):
            result = cli(*h, *args)
            assert_clean_error(result, 1, f"{home / 'ca'} belongs to", "uid 65534", "not to you")
            assert "hint: use a home you own" in result.err
        assert snapshot(home) == before
    finally:
        os.chown(home / "ca", 0, 0)
