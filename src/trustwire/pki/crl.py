"""Certificate revocation lists (RFC 5280 section 5), pure.

The CRL is signed by the CA that issued the leaves (the intermediate when
there is one), carries the RFC 5280-required CRL number and AKI, and a
nextUpdate: a peer holding an expired CRL fails closed, so the CRL must be
regenerated (``trustwire ca crl``) before then. Every revocation regenerates it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from trustwire.errors import ConfigError
from trustwire.pki.ca import Authority, utcnow
from trustwire.pki.keys import signing_hash

__all__ = ["CRL_LIFETIME", "RevocationReason", "RevokedEntry", "build_crl", "crl_number"]

CRL_LIFETIME = dt.timedelta(days=7)
"""Distance to nextUpdate: a week bounds how long a stale CRL hides a revocation."""


class RevocationReason(enum.Enum):
    """RFC 5280 CRLReason codes (removeFromCRL is for delta CRLs and not offered)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key-compromise"
    CA_COMPROMISE = "ca-compromise"
    AFFILIATION_CHANGED = "affiliation-changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation-of-operation"
    CERTIFICATE_HOLD = "certificate-hold"
    PRIVILEGE_WITHDRAWN = "privilege-withdrawn"
    AA_COMPROMISE = "aa-compromise"

    @classmethod
    def parse(cls, value: str) -> RevocationReason:
        """Accept ``key-compromise``, ``keyCompromise`` or ``key_compromise``.

        Raises:
            ConfigError: for an unknown reason, listing the valid ones.
        """
        wanted = value.replace("_", "").replace("-", "").lower()
        for reason in cls:
            if reason.value.replace("-", "") == wanted:
                return reason
        choices = ", ".join(r.value for r in cls)
        raise ConfigError(f"unknown revocation reason {value!r}: choose one of {choices}")

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[self.name.lower()]


@dataclass(frozen=True, kw_only=True)
class RevokedEntry:
    """One revoked serial number."""

    serial: int
    revoked_at: dt.datetime
    reason: RevocationReason = RevocationReason.UNSPECIFIED


def build_crl(
    authority: Authority, entries: Iterable[RevokedEntry], *, number: int,
    now: dt.datetime | None = None, lifetime: dt.timedelta = CRL_LIFETIME,
) -> x509.CertificateRevocationList:
    """Build and sign a CRL listing ``entries``.

    Args:
        authority: the CA that issued the revoked certificates.
        entries: what to list.
        number: the monotonically increasing CRL number.
        now: thisUpdate (tests pass a fixed clock).
        lifetime: distance from thisUpdate to nextUpdate.
    """
    now = now or utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.cert.subject)
        .last_update(now)
        .next_update(now + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                authority.key.public_key(),
            ),
            critical=False,
        )
    )
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
        )
        # RFC 5280 5.3.1: the reason code "unspecified" SHOULD be absent.
        if entry.reason is not RevocationReason.UNSPECIFIED:
            revoked = revoked.add_extension(x509.CRLReason(entry.reason.flag), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(authority.key, signing_hash(authority.key))  # type: ignore[arg-type]


def crl_number(crl: x509.CertificateRevocationList) -> int | None:
    """The CRL's number extension, or None for CRLs without one."""
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None
