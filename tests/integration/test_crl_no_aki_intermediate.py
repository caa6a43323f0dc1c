"""Seventh review: a root's revocation of an intermediate must count whatever its
authority key identifier looks like.

revoked_cas keys an intermediate's parent as issuer name + AKI keyid and the root as
subject + SKI. OpenSSL's strict mode requires an AKI with a keyid on every non-root
certificate *except a self-issued one* (issuer == subject, EXFLAG_SI): a self-issued
intermediate -- the key rollover link the sixth review made count -- may carry no AKI at
all, and `openssl verify -x509_strict -crl_check` accepts its leaves. Its parent key is
then the bare name "CN=Root R" (no "#<ski>"), which matches no CA: the root's CRL
revoking it is taken and never applied; its leaves keep being served and admitted.
(Plain intermediates without a keyid AKI are refused by OpenSSL strict: that held.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.test_crl_agreement import _handshake_ok, _still_served
from tests.integration.test_crl_intermediates import (
    NOW,
    Pki,
    _cert,
    _crl,
    _open,
    _reload,
    _server,
    _usage,
)
from tests.servers import ServerThread

PEM = serialization.Encoding.PEM


def _replace_ib(pki: Pki, aki: str, name: str = "Int IB") -> None:
    """IB re-issued by R (same key, so carol still chains) with AKI form ``aki``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Root R")]))
        .public_key(pki.ib_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pki.ib_key.public_key()),
                       critical=False)
    )
    root = x509.load_pem_x509_certificates((pki.where / "ca.crt").read_bytes())[0]
    if aki == "issuer+serial":
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(
            key_identifier=None,
            authority_cert_issuer=[x509.DirectoryName(root.subject)],
            authority_cert_serial_number=root.serial_number), critical=False)
    elif aki == "keyid+issuer+serial":
        ski = x509.SubjectKeyIdentifier.from_public_key(pki.root_key.public_key()).digest
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(
            key_identifier=ski,
            authority_cert_issuer=[x509.DirectoryName(root.subject)],
            authority_cert_serial_number=root.serial_number), critical=False)
    else:
        assert aki == "none"
    ib = builder.sign(pki.root_key, hashes.SHA256())
    pem = ib.public_bytes(PEM)
    (pki.where / "ca+ib.crt").write_bytes((pki.where / "ca.crt").read_bytes() + pem)
    carol = x509.load_pem_x509_certificates((pki.where / "carol.crt").read_bytes())[0]
    (pki.where / "carol.crt").write_bytes(carol.public_bytes(PEM) + pem)
    pki.ib = ib


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """IB self-issued: it carries R's name with its own key, and no AKI."""
    made = Pki(tmp_path)
    _replace_ib(made, "none", name="Root R")
    key = ec.generate_private_key(ec.SECP256R1())
    carol = _cert("carol", key, "Root R", made.ib_key, ca=False,
                  eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    made.serials["carol"] = carol.serial_number
    (tmp_path / "carol.crt").write_bytes(carol.public_bytes(PEM) + made.ib.public_bytes(PEM))
    (tmp_path / "carol.key").write_bytes(key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    made.write_crls(_crl("Root R", made.ib_key, 1))  # IB's CRL (its name is "Root R")
    return made


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    with _server(pki, tmp_path, "ca+ib.crt") as st:
        yield st






def test_a_revoked_self_issued_intermediate_without_an_aki_refuses_its_leaves(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    held = _open(carol, server.port)  # OpenSSL (strict) and the gate accept the chain
    pki.fixed = _crl("Root R", pki.root_key, 2, (pki.ib.serial_number,)) + pki.ia_crl1
    pki.write_crls(pki.ib_written)
    ok, cut, error = _reload(server)
    assert ok, error
    admitted = _handshake_ok(carol, server.port)
    survived = _still_served(held)
    assert not admitted, "carol, issued by a revoked CA, was admitted by a full handshake"
    assert cut == 1 and not survived, "carol's open session survived IB's revocation"
