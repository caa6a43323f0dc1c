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

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.integration.test_crl_agreement import _handshake_ok, _still_served
from tests.integration.test_crl_intermediates import (
    Pki,
    _cert,
    _crl,
    _open,
    _reload,
    reissue_ib,
    serving,
)
from tests.servers import ServerThread

PEM = serialization.Encoding.PEM


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """IB self-issued: it carries R's name with its own key, and no AKI."""
    made = Pki(tmp_path)
    reissue_ib(made, name="Root R", aki=False)
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
    yield from serving(pki, tmp_path)






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
