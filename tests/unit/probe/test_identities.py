"""The identities the mTLS audit presents, minted through pki (no network)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from trustwire.errors import ConfigError
from trustwire.pki.ca import Authority, create_root, utcnow
from trustwire.pki.crl import RevokedEntry, build_crl
from trustwire.pki.keys import load_private_key, private_key_pem, public_keys_match
from trustwire.probe.identities import mint_identities
from trustwire.probe.observations import VALID_FROM_YOUR_CA
from trustwire.probe.target import ProbeOptions

STRANGER_CASES = ["a self-signed certificate", "a certificate from an unknown CA",
                  "an expired certificate (unknown CA)",
                  "a certificate without clientAuth (unknown CA)"]
OWN_CASES = [VALID_FROM_YOUR_CA, "an expired certificate from your CA",
             "a certificate without clientAuth from your CA"]
REVOKED = "a revoked certificate from your CA"


def _ca_files(tmp_path: Path, revoked: list[int] | None = None) -> tuple[Authority, ProbeOptions]:
    ca = create_root(name="server CA", lifetime=dt.timedelta(days=365))
    (tmp_path / "ca.crt").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(private_key_pem(ca.key))
    crl_path = None
    if revoked is not None:
        crl = build_crl(ca, [RevokedEntry(serial=s, revoked_at=utcnow()) for s in revoked], number=1)
        crl_path = tmp_path / "ca.crl"
        crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return ca, ProbeOptions(ca=tmp_path / "ca.crt", ca_key=tmp_path / "ca.key", crl=crl_path)


def _load(pair: tuple[Path, Path]) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(pair[0].read_bytes())
    key = load_private_key(pair[1].read_bytes(), source=str(pair[1]))
    assert public_keys_match(cert.public_key(), key.public_key())
    assert pair[1].stat().st_mode & 0o077 == 0
    return cert


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_without_the_servers_ca_only_stranger_identities_are_minted(tmp_path: Path) -> None:
    untested: list[tuple[str, str]] = []
    made = mint_identities(tmp_path, ProbeOptions(), untested)
    assert list(made) == STRANGER_CASES
    assert [what for what, _ in untested] == [
        "expired and revoked certificates from the server's own CA"]
    self_signed = _load(made["a self-signed certificate"])
    assert self_signed.issuer == self_signed.subject
    expired = _load(made["an expired certificate (unknown CA)"])
    assert expired.not_valid_after_utc < dt.datetime.now(dt.UTC)
    no_eku = _load(made["a certificate without clientAuth (unknown CA)"])
    assert _usages(no_eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _usages(_load(made["a certificate from an unknown CA"])) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_with_ca_key_and_crl_the_revoked_identity_reuses_a_listed_serial(tmp_path: Path) -> None:
    ca, options = _ca_files(tmp_path, revoked=[0x1234567, 0x89ABCDEF])
    untested: list[tuple[str, str]] = []
    made = mint_identities(tmp_path, options, untested)
    assert list(made) == [*STRANGER_CASES, *OWN_CASES, REVOKED]
    assert untested == []
    revoked = _load(made[REVOKED])
    assert revoked.serial_number == 0x1234567
    assert revoked.issuer == ca.cert.subject
    revoked.verify_directly_issued_by(ca.cert)
    assert _usages(revoked) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for case in OWN_CASES:
        _load(made[case]).verify_directly_issued_by(ca.cert)
    good = _load(made[VALID_FROM_YOUR_CA])
    assert good.not_valid_before_utc <= dt.datetime.now(dt.UTC) < good.not_valid_after_utc


@pytest.mark.parametrize(("revoked", "reason"), [
    (None, "pass --crl with the CRL the server checks"),
    ([], "the CRL lists no revoked serial"),
])
def test_no_revoked_serial_to_reuse_is_reported_untested(
        tmp_path: Path, revoked: list[int] | None, reason: str) -> None:
    _, options = _ca_files(tmp_path, revoked=revoked)
    untested: list[tuple[str, str]] = []
    made = mint_identities(tmp_path, options, untested)
    assert list(made) == [*STRANGER_CASES, *OWN_CASES]
    assert untested == [("a revoked certificate", reason)]


def test_ca_key_needs_its_own_certificate(tmp_path: Path) -> None:
    _, options = _ca_files(tmp_path)
    with pytest.raises(ConfigError, match="needs --ca"):
        mint_identities(tmp_path, ProbeOptions(ca_key=options.ca_key), [])
    other = create_root(name="other CA", lifetime=dt.timedelta(days=30))
    (tmp_path / "other.key").write_bytes(private_key_pem(other.key))
    with pytest.raises(ConfigError, match="is not the key of"):
        mint_identities(tmp_path, ProbeOptions(ca=options.ca, ca_key=tmp_path / "other.key"), [])
