"""Why a certificate would fail strict verification, in plain words. Pure.

Checks come from three sources, named in each finding:

* OpenSSL's ``X509_V_FLAG_X509_STRICT`` (Python's ``ssl.VERIFY_X509_STRICT``,
  on by default for new contexts from Python 3.13): critical basicConstraints
  and keyUsage on CAs, AKI on every non-self-signed certificate, SKI on CAs,
  non-critical AKI/SKI, SAN critical when the subject is empty, version 3.
* RFC 5280 and the TLS requirements of modern verifiers (cryptography's
  verifier, Go, browsers): EKU for the use, digitalSignature, SANs instead of
  CN, IP addresses as IP SANs, positive serials of at most 20 octets.
* Mozilla's root store policy: leaf lifetime at most 398 days, no SHA-1, no
  RSA under 2048 bits, only P-256/P-384/P-521 curves.

A finding with severity ``error`` means a strict verifier refuses the
certificate; ``warning`` means it is accepted but against best practice.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from trustwire.errors import ConfigError
from trustwire.pki.names import parse_dns_name, parse_uri

__all__ = ["Finding", "Purpose", "Severity", "lint_certificate"]

MAX_TLS_LEAF_LIFETIME = dt.timedelta(days=398)
_GOOD_CURVES = {"secp256r1", "secp384r1", "secp521r1"}


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


class Purpose(enum.Enum):
    """What the certificate is meant to do; ``AUTO`` reads it from the EKU."""

    AUTO = "auto"
    SERVER = "server"
    CLIENT = "client"
    CA = "ca"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One defect: a stable code, how bad it is, what it means, and where the rule comes from."""

    code: str
    severity: Severity
    message: str
    reference: str

    def as_json(self) -> dict[str, str]:
        return {
            "code": self.code, "severity": self.severity.value, "message": self.message,
            "reference": self.reference,
        }


_STRICT = "OpenSSL X509_V_FLAG_X509_STRICT (Python ssl.VERIFY_X509_STRICT)"
_MOZILLA = "Mozilla Root Store Policy / CA/B Forum Baseline Requirements"


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:
        return False
    return True


