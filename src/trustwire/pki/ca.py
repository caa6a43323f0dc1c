"""The certificate authority itself: pure cryptography, no disk.

Certificates are built as pyca/cryptography's "Creating a CA hierarchy"
tutorial does and as RFC 5280 and OpenSSL's ``-x509_strict`` demand:

* CA certificates: critical basicConstraints (cA, pathLen), critical keyUsage
  keyCertSign + cRLSign, SKI and AKI (a root's AKI names its own key, so every
  certificate carries one).
* Leaves: critical basicConstraints cA=FALSE, critical keyUsage
  digitalSignature, extendedKeyUsage for their use, SANs (no CN matching),
  SKI/AKI, a random 159-bit serial, and notBefore backdated a few minutes so a
  peer whose clock runs slightly behind still accepts a fresh certificate.

A constrained intermediate refuses to sign names outside its subtrees before
signing anything; peers enforce the same constraints during verification.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustwire.errors import ConfigError, CSRError, NameConstraintError, PKIError
from trustwire.pki.files import atomic_write
from trustwire.pki.keys import KeyType, PrivateKey, PublicKey, private_key_pem, signing_hash
from trustwire.pki.names import (
    NameConstraints,
    SubjectAltNames,
    default_server_sans,
    validate_cert_name,
    validate_subject_text,
)

__all__ = [
    "BACKDATE",
    "MAX_LEAF_LIFETIME",
    "Authority",
    "Validity",
    "Blob",
    "CertKind",
    "IssuedCert",
    "check_leaf_lifetime",
    "create_intermediate",
    "create_root",
    "fingerprint",
    "inspect_csr",
    "name_constraints_of",
    "organization_of",
    "utcnow",
]

BACKDATE = dt.timedelta(minutes=5)
"""notBefore is set this far in the past to tolerate peers with slow clocks."""

MAX_LEAF_LIFETIME = dt.timedelta(days=397)
"""Mozilla's root store policy caps server certificates at 398 days; minus the
backdate, 397 whole days is the longest leaf that stays inside the limit."""

MIN_LEAF_LIFETIME = dt.timedelta(minutes=5)
"""Shorter lifetimes would expire before clocks agree on them."""


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC, to whole seconds (X.509 precision)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of the DER certificate, lower-case hex without colons."""
    return cert.fingerprint(hashes.SHA256()).hex()


class CertKind(enum.Enum):
    """What a leaf certificate may be used for (its extendedKeyUsage)."""

    SERVER = "server"
    CLIENT = "client"
    BOTH = "both"

    @property
    def usages(self) -> list[x509.ObjectIdentifier]:
        if self is CertKind.SERVER:
            return [ExtendedKeyUsageOID.SERVER_AUTH]
        if self is CertKind.CLIENT:
            return [ExtendedKeyUsageOID.CLIENT_AUTH]
        return [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]

    @property
    def is_server(self) -> bool:
        return self is not CertKind.CLIENT


class Blob:
    """PEM data that can be written somewhere, as trustme's Blob.

    Keys are written 0600 atomically; certificates 0644.
    """

    def __init__(self, data: bytes, *, private: bool = False) -> None:
        self._data = data
        self._private = private

    def bytes(self) -> bytes:
        return self._data

    def write_to_path(self, path: str | Path) -> None:
        atomic_write(Path(path), self._data, mode=0o600 if self._private else 0o644)


@dataclass(frozen=True)
class IssuedCert:
    """A leaf certificate, its key (absent when signed from a CSR) and its chain."""

    cert: x509.Certificate
    private_key: PrivateKey | None
    chain: tuple[x509.Certificate, ...]
    """Intermediates between the leaf and the root, nearest first (root excluded)."""

    @property
    def cert_chain_pem(self) -> Blob:
        """Leaf then intermediates: what a TLS peer must send."""
        pems = [c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain)]
        return Blob(b"".join(pems))

    @property
    def private_key_pem(self) -> Blob:
        if self.private_key is None:
            raise PKIError("this certificate was signed from a CSR: its key is not here")
        return Blob(private_key_pem(self.private_key), private=True)


