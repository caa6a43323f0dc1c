"""OpenSSL, the reference verifier, agrees with trustwire's CA."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import CliResult, require_tool
from tests.peers import free_port, openssl_s_server, s_client
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def openssl() -> str:
    return require_tool("openssl")


def verify(openssl: str, ca: Path, leaf: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify -x509_strict``; intermediates come from the leaf file itself."""
    return subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", str(ca), "-untrusted", str(leaf), *extra,
         str(leaf)], capture_output=True, text=True, check=False,
    )


@pytest.mark.parametrize("kind", list(CertKind))
def test_strict_verify_accepts_root_issued_certs(openssl: str, home: Home, kind: CertKind) -> None:
    home.issue("svc", kind=kind, sans=SubjectAltNames.parse(dns=["svc.example"]))
    result = verify(openssl, home.ca_cert_path, home.cert_path("svc"))
    assert result.returncode == 0, result.stdout + result.stderr
    purpose = "sslclient" if kind is CertKind.CLIENT else "sslserver"
    assert verify(openssl, home.ca_cert_path, home.cert_path("svc"), "-purpose", purpose).returncode == 0


def test_strict_verify_accepts_intermediate_chain_against_root_alone(
    openssl: str, inter_home: Home,
) -> None:
    inter_home.issue("web.example.internal", kind=CertKind.SERVER)
    inter_home.issue("alice", kind=CertKind.CLIENT,
                     sans=SubjectAltNames.parse(uris=["spiffe://example.internal/alice"]))
    for name in ("web.example.internal", "alice"):
        leaf = inter_home.cert_path(name)
        assert leaf.read_bytes().count(b"BEGIN CERTIFICATE") == 2  # leaf + intermediate
        result = verify(openssl, inter_home.ca_cert_path, leaf)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("fixture", ["home", "inter_home"])
def test_crl_check_rejects_revoked_and_accepts_others(
    openssl: str, fixture: str, request: pytest.FixtureRequest,
) -> None:
    h: Home = request.getfixturevalue(fixture)
    h.issue("keep", kind=CertKind.CLIENT)
    h.issue("gone", kind=CertKind.CLIENT)
    h.revoke("gone")
    crl = ["-crl_check", "-CRLfile", str(h.crl_path)]
    assert verify(openssl, h.ca_cert_path, h.cert_path("keep"), *crl).returncode == 0
    revoked = verify(openssl, h.ca_cert_path, h.cert_path("gone"), *crl)
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr


def test_mutual_tls_between_openssl_server_and_client(openssl: str, home: Home) -> None:
    home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"],
                                                                           ips=["127.0.0.1"]))
    home.issue("alice", kind=CertKind.CLIENT)
    port = free_port()
    srv, cli_id = home.identity("server"), home.identity("alice")
    with openssl_s_server(openssl, cert=srv.cert, key=srv.key, ca=srv.ca, port=port) as server:
        result = s_client(openssl, port=port, ca=cli_id.ca, cert=cli_id.cert, key=cli_id.key,
                          extra=["-verify_hostname", "localhost"])
        out, _ = server.communicate(timeout=10)
    assert "Verify return code: 0 (ok)" in result.stdout, result.stdout + result.stderr
    assert "olleh" in result.stdout  # s_server -rev reversed our line: data really flowed
    assert "depth=0 CN = alice" in out and "verify return:1" in out  # server verified alice


def test_client_without_certificate_is_refused_by_openssl_server(openssl: str, home: Home) -> None:
    home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(ips=["127.0.0.1"]))
    port = free_port()
    srv = home.identity("server")
    with openssl_s_server(openssl, cert=srv.cert, key=srv.key, ca=srv.ca, port=port) as server:
        result = s_client(openssl, port=port, ca=srv.ca)
        out, _ = server.communicate(timeout=10)
    assert "olleh" not in result.stdout
    assert "peer did not return a certificate" in out or "no certificate" in out.lower()


def test_client_only_certificate_is_refused_as_server_certificate(openssl: str, home: Home) -> None:
    home.issue("notaserver", kind=CertKind.CLIENT)
    home.issue("alice", kind=CertKind.CLIENT)
    srv, cli_id = home.identity("notaserver"), home.identity("alice")
    assert verify(openssl, home.ca_cert_path, srv.cert, "-purpose", "sslserver").returncode != 0
    port = free_port()
    with openssl_s_server(openssl, cert=srv.cert, key=srv.key, ca=srv.ca, port=port):
        result = s_client(openssl, port=port, ca=cli_id.ca, cert=cli_id.cert, key=cli_id.key)
    assert result.returncode != 0
    assert "unsuitable certificate purpose" in result.stdout + result.stderr


def test_name_constrained_intermediate_cannot_escape_its_names(
    openssl: str, inter_home: Home, tmp_path: Path,
) -> None:
    authority = inter_home.load_authority()
    key = authority.key  # any key will do: only the chain is verified
    for label, sans in [("dns", SubjectAltNames.parse(dns=["evil.com"])),
                        ("ip", SubjectAltNames.parse(ips=["192.0.2.1"])),
                        ("uri", SubjectAltNames.parse(uris=["spiffe://evil.org/x"]))]:
        forged = authority.sign(key.public_key(), name="forged", kind=CertKind.CLIENT, sans=sans,
                                lifetime=dt.timedelta(days=30), enforce_constraints=False)
        leaf = tmp_path / f"forged-{label}.pem"
        leaf.write_bytes(forged.public_bytes(serialization.Encoding.PEM)
                         + authority.cert.public_bytes(serialization.Encoding.PEM))
        result = verify(openssl, inter_home.ca_cert_path, leaf)
        assert result.returncode != 0, label
        assert "subtree violation" in result.stdout + result.stderr, label


def test_foreign_sha1_and_v1_certificates_are_explained(
    openssl: str, tmp_path: Path, cli: Callable[..., CliResult],
) -> None:
    key = tmp_path / "k.pem"
    sha1 = tmp_path / "sha1.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(sha1), "-sha1", "-days", "30", "-subj", "/CN=old.example"],
                   check=True, capture_output=True)
    csr, v1 = tmp_path / "r.csr", tmp_path / "v1.pem"
    subprocess.run([openssl, "req", "-new", "-key", str(key), "-subj", "/CN=v1.example",
                    "-out", str(csr)], check=True, capture_output=True)
    subprocess.run([openssl, "x509", "-req", "-in", str(csr), "-signkey", str(key), "-days", "30",
                    "-out", str(v1)], check=True, capture_output=True)
    result = cli("cert", "lint", sha1)
    assert result.code == 1 and "weak-signature" in result.out and "SHA1" in result.out
    result = cli("cert", "lint", v1)
    assert result.code == 1 and "version-not-3" in result.out
