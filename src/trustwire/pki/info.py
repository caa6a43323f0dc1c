"""A readable description of any certificate (for ``cert show``, ``ca show`` and the probe)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustwire.errors import PKIError
from trustwire.pki.ca import fingerprint
from trustwire.pki.keys import describe_public_key
from trustwire.pki.names import SubjectAltNames

__all__ = ["CertInfo", "describe_certificate", "load_certificates", "parse_serial", "pin_form"]

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


def load_certificates(data: bytes, *, source: str) -> list[x509.Certificate]:
    """Every certificate in PEM (or a single DER) data.

    Raises:
        PKIError: when there is none, naming ``source``.
    """
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise PKIError(
            f"{source} is not a valid PEM or DER certificate",
            hint="restore it from a backup or check that you passed the right file",
        ) from None
    return certs


def parse_serial(text: str) -> int | None:
    """A serial number as printed by trustwire or OpenSSL (hex, optional 0x/colons)."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    if not cleaned or any(c not in "0123456789abcdef" for c in cleaned):
        return None
    return int(cleaned, 16)


def pin_form(fingerprint_hex: str) -> str:
    """A SHA-256 fingerprint as ``--allow-fingerprint`` and policy files take it:
    ``sha256:`` and 64 upper-case hex digits (``sha256:9F86D0...``).

    >>> pin_form("ab" * 32) == "sha256:" + "AB" * 32
    True
    """
    return "sha256:" + fingerprint_hex.replace(":", "").upper()


@dataclass(frozen=True, kw_only=True)
class CertInfo:
    """The facts of a certificate a person wants to see."""

    subject: str
    issuer: str
    common_name: str | None
    organizational_units: tuple[str, ...]
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str
    key: str
    signature_algorithm: str
    sans: SubjectAltNames
    extended_key_usage: tuple[str, ...]
    is_ca: bool
    self_signed: bool

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def as_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "common_name": self.common_name,
            "organizational_units": list(self.organizational_units),
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint_sha256": self.fingerprint_sha256,
            "fingerprint": pin_form(self.fingerprint_sha256),
            "key": self.key,
            "signature_algorithm": self.signature_algorithm,
            "sans": self.sans.as_dict(),
            "extended_key_usage": list(self.extended_key_usage),
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
        }


def describe_certificate(cert: x509.Certificate) -> CertInfo:
    """Collect :class:`CertInfo`; tolerant of odd certificates (missing extensions)."""
    try:
        extensions = cert.extensions
    except (x509.DuplicateExtension, ValueError):
        extensions = x509.Extensions([])

    def get(cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
        try:
            return extensions.get_extension_for_class(cls).value
        except x509.ExtensionNotFound:
            return None

    san = get(x509.SubjectAlternativeName)
    eku = get(x509.ExtendedKeyUsage)
    bc = get(x509.BasicConstraints)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    try:
        signature = cert.signature_algorithm_oid._name
    except AttributeError:  # pragma: no cover - very old cryptography
        signature = cert.signature_algorithm_oid.dotted_string
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=str(cns[0].value) if cns else None,
        organizational_units=tuple(str(o.value) for o in ous),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint_sha256=fingerprint(cert),
        key=describe_public_key(cert.public_key()),
        signature_algorithm=signature,
        sans=SubjectAltNames.from_extension(san) if isinstance(san, x509.SubjectAlternativeName)
        else SubjectAltNames(),
        extended_key_usage=tuple(
            _EKU_NAMES.get(oid, oid.dotted_string) for oid in eku
        ) if isinstance(eku, x509.ExtendedKeyUsage) else (),
        is_ca=bool(isinstance(bc, x509.BasicConstraints) and bc.ca),
        self_signed=cert.issuer == cert.subject,
    )
