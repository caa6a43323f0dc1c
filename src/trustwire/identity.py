"""Who is on the other end: the identity in a peer's verified certificate."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

__all__ = ["PeerIdentity"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerIdentity:
    """Facts from the peer's leaf certificate, after OpenSSL verified its chain.

    Only a certificate that passed verification becomes a PeerIdentity, so a
    policy decision on these fields is a decision on a proven identity.
    """

    common_name: str | None
    """The subject's CN; None when it has none, or several (ambiguous: no CN rule matches)."""
    organizational_units: tuple[str, ...]
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    uris: tuple[str, ...]
    serial: int
    fingerprint: str
    """SHA-256 of the DER certificate, lower-case hex without colons."""
    not_before: dt.datetime
    not_after: dt.datetime
    issuer: str
    issuer_canonical: str = ""
    """``issuer`` as OpenSSL compares names (``canonical_name`` of the parsed name;
    empty for a hand-made identity, whose ``issuer`` text is parsed instead)."""
    issuer_key_id: str = ""
    """The key identifier of the CA that signed it (its authority key identifier, hex;
    empty when it has none): with ``issuer``, which CA this is, as OpenSSL tells apart
    two CAs of the same name."""

    @classmethod
    def from_der(cls, der: bytes) -> PeerIdentity:
        """Parse a DER certificate; results are cached, since one client reconnects often."""
        return _parse(der)

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")

    def as_json(self) -> dict[str, object]:
        return {
            "cn": self.common_name,
            "ou": list(self.organizational_units),
            "dns": list(self.dns),
            "ip": list(self.ips),
            "uri": list(self.uris),
            "serial": self.serial_hex,
            "fingerprint_sha256": self.fingerprint,
            "not_after": self.not_after.isoformat(),
        }

    def __str__(self) -> str:
        if self.common_name:
            return f"CN={self.common_name}"
        names = self.uris or self.dns or self.ips
        return names[0] if names else f"serial {self.serial_hex}"


@functools.lru_cache(maxsize=4096)
def _parse(der: bytes) -> PeerIdentity:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        dns, ips, uris = (), (), ()
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        issuer_key_id = aki.key_identifier.hex() if aki.key_identifier else ""
    except (x509.ExtensionNotFound, ValueError):
        issuer_key_id = ""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return PeerIdentity(
        # Several CNs are ambiguous (Go takes the last, we would take the first): such a
        # subject has no CN here, so no CN rule can match it.
        common_name=str(cns[0].value) if len(cns) == 1 else None,
        organizational_units=tuple(str(o.value) for o in ous),
        dns=dns, ips=ips, uris=uris,
        serial=cert.serial_number,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        issuer=cert.issuer.rfc4514_string(),
        issuer_key_id=issuer_key_id,
        issuer_canonical=canonical_name(cert.issuer),
    )


_CANON_TYPES = frozenset({"UTF8String", "BMPString", "UniversalString", "PrintableString",
                          "T61String", "IA5String", "VisibleString"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_SPACES = re.compile("[ \t\n\v\f\r]+")


def fold_text(value: str) -> str:
    """ASCII case and runs of ASCII white space do not count, nor white space at either
    end: OpenSSL's folding of a name's text values (it folds ASCII only)."""
    return _ASCII_SPACES.sub(" ", value).strip(" ").translate(_ASCII_LOWER)


def canonical_name(name: x509.Name) -> str:
    """A distinguished name as OpenSSL compares it when it matches a CRL or a CA to a
    certificate (its canonical encoding, RFC 5280 7.1): RDN by RDN, the attributes of a
    multi-valued RDN in any order, text values folded by :func:`fold_text`. Values that
    are not text (a BIT STRING) compare as bytes."""
    def attribute(a: x509.NameAttribute[str | bytes]) -> str:
        # OpenSSL folds only its text string types (asn1_string_canon's
        # ASN1_MASK_CANON); others (NumericString, BIT STRING, ...) compare as they are,
        # type included. cryptography keeps the type in a private field only.
        kind = getattr(getattr(a, "_type", None), "name", "")
        value = a.value if isinstance(a.value, str) else a.value.hex()
        if kind and kind not in _CANON_TYPES:
            return f"{a.oid.dotted_string}={kind}:{json.dumps(value)}"
        if kind == "T61String":  # cryptography keeps it as UTF-8, OpenSSL reads Latin-1
            value = value.encode().decode("latin-1")
        if isinstance(a.value, str):
            value = fold_text(value)
        return f"{a.oid.dotted_string}={json.dumps(value)}"

    return ",".join("+".join(sorted(attribute(a) for a in rdn)) for rdn in name.rdns)
