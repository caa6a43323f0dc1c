"""Seventh review: _self_signed asks cryptography to verify a root's own signature, and
cryptography refuses SHA-1 (and MD5) signatures, so a SHA-1 self-signed root -- many
long-lived roots are -- is "not a root" for revoked_cas. OpenSSL never checks a trust
anchor's self-signature, so it takes such a root. The root then becomes a link whose
parent is itself (its AKI keyid is its own SKI, as `openssl req -x509` writes it): as
soon as the root's CRL revokes a leaf whose serial equals the root's serial, the root
and everything below it count as revoked, and every client is refused.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.integration.test_crl_agreement import _handshake_ok
from tests.integration.test_crl_names_unparsable import PEM, _cert, _crl, _dn
from tests.servers import ServerThread
from trustwire import services
from trustwire.server.server import Server
from trustwire.tls.context import ClientTLS, ServerTLS


@pytest.fixture
def where(tmp_path: Path) -> Path:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha1", "-days", "3",
         "-set_serial", "1", "-subj", "/CN=Root R", "-keyout", tmp_path / "root.key",
         "-out", tmp_path / "ca.crt",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"],
        check=True, capture_output=True, timeout=60)
    root_key = serialization.load_pem_private_key((tmp_path / "root.key").read_bytes(), None)
    root = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    assert root.serial_number == 1
    root_name = root.subject
    serials = {}
    for name, eku, serial in (("server", ExtendedKeyUsageOID.SERVER_AUTH, None),
                              ("carol", ExtendedKeyUsageOID.CLIENT_AUTH, None),
                              ("dave", ExtendedKeyUsageOID.CLIENT_AUTH, 1)):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(_dn(name), key, root_name, root_key, ca=False, eku=eku,  # type: ignore[arg-type]
                     dns="localhost" if name == "server" else None)
        if serial is not None:  # dave: the CA's serial counter started at 1
            leaf = x509.CertificateBuilder(
                issuer_name=leaf.issuer, subject_name=leaf.subject,
                public_key=leaf.public_key(), serial_number=serial,
                not_valid_before=leaf.not_valid_before_utc,
                not_valid_after=leaf.not_valid_after_utc,
                extensions=list(leaf.extensions)).sign(root_key, leaf.signature_hash_algorithm)  # type: ignore[arg-type]
        serials[name] = leaf.serial_number
        (tmp_path / f"{name}.crt").write_bytes(leaf.public_bytes(PEM))
        (tmp_path / f"{name}.key").write_bytes(key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "crl.pem").write_bytes(_crl(root_name, root_key, 1))  # type: ignore[arg-type]
    (tmp_path / "root_key.pem").write_bytes((tmp_path / "root.key").read_bytes())
    return tmp_path


@pytest.fixture
def server(where: Path) -> Iterator[ServerThread]:
    tls = ServerTLS(cert=where / "server.crt", key=where / "server.key", ca=where / "ca.crt",
                    crl=where / "crl.pem")
    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=where / "audit.jsonl") as st:
        yield st


def _ctx(where: Path, name: str):  # type: ignore[no-untyped-def]
    return ClientTLS(ca=where / "ca.crt", cert=where / f"{name}.crt",
                     key=where / f"{name}.key").context()


def test_revoking_serial_1_under_a_sha1_root_refuses_only_that_leaf(
        where: Path, server: ServerThread) -> None:
    carol = _ctx(where, "carol")
    assert _handshake_ok(carol, server.port)  # OpenSSL takes the SHA-1 root
    root_key = serialization.load_pem_private_key((where / "root.key").read_bytes(), None)
    root = x509.load_pem_x509_certificate((where / "ca.crt").read_bytes())
    (where / "crl.tmp").write_bytes(_crl(root.subject, root_key, 2, (1,)))  # type: ignore[arg-type]
    (where / "crl.tmp").replace(where / "crl.pem")
    outcome = server.call(lambda: server.server.reloader.reload("test"))  # type: ignore[union-attr]
    assert outcome.ok, outcome.error
    assert not _handshake_ok(_ctx(where, "dave"), server.port)  # dave (serial 1) is revoked
    assert _handshake_ok(carol, server.port), "carol refused: the root itself counts as revoked"
