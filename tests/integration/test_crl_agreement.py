"""The gate and OpenSSL agree about every CRL, and a revocation never waits (fifth review).

Each case here once split the decision: a full handshake (OpenSSL's CRL check plus the
gate) went one way while open sessions, judged by the gate alone at the reload, went the
other; or a sound revocation was held back by something unrelated. The PKI is the one of
test_crl_intermediates.py: root R and intermediate IB in the CA file, IA in the server's
chain, carol issued by IB, dave by IA.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.integration.test_crl_intermediates import (
    Pki,
    _cert,
    _crl,
    _cut_reason,
    _open,
    _refused,
    _reload,
    _server,
)
from tests.servers import ServerThread
from tests.trust import frame, read_frame
from trustwire import services
from trustwire.server.server import Server
from trustwire.tls.context import ClientTLS, ServerTLS


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    made = Pki(tmp_path)
    made.write_crls(made.ib_crl(1))
    return made


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    with _server(pki, tmp_path, "ca+ib.crt") as st:
        yield st


def _handshake_ok(ctx: ssl.SSLContext, port: int) -> bool:
    try:
        _open(ctx, port).close()
        return True
    except (ssl.SSLError, OSError):
        return False


def _still_served(held: ssl.SSLSocket) -> bool:
    try:
        held.settimeout(3)
        held.sendall(frame(b"again"))
        return read_frame(held) == b"AGAIN"
    except (ssl.SSLError, OSError, ConnectionError):
        return False
    finally:
        held.close()


def test_revoking_an_intermediate_refuses_what_it_issued(pki: Pki, server: ServerThread) -> None:
    """OpenSSL checks the leaf's CRL only (CRL_CHECK_LEAF): R's CRL listing IB (its key
    leaked) had no effect on any path."""
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.fixed = _crl("Root R", pki.root_key, 2, (pki.ib.serial_number,)) + pki.ia_crl1
    pki.write_crls(pki.ib_written)
    assert _reload(server)[:2] == (True, 1)
    assert "the CA that issued the certificate of CN=carol has been revoked" in _cut_reason(held)
    held.close()
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    _open(pki.client("dave"), server.port).close()  # IA is not revoked


def _bad_root_crl(pki: Pki, kind: str) -> bytes:
    now = dt.datetime.now(dt.UTC)
    if kind == "expired":  # R's team let theirs lapse
        return _crl("Root R", pki.root_key, 2, next_update=now - dt.timedelta(minutes=1))
    if kind == "future":  # R's CA clock is an hour ahead
        return _crl("Root R", pki.root_key, 2, this_update=now + dt.timedelta(hours=1))
    return _crl("Root R", pki.root_key, 1)  # R's number 1 again, after number 2


@pytest.mark.parametrize("kind", ["expired", "future", "rollback"])
def test_another_cas_bad_crl_does_not_hold_back_a_revocation(
        pki: Pki, server: ServerThread, kind: str) -> None:
    """The reload rightly refuses R's CRL; IB's sound, newer CRL revoking carol must take
    effect all the same (salvage goes CRL by CRL)."""
    carol = pki.client("carol")
    if kind == "rollback":
        pki.fixed = _crl("Root R", pki.root_key, 2) + pki.ia_crl1
        pki.write_crls(pki.ib_written)
        assert _reload(server)[0]
    held = _open(carol, server.port)
    pki.fixed = _bad_root_crl(pki, kind) + pki.ia_crl1
    pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
    ok, cut, error = _reload(server)
    assert not ok and cut == 1, error
    assert error is not None and "new revocation(s) are in force all the same" in error
    assert "has been revoked" in _cut_reason(held)
    held.close()
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()


def test_a_crl_inside_the_clock_skew_refuses_on_every_path(pki: Pki, server: ServerThread,
                                                           ) -> None:
    """A CRL up to 5 minutes ahead is accepted (clocks differ), but OpenSSL refuses its
    certificates until its thisUpdate: so must the open sessions."""
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(pki.ib_crl(2, this_update=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)))
    ok, cut, error = _reload(server)
    assert (ok, cut) == (True, 1), error
    assert "not valid yet" in _cut_reason(held)
    held.close()
    assert not _handshake_ok(carol, server.port)
    _open(pki.client("dave"), server.port).close()


@pytest.mark.parametrize("spelling", ["CAFÉ ROOT", "Café\u00a0Root"])
def test_names_openssl_does_not_fold_are_not_folded(tmp_path: Path, spelling: str) -> None:
    """OpenSSL folds ASCII case and white space only: a CRL from "CAFÉ ROOT" is not one
    from "Café Root" for it, so it must not be for the gate either."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.crt").write_bytes(
        _cert("Café Root", root_key, "Café Root", root_key, ca=True).public_bytes(pem))
    for name, eku in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                      ("carol", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(name, key, "Café Root", root_key, ca=False, eku=eku,
                     dns="localhost" if name == "server" else None)
        (tmp_path / f"{name}.crt").write_bytes(leaf.public_bytes(pem))
        (tmp_path / f"{name}.key").write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    crl = tmp_path / "crl.pem"
    crl.write_bytes(_crl("Café Root", root_key, 1))
    tls = ServerTLS(cert=tmp_path / "server.crt", key=tmp_path / "server.key",
                    ca=tmp_path / "ca.crt", crl=crl)
    carol = ClientTLS(ca=tmp_path / "ca.crt", cert=tmp_path / "carol.crt",
                      key=tmp_path / "carol.key").context()
    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=tmp_path / "audit.jsonl") as st:
        held = _open(carol, st.port)
        (tmp_path / "crl.tmp").write_bytes(_crl(spelling, root_key, 2))
        (tmp_path / "crl.tmp").replace(crl)
        ok, _, error = _reload(st)
        assert not ok and error is not None and "is not signed by this CA" in error
        assert _handshake_ok(carol, st.port) and _still_served(held)  # the old CRL stays
