"""Seventh review: name_key's fallback for text from_rfc4514_string cannot parse is the
pre-sixth-review text folding, with its bug: an escaped outer space counts.

cryptography prints a one-space value as ``OU=\\\\ `` which its own parser refuses, so
name_key folds the escaped text ("?..."), while a two-space or tab value parses to "".
OpenSSL's canonical form strips both to the empty string (X509_NAME_cmp == 0). A root
R whose subject has OU="  " and an intermediate IB whose issuer field spells it OU=" "
chain for OpenSSL (strict mode, CRL check), but revoked_cas keys IB's parent as the
fallback text, which matches no CA: R's CRL revoking IB never applies, and IB's
leaves are admitted by full handshakes and keep their open sessions.
The same split follows from anything else from_rfc4514_string refuses while OpenSSL
takes it -- a CN over 64 characters, a country that is not two letters, an
x500UniqueIdentifier BIT STRING that is not UTF-8 -- plus an outer space (or another
RDN order) in IB's issuer field.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.test_crl_agreement import _handshake_ok, _still_served
from tests.integration.test_crl_intermediates import NOW, _open, _usage
from tests.integration.test_crl_name_types import _ossl_equal
from tests.servers import ServerThread
from trustwire import services
from trustwire.net.session import CUT_BOUND
from trustwire.server.server import Server
from trustwire.tls.context import ClientTLS, ServerTLS

PEM = serialization.Encoding.PEM
Key = ec.EllipticCurvePrivateKey


def _dn(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    return x509.Name(attrs)


LONG = "Root R of the Example Corporation Internal Public Key Infrastructure"  # > 64
SPELLINGS = {
    # a one-space value (unparsable) vs a two-space one: both "" for OpenSSL
    "one-space-value": (_dn("Root R", "  "), _dn("Root R", " ")),
    # a CN over 64 characters (OpenSSL takes it; from_rfc4514_string refuses it), and an
    # outer space in IB's issuer field (OpenSSL strips it): the sixth review's case again
    "long-cn-outer-space": (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LONG, _validate=False)]),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LONG + " ", _validate=False)])),
    # a three-letter country (likewise refused by the parser only)
    "country-outer-space": (
        x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "USA", _validate=False),
                   x509.NameAttribute(NameOID.COMMON_NAME, "Root R")]),
        x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "USA", _validate=False),
                   x509.NameAttribute(NameOID.COMMON_NAME, "Root R ")])),
}


def _cert(subject: x509.Name, key: Key, issuer: x509.Name, issuer_key: Key, *, ca: bool,
          eku: x509.ObjectIdentifier | None = None, dns: str | None = None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW - dt.timedelta(hours=1))
         .not_valid_after(NOW + dt.timedelta(days=9))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(_usage(ca), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer_key.public_key()), critical=False))
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if dns is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _crl(issuer: x509.Name, key: Key, number: int, revoked: tuple[int, ...] = ()) -> bytes:
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer)
         .last_update(NOW - dt.timedelta(minutes=10) + dt.timedelta(seconds=number))
         .next_update(NOW + dt.timedelta(days=7))
         .add_extension(x509.CRLNumber(number), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                        critical=False))
    for serial in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(NOW - dt.timedelta(minutes=5)).build())
    return b.sign(key, hashes.SHA256()).public_bytes(PEM)


class World:
    def __init__(self, where: Path, spelling: str) -> None:
        ROOT, ROOT_AS_IB_SAYS = SPELLINGS[spelling]  # noqa: N806
        self.where = where
        self.root_key, self.ib_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "ab")
        root = _cert(ROOT, self.root_key, ROOT, self.root_key, ca=True)
        self.ib = _cert(_dn("Int IB"), self.ib_key, ROOT_AS_IB_SAYS, self.root_key, ca=True)
        (where / "ca.crt").write_bytes(root.public_bytes(PEM))
        (where / "ca+ib.crt").write_bytes(root.public_bytes(PEM) + self.ib.public_bytes(PEM))
        for name, issuer, signer, eku in (
                ("server", ROOT, self.root_key, ExtendedKeyUsageOID.SERVER_AUTH),
                ("carol", _dn("Int IB"), self.ib_key, ExtendedKeyUsageOID.CLIENT_AUTH)):
            key = ec.generate_private_key(ec.SECP256R1())
            leaf = _cert(_dn(name), key, issuer, signer, ca=False, eku=eku,
                         dns="localhost" if name == "server" else None)
            chain = leaf.public_bytes(PEM) + (self.ib.public_bytes(PEM) if name == "carol"
                                              else b"")
            (where / f"{name}.crt").write_bytes(chain)
            (where / f"{name}.key").write_bytes(key.private_bytes(
                PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.ib_crl = _crl(_dn("Int IB"), self.ib_key, 1)
        self.root_name = ROOT
        self.write(_crl(ROOT, self.root_key, 1))

    def write(self, root_crl: bytes) -> None:
        (self.where / "crl.tmp").write_bytes(root_crl + self.ib_crl)
        (self.where / "crl.tmp").replace(self.where / "crl.pem")

    def carol(self) -> ssl.SSLContext:
        return ClientTLS(ca=self.where / "ca.crt", cert=self.where / "carol.crt",
                         key=self.where / "carol.key").context()


@pytest.fixture(params=sorted(SPELLINGS))
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    return World(tmp_path, request.param)


@pytest.fixture
def server(world: World, tmp_path: Path) -> Iterator[ServerThread]:
    tls = ServerTLS(cert=world.where / "server.crt", key=world.where / "server.key",
                    ca=world.where / "ca+ib.crt", crl=world.where / "crl.pem")
    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=tmp_path / "audit.jsonl") as st:
        yield st








@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_openssl_takes_the_two_spellings_for_one_name(spelling: str) -> None:
    assert _ossl_equal(*SPELLINGS[spelling])


def test_the_roots_revocation_of_ib_counts_however_an_unparsable_root_name_is_spelt(
        world: World, server: ServerThread) -> None:
    carol = world.carol()
    held = _open(carol, server.port)  # OpenSSL and the gate accept the chain
    world.write(_crl(world.root_name, world.root_key, 2, (world.ib.serial_number,)))
    outcome = server.call(lambda: server.server.reloader.reload("test"))  # type: ignore[union-attr]
    assert outcome.ok, outcome.error
    time.sleep(CUT_BOUND + 0.2)
    admitted = _handshake_ok(carol, server.port)
    survived = _still_served(held)
    assert not admitted, "carol, issued by a revoked CA, was admitted by a full handshake"
    assert not survived, "carol's open session survived IB's revocation"


def test_a_crl_from_a_long_named_ca_spelled_with_an_outer_space_still_revokes(
        tmp_path: Path) -> None:
    """The sixth review's "CRL spelled with an outer space" case, for a CA whose CN is over
    64 characters: OpenSSL matches the CRL to IB, the gate (text fallback) does not, the
    reload refuses the CRL and carol's revocation never takes effect."""
    long_ib = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LONG.replace("Root R", "Int IB"),
                                            _validate=False)])
    spelt = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                          LONG.replace("Root R", "Int IB") + " ",
                                          _validate=False)])
    assert _ossl_equal(long_ib, spelt)
    root_key, ib_key, carol_key, server_key = (ec.generate_private_key(ec.SECP256R1())
                                               for _ in range(4))
    root_name = _dn("Root R")
    root = _cert(root_name, root_key, root_name, root_key, ca=True)
    ib = _cert(long_ib, ib_key, root_name, root_key, ca=True)
    carol = _cert(_dn("carol"), carol_key, long_ib, ib_key, ca=False,
                  eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    server_cert = _cert(_dn("server"), server_key, root_name, root_key, ca=False,
                        eku=ExtendedKeyUsageOID.SERVER_AUTH, dns="localhost")
    w = tmp_path
    (w / "ca.crt").write_bytes(root.public_bytes(PEM))
    (w / "ca+ib.crt").write_bytes(root.public_bytes(PEM) + ib.public_bytes(PEM))
    for name, cert, key, extra in (("carol", carol, carol_key, ib.public_bytes(PEM)),
                                   ("server", server_cert, server_key, b"")):
        (w / f"{name}.crt").write_bytes(cert.public_bytes(PEM) + extra)
        (w / f"{name}.key").write_bytes(key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    root_crl = _crl(root_name, root_key, 1)
    (w / "crl.pem").write_bytes(root_crl + _crl(long_ib, ib_key, 1))
    tls = ServerTLS(cert=w / "server.crt", key=w / "server.key", ca=w / "ca+ib.crt",
                    crl=w / "crl.pem")
    ctx = ClientTLS(ca=w / "ca.crt", cert=w / "carol.crt", key=w / "carol.key").context()
    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=tmp_path / "audit.jsonl") as st:
        held = _open(ctx, st.port)
        (w / "crl.tmp").write_bytes(root_crl + _crl(spelt, ib_key, 2, (carol.serial_number,)))
        (w / "crl.tmp").replace(w / "crl.pem")
        outcome = st.call(lambda: st.server.reloader.reload("test"))  # type: ignore[union-attr]
        time.sleep(CUT_BOUND + 0.2)
        assert not _still_served(held), f"carol's open session survived ({outcome})"
        assert not _handshake_ok(ctx, st.port), "carol's new handshake was admitted"