def _ski(public_key: PublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _name(common_name: str, organizational_unit: str | None = None,
          organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                        validate_subject_text(organization, "organization")))
    if organizational_unit is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                        validate_subject_text(organizational_unit)))
    return x509.Name(attrs)


def organization_of(cert: x509.Certificate) -> str | None:
    """The subject's organization (O), for renewals to keep it."""
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(orgs[0].value) if orgs else None


@dataclass(frozen=True)
class Validity:
    """An absolute validity window, where a lifetime from now will not do
    (``cert issue --not-before/--not-after``). Both ends timezone-aware.

    Raises:
        ConfigError: naive times, or the end not after the start.
    """

    not_before: dt.datetime
    not_after: dt.datetime

    def __post_init__(self) -> None:
        if self.not_before.tzinfo is None or self.not_after.tzinfo is None:
            raise ConfigError("validity times must carry a time zone")
        if self.not_after <= self.not_before:
            raise ConfigError(
                f"the certificate would end ({self.not_after.isoformat()}) before it begins "
                f"({self.not_before.isoformat()})",
                hint="give --not-after later than --not-before",
            )

    @property
    def span(self) -> dt.timedelta:
        return self.not_after - self.not_before


def _ca_builder(
    *, subject: x509.Name, issuer: x509.Name, public_key: PublicKey, issuer_key: PublicKey,
    path_length: int, not_before: dt.datetime, not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key),
            critical=False,
        )
    )


def create_root(
    *, name: str, key_type: KeyType = KeyType.ECDSA_P256, lifetime: dt.timedelta,
    path_length: int = 0, now: dt.datetime | None = None,
) -> Authority:
    """Create a self-signed root CA.

    Args:
        name: the CA's common name.
        key_type: algorithm of the CA key.
        lifetime: validity from now.
        path_length: 0 when the root signs leaves, 1 when it signs an intermediate.
        now: the current time (tests pass a fixed clock).
    """
    if not name.strip():
        raise ConfigError("the CA name may not be empty")
    now = now or utcnow()
    key = key_type.generate()
    subject = _name(name)
    cert = _ca_builder(
        subject=subject, issuer=subject, public_key=key.public_key(),
        issuer_key=key.public_key(), path_length=path_length,
        not_before=now - BACKDATE, not_after=now + lifetime,
    ).sign(key, signing_hash(key))  # type: ignore[arg-type]
    return Authority(cert=cert, key=key, parents=())


def create_intermediate(
    root: Authority, *, name: str, key_type: KeyType = KeyType.ECDSA_P256,
    lifetime: dt.timedelta, constraints: NameConstraints | None = None,
    now: dt.datetime | None = None,
) -> Authority:
    """Create an intermediate CA signed by ``root``, optionally name-constrained.

    Raises:
        PKIError: when the intermediate would outlive the root.
    """
    now = now or utcnow()
    not_after = now + lifetime
    not_after = min(not_after, root.cert.not_valid_after_utc)
    key = key_type.generate()
    builder = _ca_builder(
        subject=_name(name), issuer=root.cert.subject, public_key=key.public_key(),
        issuer_key=root.key.public_key(), path_length=0,
        not_before=now - BACKDATE, not_after=not_after,
    )
    if constraints is not None and not constraints.is_empty():
        builder = builder.add_extension(constraints.to_extension(), critical=True)
    cert = builder.sign(root.key, signing_hash(root.key))  # type: ignore[arg-type]
    return Authority(cert=cert, key=key, parents=(root.cert,))


