"""`trustwire cert export NAME --p12 FILE`: PKCS#12 that OpenSSL, cryptography and curl accept."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.conftest import CliResult, require_tool
from tests.peers import openssl_www
from tests.scenarios.helpers import assert_clean_error
from trustwire.pki.ca import CertKind
from trustwire.pki.export import P12Encryption, export_pkcs12
from trustwire.pki.keys import public_keys_match
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home

Cli = Callable[..., CliResult]
PASS = "correct horse battery"


@pytest.fixture
def ihome(inter_home: Home) -> Home:
    inter_home.issue("alice", kind=CertKind.CLIENT)
    inter_home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    return inter_home


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "p12.pass"
    path.write_text(PASS + "\n")
    path.chmod(0o600)
    return path


def openssl_info(p12: Path, passfile: Path, *legacy: str) -> str:
    result = subprocess.run([require_tool("openssl"), "pkcs12", *legacy, "-info", "-nodes",
                             "-in", str(p12), "-passin", f"file:{passfile}"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_modern_export_holds_key_leaf_and_chain(ihome: Home, cli: Cli, tmp_path: Path,
                                                passfile: Path) -> None:
    out = tmp_path / "alice.p12"
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", out,
                 "--passphrase-file", passfile)
    assert result.code == 0, result.err
    assert "modern encryption" in result.out and "2 CA certificate(s)" in result.out
    assert out.stat().st_mode & 0o777 == 0o600
    info = openssl_info(out, passfile)
    assert "PBES2, PBKDF2, AES-256-CBC" in info and "hmacWithSHA256" in info
    assert "MAC: sha256" in info and "3DES" not in info and "TripleDES" not in info
    assert "friendlyName: alice" in info
    for subject in ("subject=CN = alice", "subject=CN = test CA intermediate", "subject=CN = test CA"):
        assert subject in info, info
    assert "BEGIN PRIVATE KEY" in info
    loaded = pkcs12.load_pkcs12(out.read_bytes(), PASS.encode())
    assert loaded.cert is not None and loaded.key is not None
    assert loaded.cert.friendly_name == b"alice"
    leaf = loaded.cert.certificate
    assert leaf.subject.rfc4514_string() == "CN=alice"
    assert public_keys_match(leaf.public_key(), loaded.key.public_key())  # type: ignore[arg-type]
    assert [c.certificate for c in loaded.additional_certs] == [ihome.intermediate_cert(),
                                                                ihome.root_cert()]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(out.read_bytes(), b"wrong passphrase")


def test_legacy_export_for_old_importers(ihome: Home, cli: Cli, tmp_path: Path,
                                         passfile: Path) -> None:
    out = tmp_path / "alice-legacy.p12"
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", out,
                 "--passphrase-file", passfile, "--legacy", "--json")
    assert result.code == 0, result.err
    assert '"encryption": "legacy"' in result.out
    info = openssl_info(out, passfile, "-legacy")
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info and "MAC: sha1" in info
    # Not "AES" alone: the certificates' base64 in the dump can hold those letters.
    assert "AES-256-CBC" not in info and "PBES2" not in info and "friendlyName: alice" in info
    loaded = pkcs12.load_pkcs12(out.read_bytes(), PASS.encode())
    assert loaded.key is not None and len(loaded.additional_certs) == 2


@pytest.mark.parametrize("encryption", list(P12Encryption))
def test_curl_presents_the_p12_to_an_mtls_server(ihome: Home, tmp_path: Path,
                                                 encryption: P12Encryption) -> None:
    out = tmp_path / "alice.p12"
    export_pkcs12(ihome, "alice", out, passphrase=PASS.encode(), encryption=encryption)
    curl = require_tool("curl")
    server = ihome.identity("server")
    with openssl_www(require_tool("openssl"), cert=server.cert, key=server.key,
                     ca=ihome.ca_cert_path) as port:
        url = f"https://localhost:{port}/"
        ok = subprocess.run([curl, "-sS", "--cacert", str(ihome.ca_cert_path), "--cert-type", "P12",
                             "--cert", f"{out}:{PASS}", url],
                            capture_output=True, text=True, timeout=30, check=False)
        assert ok.returncode == 0, ok.stderr
        assert "Client certificate" in ok.stdout and "Subject: CN=alice" in ok.stdout
        refused = subprocess.run([curl, "-sS", "--cacert", str(ihome.ca_cert_path), url],
                                 capture_output=True, text=True, timeout=30, check=False)
        assert refused.returncode != 0 and "certificate required" in refused.stderr


def test_without_a_terminal_or_file_export_refuses(ihome: Home, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "alice.p12"
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", out)
    assert_clean_error(result, 2, "needs a passphrase, and there is no terminal")
    assert "hint: give --passphrase-file" in result.err
    assert not out.exists()


def test_empty_passphrase_is_refused(ihome: Home, cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    out = tmp_path / "alice.p12"
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", out,
                 "--passphrase-file", empty)
    assert_clean_error(result, 2, "is empty")
    with pytest.raises(ValueError, match="non-empty passphrase"):
        export_pkcs12(ihome, "alice", out, passphrase=b"")
    assert not out.exists()


def test_unknown_name_and_key_less_identity(ihome: Home, cli: Cli, tmp_path: Path,
                                            passfile: Path) -> None:
    out = tmp_path / "x.p12"
    result = cli("--home", ihome.root, "cert", "export", "nobody", "--p12", out,
                 "--passphrase-file", passfile)
    assert_clean_error(result, 1, "there is no certificate named 'nobody'")
    request = cli("cert", "request", "device", "--out", tmp_path / "dev")
    assert request.code == 0, request.err
    signed = cli("--home", ihome.root, "cert", "sign", tmp_path / "dev" / "device.csr", "--client")
    assert signed.code == 0, signed.err
    result = cli("--home", ihome.root, "cert", "export", "device", "--p12", out,
                 "--passphrase-file", passfile)
    assert_clean_error(result, 1, "the key for 'device' is not in the home")
    assert not out.exists()


def test_passphrase_is_asked_twice_on_a_terminal(ihome: Home, tmp_path: Path) -> None:
    out = tmp_path / "alice.p12"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustwire", "--home", str(ihome.root), "cert", "export", "alice",
         "--p12", str(out)],
        stdin=slave, stdout=subprocess.PIPE, stderr=slave, start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        for _ in range(2):
            deadline = time.monotonic() + 20
            while seen.count(b"Passphrase") + seen.count(b"Repeat") < _ + 1:
                assert time.monotonic() < deadline, seen
                seen += os.read(master, 1024)
            os.write(master, PASS.encode() + b"\n")
        stdout, _err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
    assert proc.returncode == 0, seen
    assert PASS.encode() not in seen  # hidden input: nothing echoed
    assert b"Exported alice" in stdout
    assert pkcs12.load_pkcs12(out.read_bytes(), PASS.encode()).key is not None


def test_an_existing_file_is_kept_unless_force(ihome: Home, cli: Cli, tmp_path: Path,
                                               passfile: Path) -> None:
    out = tmp_path / "alice.p12"
    out.write_bytes(b"the user's own file")
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", out,
                 "--passphrase-file", passfile)
    assert_clean_error(result, 1, f"{out} already exists; refusing to overwrite it")
    assert "hint: give --force to replace it" in result.err
    assert out.read_bytes() == b"the user's own file"
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", out,
                 "--passphrase-file", passfile, "--force")
    assert result.code == 0, result.err
    assert pkcs12.load_pkcs12(out.read_bytes(), PASS.encode()).cert is not None


@pytest.mark.parametrize("inside", ["ca/ca.crt", "certs/alice.key", "index.db", "alice.p12"])
def test_never_writes_inside_the_home(ihome: Home, cli: Cli, passfile: Path, inside: str) -> None:
    target = ihome.root / inside
    before = target.read_bytes() if target.exists() else None
    result = cli("--home", ihome.root, "cert", "export", "alice", "--p12", target,
                 "--passphrase-file", passfile, "--force")
    assert_clean_error(result, 1, "is inside the trustwire home", "refusing to write an export there")
    assert "hint: write the PKCS#12 file outside the home" in result.err
    assert (target.read_bytes() if target.exists() else None) == before


def test_the_documented_mac_iterations_are_the_files(ihome: Home, cli: Cli, tmp_path: Path,
                                                     passfile: Path) -> None:
    """The MAC, not the key's PBKDF2, is what a guess costs: its count is the one said."""
    from trustwire.pki.export import MAC_ITERATIONS, MODERN_KDF_ROUNDS

    out = tmp_path / "alice.p12"
    assert cli("--home", ihome.root, "cert", "export", "alice", "--p12", out,
               "--passphrase-file", passfile).code == 0
    info = openssl_info(out, passfile)
    assert f"MAC: sha256, Iteration {MAC_ITERATIONS}\n" in info, info
    assert f"Iteration {MODERN_KDF_ROUNDS}, PRF hmacWithSHA256" in info
    docs = (Path(__file__).parents[2] / "docs" / "ca.md").read_text()
    assert f"MAC: sha256, Iteration {MAC_ITERATIONS}" in docs
    assert f"{MAC_ITERATIONS} iterations" in " ".join(cli("cert", "export", "--help").out.split())