class _Linter:
    def __init__(self, cert: x509.Certificate, purpose: Purpose, now: dt.datetime) -> None:
        self.cert = cert
        self.now = now
        self.findings: list[Finding] = []
        try:
            self.extensions = cert.extensions
        except (x509.DuplicateExtension, ValueError) as exc:
            # Nothing past this point can be trusted; report it and lint what remains.
            self.extensions = x509.Extensions([])
            self.add("extensions-unparsable", Severity.ERROR,
                     f"its extensions cannot be parsed ({exc}); verifiers reject it",
                     "RFC 5280 4.2")
        bc = self._ext(ExtensionOID.BASIC_CONSTRAINTS)
        self.bc = bc
        self.is_ca = bool(bc and isinstance(bc.value, x509.BasicConstraints) and bc.value.ca)
        self.eku = self._ext(ExtensionOID.EXTENDED_KEY_USAGE)
        self.ku = self._ext(ExtensionOID.KEY_USAGE)
        self.san = self._ext(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        if purpose is Purpose.AUTO:
            purpose = self._purpose_from_eku()
        self.purpose = purpose

    def _ext(self, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType] | None:
        try:
            return self.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            return None

    def _purpose_from_eku(self) -> Purpose:
        if self.is_ca:
            return Purpose.CA
        if self.eku is not None and isinstance(self.eku.value, x509.ExtendedKeyUsage):
            if ExtendedKeyUsageOID.SERVER_AUTH in self.eku.value:
                return Purpose.SERVER
            if ExtendedKeyUsageOID.CLIENT_AUTH in self.eku.value:
                return Purpose.CLIENT
        return Purpose.AUTO

    def add(self, code: str, severity: Severity, message: str, reference: str) -> None:
        self.findings.append(
            Finding(code=code, severity=severity, message=message, reference=reference),
        )

    def run(self) -> list[Finding]:
        self.check_version_and_serial()
        self.check_validity()
        self.check_key_and_signature()
        self.check_identifiers()
        self.check_critical_extensions()
        if self.is_ca:
            self.check_ca()
        else:
            self.check_leaf()
        return self.findings

    def check_version_and_serial(self) -> None:
        if self.cert.version is not x509.Version.v3:
            self.add("version-not-3", Severity.ERROR,
                     "this is a version 1 certificate; extensions such as SANs and key usages "
                     "need version 3, so strict verifiers reject it", "RFC 5280 4.1.2.1")
        serial = self.cert.serial_number
        if serial <= 0:
            self.add("serial-not-positive", Severity.ERROR,
                     "the serial number is zero or negative; it must be a positive integer",
                     "RFC 5280 4.1.2.2")
        elif (serial.bit_length() + 8) // 8 > 20:
            self.add("serial-too-long", Severity.ERROR,
                     "the serial number is longer than 20 octets", "RFC 5280 4.1.2.2")
        elif serial.bit_length() < 64:
            self.add("serial-low-entropy", Severity.WARNING,
                     f"the serial number has only {serial.bit_length()} bits; at least 64 random "
                     "bits make serials unpredictable", _MOZILLA)

    def check_validity(self) -> None:
        nb, na = self.cert.not_valid_before_utc, self.cert.not_valid_after_utc
        if nb > na:
            self.add("validity-inverted", Severity.ERROR,
                     "notBefore is after notAfter, so the certificate is never valid",
                     "RFC 5280 4.1.2.5")
            return
        if self.now > na:
            days = (self.now - na).days
            self.add("expired", Severity.ERROR,
                     f"it expired on {na:%Y-%m-%d %H:%M} UTC ({days} days ago)", "RFC 5280 6.1.3")
        elif self.now < nb:
            self.add("not-yet-valid", Severity.ERROR,
                     f"it is not valid until {nb:%Y-%m-%d %H:%M} UTC; a clock is wrong, or it "
                     "was issued for the future", "RFC 5280 6.1.3")
        if not self.is_ca and na - nb > MAX_TLS_LEAF_LIFETIME:
            severity = Severity.ERROR if self.purpose is Purpose.SERVER else Severity.WARNING
            self.add("lifetime-too-long", severity,
                     f"it is valid for {(na - nb).days} days; TLS leaf certificates may live "
                     "at most 398 days", _MOZILLA)

    def check_key_and_signature(self) -> None:
        key = self.cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
            self.add("weak-key", Severity.ERROR,
                     f"its RSA key has only {key.key_size} bits; 2048 is the minimum "
                     "(OpenSSL security level 2)", _MOZILLA)
        elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _GOOD_CURVES:
            self.add("weak-key", Severity.ERROR,
                     f"its key is on curve {key.curve.name}; TLS peers accept only P-256, "
                     "P-384 and P-521", _MOZILLA)
        elif isinstance(key, dsa.DSAPublicKey):
            self.add("weak-key", Severity.ERROR, "it has a DSA key, which TLS no longer accepts",
                     _MOZILLA)
        algo = self.cert.signature_hash_algorithm
        if isinstance(algo, (hashes.SHA1, hashes.MD5)):
            self.add("weak-signature", Severity.ERROR,
                     f"it is signed with {algo.name.upper()}, which OpenSSL rejects at its "
                     "default security level", _MOZILLA)

    def check_identifiers(self) -> None:
        aki = self._ext(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        ski = self._ext(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
        if aki is None and not _self_signed(self.cert):
            self.add("aki-missing", Severity.ERROR,
                     "it has no authorityKeyIdentifier, which strict verification requires on "
                     "every certificate not signed by itself", _STRICT)
        if aki is not None and aki.critical:
            self.add("aki-critical", Severity.ERROR,
                     "its authorityKeyIdentifier is marked critical; it must not be", _STRICT)
        if ski is None:
            self.add("ski-missing",
                     Severity.ERROR if self.is_ca else Severity.WARNING,
                     "it has no subjectKeyIdentifier"
                     + (", which strict verification requires on CA certificates"
                        if self.is_ca else "; RFC 5280 recommends one on every certificate"),
                     _STRICT if self.is_ca else "RFC 5280 4.2.1.2")
        elif ski.critical:
            self.add("ski-critical", Severity.ERROR,
                     "its subjectKeyIdentifier is marked critical; it must not be", _STRICT)
        if len(self.cert.subject) == 0:
            if self.san is None:
                self.add("no-identity", Severity.ERROR,
                         "it has neither a subject nor a subjectAltName, so it names nobody",
                         "RFC 5280 4.1.2.6")
            elif not self.san.critical:
                self.add("san-not-critical", Severity.ERROR,
                         "its subject is empty, so its subjectAltName must be critical", _STRICT)

    def check_critical_extensions(self) -> None:
        for ext in self.extensions:
            if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
                self.add("unknown-critical-extension", Severity.ERROR,
                         f"it has a critical extension {ext.oid.dotted_string} that verifiers "
                         "do not understand, so they must reject it", "RFC 5280 4.2")

    def check_ca(self) -> None:
        assert self.bc is not None  # noqa: S101 - is_ca implies the extension exists
        if not self.bc.critical:
            self.add("basic-constraints-not-critical", Severity.ERROR,
                     "it is a CA but its basicConstraints extension is not marked critical",
                     _STRICT)
        if self.ku is None:
            self.add("ca-key-usage-missing", Severity.ERROR,
                     "it is a CA but has no keyUsage extension; keyCertSign must be set",
                     _STRICT)
            return
        usage = self.ku.value
        assert isinstance(usage, x509.KeyUsage)  # noqa: S101
        if not usage.key_cert_sign:
            self.add("ca-key-usage-no-cert-sign", Severity.ERROR,
                     "it is a CA but its keyUsage lacks keyCertSign, so it may not sign "
                     "certificates", "RFC 5280 4.2.1.3")
        if not self.ku.critical:
            self.add("key-usage-not-critical", Severity.WARNING,
                     "its keyUsage is not marked critical", "RFC 5280 4.2.1.3")
        assert isinstance(self.bc.value, x509.BasicConstraints)  # noqa: S101
        if self.bc.value.path_length is not None and not usage.key_cert_sign:
            self.add("path-length-without-cert-sign", Severity.ERROR,
                     "it sets a path length but may not sign certificates", _STRICT)

    def check_leaf(self) -> None:
        if self.ku is not None:
            usage = self.ku.value
            assert isinstance(usage, x509.KeyUsage)  # noqa: S101
            if usage.key_cert_sign:
                self.add("leaf-key-cert-sign", Severity.ERROR,
                         "it may sign certificates (keyCertSign) but is not a CA",
                         "RFC 5280 4.2.1.3")
            if not usage.digital_signature and self.purpose in (Purpose.SERVER, Purpose.CLIENT):
                self.add("no-digital-signature", Severity.ERROR,
                         "its keyUsage lacks digitalSignature, which every TLS handshake with "
                         "ECDHE needs", "RFC 5246 7.4.2 / RFC 8446 4.4.2.2")
        elif self.purpose in (Purpose.SERVER, Purpose.CLIENT):
            self.add("key-usage-missing", Severity.WARNING,
                     "it has no keyUsage extension; strict verifiers expect digitalSignature",
                     _MOZILLA)
        self.check_eku()
        self.check_sans()

    def check_eku(self) -> None:
        wanted = {
            Purpose.SERVER: (ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth", "a TLS server"),
            Purpose.CLIENT: (ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth", "a TLS client"),
        }.get(self.purpose)
        if self.eku is None:
            self.add("eku-missing", Severity.ERROR if wanted else Severity.WARNING,
                     "it has no extendedKeyUsage; modern verifiers (cryptography, Go, browsers) "
                     "require serverAuth or clientAuth on TLS certificates", "RFC 5280 4.2.1.12")
            return
        usages = self.eku.value
        assert isinstance(usages, x509.ExtendedKeyUsage)  # noqa: S101
        if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
            self.add("eku-any", Severity.WARNING,
                     "it allows anyExtendedKeyUsage, so it can be misused for any purpose",
                     _MOZILLA)
        if wanted and wanted[0] not in usages:
            self.add("eku-wrong", Severity.ERROR,
                     f"it is used as {wanted[2]} but its extendedKeyUsage lacks {wanted[1]}",
                     "RFC 5280 4.2.1.12")

    def check_sans(self) -> None:
        server = self.purpose is Purpose.SERVER
        if self.san is None:
            if self.purpose is Purpose.CLIENT:
                return  # a client is identified by its subject; nobody matches a hostname
            self.add("san-missing", Severity.ERROR if server else Severity.WARNING,
                     "it has no subjectAltName; TLS clients ignore the common name, so no "
                     "hostname or IP will match it", "RFC 6125 6.4.4 / RFC 2818 3.1")
            return
        names = self.san.value
        assert isinstance(names, x509.SubjectAlternativeName)  # noqa: S101
        if len(names) == 0:
            self.add("san-empty", Severity.ERROR, "its subjectAltName holds no names",
                     "RFC 5280 4.2.1.6")
        for dns in names.get_values_for_type(x509.DNSName):
            try:
                ipaddress.ip_address(dns)
            except ValueError:
                pass
            else:
                self.add("ip-in-dns-san", Severity.ERROR,
                         f"{dns} is an IP address written as a DNS name; clients compare IPs "
                         "only with IP SANs, so it will never match", "RFC 6125 6.2.1 / RFC 2818")
                continue
            try:
                parse_dns_name(dns)
            except ConfigError as exc:
                self.add("invalid-dns-san", Severity.ERROR,
                         f"DNS SAN {dns!r} is malformed ({exc.message.split(': ', 1)[-1]})",
                         "RFC 5280 4.2.1.6 / RFC 1034")
        for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
            try:
                parse_uri(uri)
            except ConfigError as exc:
                self.add("invalid-uri-san", Severity.WARNING,
                         f"URI SAN is malformed: {exc.message}", "RFC 5280 4.2.1.6 / SPIFFE")


def lint_certificate(
    cert: x509.Certificate, *, purpose: Purpose = Purpose.AUTO, now: dt.datetime | None = None,
) -> list[Finding]:
    """Every reason a strict verifier would refuse ``cert`` (errors) or frown on it (warnings).

    Args:
        cert: any certificate, from any CA.
        purpose: the intended use; ``AUTO`` reads it from the certificate.
        now: the time to check validity against (default: now).

    Returns:
        Findings, errors first; an empty list means the certificate is clean.

    >>> from trustwire.pki.ca import create_root, CertKind
    >>> import datetime as dt
    >>> ca = create_root(name="doc CA", lifetime=dt.timedelta(days=3650))
    >>> leaf = ca.issue("web.example", kind=CertKind.SERVER)
    >>> lint_certificate(leaf.cert)
    []
    """
    now = now or dt.datetime.now(dt.UTC)
    findings = _Linter(cert, purpose, now).run()
    return sorted(findings, key=lambda f: f.severity is not Severity.ERROR)