def name_constraints_of(cert: x509.Certificate) -> NameConstraints | None:
    """The permitted subtrees of a CA certificate, or None when unconstrained."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return None
    return NameConstraints.from_extension(ext.value)


def check_leaf_lifetime(lifetime: dt.timedelta | Validity) -> None:
    """Raises ConfigError when a leaf lifetime (or window) is outside trustwire's limits."""
    window = isinstance(lifetime, Validity)
    span = lifetime.span if isinstance(lifetime, Validity) else lifetime
    if span < MIN_LEAF_LIFETIME:
        raise ConfigError("a certificate must live at least 5 minutes")
    if span > MAX_LEAF_LIFETIME:
        raise ConfigError(
            f"a certificate may live at most {MAX_LEAF_LIFETIME.days} days "
            "(Mozilla's 398-day limit, less the clock-skew backdate)",
            hint=(f"give a --not-after at most {MAX_LEAF_LIFETIME.days} days after --not-before"
                  if window else "use --days 90 (the default) and renew with `trustwire cert renew`"),
        )


@dataclass(frozen=True)
class Authority:
    """A CA able to sign: its certificate, its key and the CA certificates above it."""

    cert: x509.Certificate
    key: PrivateKey
    parents: tuple[x509.Certificate, ...]
    """CA certificates above this one, nearest first, ending with the root."""

    @property
    def is_root(self) -> bool:
        return not self.parents

    @property
    def leaf_chain(self) -> tuple[x509.Certificate, ...]:
        """Certificates a leaf must send with itself: this CA and its parents, root excluded."""
        if self.is_root:
            return ()
        return (self.cert, *self.parents[:-1])

    @property
    def constraints(self) -> NameConstraints | None:
        return name_constraints_of(self.cert)

    def issue(
        self, name: str, *, kind: CertKind, sans: SubjectAltNames | None = None,
        key_type: KeyType = KeyType.ECDSA_P256,
        lifetime: dt.timedelta | Validity = dt.timedelta(days=90),
        organizational_unit: str | None = None, now: dt.datetime | None = None,
        serial: int | None = None, organization: str | None = None,
    ) -> IssuedCert:
        """Generate a key and issue a leaf certificate for it (``serial`` as :meth:`sign`).

        Raises:
            ConfigError: invalid name or lifetime.
            NameConstraintError: names outside this CA's constraints.
            PKIError: the leaf would outlive the CA.
        """
        key = key_type.generate()
        cert = self.sign(
            key.public_key(), name=name, kind=kind, sans=sans or SubjectAltNames(),
            lifetime=lifetime, organizational_unit=organizational_unit, now=now, serial=serial,
            organization=organization,
        )
        return IssuedCert(cert=cert, private_key=key, chain=self.leaf_chain)

    def _check_window(self, window: Validity) -> None:
        """An absolute window must lie inside the CA's own validity, then within the leaf limits.

        Raises:
            PKIError: it starts before the CA or ends after it.
            ConfigError: it is too short or too long.
        """
        ca_start, ca_end = self.cert.not_valid_before_utc, self.cert.not_valid_after_utc
        if window.not_before < ca_start:
            raise PKIError(
                f"the certificate would start ({window.not_before:%Y-%m-%d %H:%M} UTC) before its "
                f"CA ({ca_start:%Y-%m-%d %H:%M} UTC), which no verifier accepts",
                hint=f"give a --not-before on or after {ca_start:%Y-%m-%dT%H:%M}Z",
            )
        if window.not_after > ca_end:
            raise PKIError(
                f"the certificate would expire after its CA, which expires on "
                f"{ca_end:%Y-%m-%d %H:%M} UTC",
                hint=f"use a --not-after before {ca_end:%Y-%m-%dT%H:%M}Z",
            )
        check_leaf_lifetime(window)

    def sign(
        self, public_key: PublicKey, *, name: str, kind: CertKind, sans: SubjectAltNames,
        lifetime: dt.timedelta | Validity, organizational_unit: str | None = None,
        now: dt.datetime | None = None, enforce_constraints: bool = True,
        serial: int | None = None, organization: str | None = None,
    ) -> x509.Certificate:
        """Sign a leaf for ``public_key``.

        ``enforce_constraints=False`` exists only so tests can prove that peers
        reject what a constrained CA must never produce. Likewise ``serial``
        (default: a random serial) exists only so tests and ``trustwire probe``
        can present a certificate whose serial a CRL already lists: a CA must
        never give two certificates one serial (RFC 5280 4.1.2.2).
        """
        validate_cert_name(name)
        if kind.is_server:
            sans = default_server_sans(name, sans)
        now = now or utcnow()
        if isinstance(lifetime, Validity):
            self._check_window(lifetime)
            not_before, not_after = lifetime.not_before, lifetime.not_after
        else:
            check_leaf_lifetime(lifetime)
            not_before, not_after = now - BACKDATE, now + lifetime
        if not_after > self.cert.not_valid_after_utc:
            raise PKIError(
                "the certificate would expire after its CA "
                f"({self.cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)",
                hint="ask for an earlier --not-after, or a shorter lifetime with --days or --hours",
            )
        constraints = self.constraints
        if enforce_constraints and constraints is not None:
            outside = constraints.violations(sans, common_name=name)
            if outside:
                raise NameConstraintError(
                    f"{', '.join(outside)} lies outside the CA's permitted names "
                    f"({', '.join(constraints.describe())})",
                )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name, organizational_unit, organization))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number() if serial is None else serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    # RSA server keys may still meet TLS 1.2 clients that wrap the
                    # premaster secret; trustwire's own ciphers never do, but the
                    # bit keeps such certificates usable behind other servers.
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey) and kind.is_server,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(kind.usages), critical=False)
            .add_extension(_ski(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key(),
                ),
                critical=False,
            )
        )
        if not sans.is_empty():
            builder = builder.add_extension(sans.to_extension(), critical=False)
        return builder.sign(self.key, signing_hash(self.key))  # type: ignore[arg-type]

    def sign_csr(
        self, csr: x509.CertificateSigningRequest, *, kind: CertKind,
        lifetime: dt.timedelta = dt.timedelta(days=90), now: dt.datetime | None = None,
    ) -> IssuedCert:
        """Check and sign a CSR; only its public key, CN and SANs are taken from it.

        Raises:
            CSRError: bad signature, missing or repeated CN, unsupported names or key.
            ConfigError / NameConstraintError: as :meth:`sign`.
        """
        name, sans = inspect_csr(csr)
        cert = self.sign(
            csr.public_key(), name=name, kind=kind, sans=sans,  # type: ignore[arg-type]
            lifetime=lifetime, now=now,
        )
        return IssuedCert(cert=cert, private_key=None, chain=self.leaf_chain)


