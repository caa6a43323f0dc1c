"""Seventh review: name_key conflates names OpenSSL tells apart.

OpenSSL's x509_name_canon folds only the string types of ASN1_MASK_CANON (UTF8, BMP,
Universal, Printable, T61, IA5, Visible), after converting them to UTF-8; any other
type -- NumericString, a BIT STRING (x500UniqueIdentifier) -- is compared as it is,
type included. name_key works on ``rfc4514_string()``, which drops the type, so
``CN=Int IB`` as a NumericString is "the same name" as IB's UTF8String subject for the
gate and a different one for OpenSSL (X509_NAME_cmp != 0, checked through libcrypto
below). T61String is Latin-1 for OpenSSL, UTF-8 for cryptography: same split.

Consequence: a CRL whose issuer is spelt with such a type is taken as IB's CRL by the
reload (it reports success and the floor rises), while OpenSSL finds no CRL for IB's
leaves: every new handshake of IB's clients fails ("unable to get certificate CRL"),
while the open sessions (and resumptions, judged by the gate alone) are kept. The two
paths disagree: one decision is not taken on every path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from tests.integration.test_crl_agreement import _handshake_ok, _still_served
from tests.integration.test_crl_intermediates import NOW, Pki, _open, _reload, serving
from tests.servers import ServerThread
from trustwire.authz.admission import name_key
from trustwire.net.session import CUT_BOUND


def _ossl_equal(a: x509.Name, b: x509.Name) -> bool:
    lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    lib.d2i_X509_NAME.restype = ctypes.c_void_p
    lib.d2i_X509_NAME.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                  ctypes.c_long]
    lib.X509_NAME_cmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.X509_NAME_free.argtypes = [ctypes.c_void_p]

    def load(name: x509.Name) -> int:
        der = name.public_bytes()
        buf = ctypes.c_char_p(der)
        ptr = lib.d2i_X509_NAME(None, ctypes.byref(buf), len(der))
        assert ptr
        return ptr

    pa, pb = load(a), load(b)
    try:
        return bool(lib.X509_NAME_cmp(pa, pb) == 0)
    finally:
        lib.X509_NAME_free(pa)
        lib.X509_NAME_free(pb)


def _name(value: str | bytes, kind: _ASN1Type, oid: x509.ObjectIdentifier = NameOID.COMMON_NAME,
          ) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value, kind)])


CN = NameOID.COMMON_NAME
UID = NameOID.X500_UNIQUE_IDENTIFIER


@pytest.mark.parametrize(("a", "b"), [
    (_name("Int IB", _ASN1Type.UTF8String), _name("Int IB", _ASN1Type.NumericString)),
    (_name("1 2", _ASN1Type.NumericString), _name("1  2", _ASN1Type.NumericString)),
    (_name("Rooté", _ASN1Type.UTF8String), _name("Rooté", _ASN1Type.T61String)),
    (_name(b"\x00AB", _ASN1Type.BitString, UID), _name(b"\x00ab", _ASN1Type.BitString, UID)),
], ids=["numeric-vs-utf8", "numeric-spaces", "t61-latin1", "bitstring-case"])
def test_name_key_tells_apart_what_openssl_tells_apart(a: x509.Name, b: x509.Name) -> None:
    same_for_openssl = _ossl_equal(a, b)
    same_for_gate = name_key(a) == name_key(b)
    assert same_for_gate == same_for_openssl, (a, b, same_for_openssl)


def _numeric_ib_crl(pki: Pki, number: int) -> bytes:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name("Int IB", _ASN1Type.NumericString))
        .last_update(NOW - dt.timedelta(minutes=10) + dt.timedelta(seconds=number))
        .next_update(NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            pki.ib_key.public_key()), critical=False)
        .sign(pki.ib_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    made = Pki(tmp_path)
    made.write_crls(made.ib_crl(1))
    return made


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    yield from serving(pki, tmp_path)






def test_a_crl_openssl_does_not_match_is_not_in_force_for_the_gate_either(
        pki: Pki, server: ServerThread) -> None:
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(_numeric_ib_crl(pki, 2))  # IB's own key, issuer spelt NumericString
    outcome = _reload(server)
    time.sleep(CUT_BOUND + 0.5)
    new = _handshake_ok(carol, server.port)
    kept = _still_served(held)
    assert new == kept, (f"full handshake admitted={new}, open session kept={kept} "
                         f"(reload {outcome})")
