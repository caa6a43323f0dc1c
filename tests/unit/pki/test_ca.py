"""The pure CA: extensions, lifetimes, key types, CSRs, name constraints."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustwire.errors import ConfigError, CSRError, NameConstraintError, PKIError
from trustwire.pki.ca import BACKDATE, CertKind, create_intermediate, create_root, inspect_csr
from trustwire.pki.keys import KeyType
from trustwire.pki.lint import lint_certificate
from trustwire.pki.names import NameConstraints, SubjectAltNames

TEN_YEARS = dt.timedelta(days=3650)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(cls)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_root_has_the_extensions_strict_verification_wants(key_type: KeyType) -> None:
    root = create_root(name="Root", key_type=key_type, lifetime=TEN_YEARS, now=NOW)
    bc = ext(root.cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0  # type: ignore[attr-defined]
    ku = ext(root.cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign  # type: ignore[attr-defined]
    ski = ext(root.cert, x509.SubjectKeyIdentifier).value
    aki = ext(root.cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest  # type: ignore[attr-defined]
    assert root.cert.not_valid_before_utc == NOW - BACKDATE
    assert lint_certificate(root.cert, now=NOW) == []


@pytest.mark.parametrize("kind", list(CertKind))
def test_leaf_extensions_per_kind(kind: CertKind) -> None:
    root = create_root(name="Root", lifetime=TEN_YEARS, now=NOW)
    leaf = root.issue("web", kind=kind, now=NOW)
    cert = leaf.cert
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca  # type: ignore[attr-defined]
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign  # type: ignore[attr-defined]
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert (ExtendedKeyUsageOID.SERVER_AUTH in eku.value) == kind.is_server  # type: ignore[operator]
    assert (ExtendedKeyUsageOID.CLIENT_AUTH in eku.value) == (kind is not CertKind.SERVER)  # type: ignore[operator]
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ext(  # type: ignore[attr-defined]
        root.cert, x509.SubjectKeyIdentifier).value.digest  # type: ignore[attr-defined]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web"
    assert cert.not_valid_before_utc == NOW - BACKDATE
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=90)
    assert lint_certificate(cert, now=NOW) == []
    if kind.is_server:  # NAME becomes the DNS SAN when no names are given
        assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["web"]  # type: ignore[attr-defined]


def test_serials_are_random_and_large() -> None:
    root = create_root(name="Root", lifetime=TEN_YEARS)
    serials = {root.issue(f"c{i}", kind=CertKind.CLIENT).cert.serial_number for i in range(20)}
    assert len(serials) == 20
    assert all(s.bit_length() > 100 for s in serials)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_leaf_key_types(key_type: KeyType) -> None:
    root = create_root(name="Root", lifetime=TEN_YEARS)
    leaf = root.issue("k", kind=CertKind.CLIENT, key_type=key_type)
    assert leaf.private_key is not None
    assert lint_certificate(leaf.cert) == []


def test_lifetime_limits() -> None:
    root = create_root(name="Root", lifetime=TEN_YEARS)
    with pytest.raises(ConfigError, match="at most 397 days"):
        root.issue("x", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=398))
    with pytest.raises(ConfigError, match="at least 5 minutes"):
        root.issue("x", kind=CertKind.CLIENT, lifetime=dt.timedelta(minutes=1))
    short = root.issue("x", kind=CertKind.CLIENT, lifetime=dt.timedelta(hours=2))
    assert short.cert.not_valid_after_utc - short.cert.not_valid_before_utc == dt.timedelta(
        hours=2) + BACKDATE


def test_leaf_may_not_outlive_its_ca() -> None:
    root = create_root(name="Root", lifetime=dt.timedelta(days=500), now=NOW)
    with pytest.raises(PKIError, match="expire after its CA"):
        root.issue("x", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=300),
                   now=NOW + dt.timedelta(days=300))


def test_intermediate_chain_and_constraints() -> None:
    root = create_root(name="Root", lifetime=TEN_YEARS, path_length=1)
    inter = create_intermediate(root, name="Inter", lifetime=TEN_YEARS,
                                constraints=NameConstraints.parse(dns=["example.internal"]))
    nc = ext(inter.cert, x509.NameConstraints)
    assert nc.critical
    assert ext(inter.cert, x509.BasicConstraints).value.path_length == 0  # type: ignore[attr-defined]
    assert inter.leaf_chain == (inter.cert,)
    leaf = inter.issue("web.example.internal", kind=CertKind.SERVER)
    assert leaf.chain == (inter.cert,)
    assert leaf.cert_chain_pem.bytes().count(b"BEGIN CERTIFICATE") == 2
    with pytest.raises(NameConstraintError, match="DNS:evil.com lies outside"):
        inter.issue("web", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["evil.com"]))
    with pytest.raises(NameConstraintError, match="IP:10.0.0.1"):
        inter.issue("web.example.internal", kind=CertKind.SERVER,
                    sans=SubjectAltNames.parse(dns=["example.internal"], ips=["10.0.0.1"]))


def _csr(key: object, cn: str | None = "dev", sans: list[x509.GeneralName] | None = None) -> x509.CertificateSigningRequest:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]


def test_csr_signing_takes_only_key_cn_and_sans() -> None:
    root = create_root(name="Root", lifetime=TEN_YEARS)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = _csr(key, sans=[x509.DNSName("dev.example")])
    issued = root.sign_csr(csr, kind=CertKind.SERVER)
    assert issued.private_key is None
    assert issued.cert.public_key() == key.public_key()
    assert lint_certificate(issued.cert) == []


def test_csr_with_bad_signature_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    good = _csr(key).public_bytes(serialization.Encoding.DER)
    tampered = bytearray(good)
    tampered[-5] ^= 0xFF  # flip bits inside the signature
    csr = x509.load_der_x509_csr(bytes(tampered))
    with pytest.raises(CSRError, match="signature does not verify"):
        inspect_csr(csr)


def test_csr_defects() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CSRError, match="exactly one common name"):
        inspect_csr(_csr(key, cn=None))
    with pytest.raises(CSRError, match="unsupported name types"):
        inspect_csr(_csr(key, sans=[x509.RFC822Name("a@example.com")]))
    with pytest.raises(ConfigError, match="IP address"):
        inspect_csr(_csr(key, sans=[x509.DNSName("10.0.0.1")]))
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CSRError, match="1024 bits"):
        inspect_csr(_csr(weak))
    with pytest.raises(ConfigError, match="invalid certificate name"):
        inspect_csr(_csr(key, cn="../../etc"))