def inspect_csr(csr: x509.CertificateSigningRequest) -> tuple[str, SubjectAltNames]:
    """Validate a CSR and return its CN and SANs.

    Raises:
        CSRError: for a bad signature, an unusable key or unsupported names.
        ConfigError: for names that do not parse.
    """
    if not csr.is_signature_valid:
        raise CSRError(
            "the CSR's signature does not verify: it was altered or not made with its own key",
            hint="create a new request with `trustwire cert request`",
        )
    public_key = csr.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise CSRError(f"the CSR's RSA key has only {public_key.key_size} bits; 2048 is the minimum")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise CSRError(f"the CSR's curve {public_key.curve.name} is not one TLS peers accept")
    elif not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise CSRError("the CSR's key algorithm is not supported")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        raise CSRError("the CSR must carry exactly one common name (CN)")
    name = str(cns[0].value)
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return validate_cert_name(name), SubjectAltNames()
    supported = (x509.DNSName, x509.IPAddress, x509.UniformResourceIdentifier)
    others = [type(n).__name__ for n in ext.value if not isinstance(n, supported)]
    if others:
        raise CSRError(f"the CSR asks for unsupported name types: {', '.join(sorted(set(others)))}")
    return validate_cert_name(name), SubjectAltNames.from_extension(ext.value).validated()
