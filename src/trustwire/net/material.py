"""What a listener accepts with: its SSLContext and the trust state it admits by.

A :class:`Material` is built (and validated) by :mod:`trustwire.ops.reload`
from files, or by :func:`from_context` from a ready-made SSLContext, and
swapped whole by :meth:`trustwire.net.listener.Listener.apply`.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from trustwire.authz.admission import TrustState
from trustwire.authz.policy import Policy

__all__ = ["CertificateFacts", "CrlFacts", "Material", "certificate_facts", "from_context"]


@dataclass(frozen=True, kw_only=True)
class CrlFacts:
    """A CRL in force (there is one per CA of a bundle)."""

    issuer: str
    """The CA that issued it (RFC 4514)."""
    key: str
    """That CA as ``trustwire.authz.admission.issuer_key`` (name and key identifier): the
    key of the trust state's tables."""
    number: int | None
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: int
    """How many certificates it lists."""
    fingerprint: str
    """SHA-256 of its DER encoding (a rollback check compares numbers, then contents)."""


@dataclass(frozen=True, kw_only=True)
class CertificateFacts:
    """The listener's own certificate, for /status and metrics."""

    subject: str
    serial: str
    not_after: dt.datetime

    def days_left(self, now: dt.datetime | None = None) -> float:
        left = self.not_after - (now or dt.datetime.now(dt.UTC))
        return round(left.total_seconds() / 86400, 3)


@dataclass(frozen=True, kw_only=True)
class Material:
    """Everything new connections are accepted with, and judged by."""

    context: ssl.SSLContext
    trust: TrustState
    epoch: bytes | None = None
    """Digest of the CA bundle and CRL this material trusts, from which session-ticket
    keys are derived (so they change exactly when those do). None: leave the context's
    own ticket keys alone (a ready-made SSLContext)."""
    certificate: CertificateFacts | None = None
    crls: tuple[CrlFacts, ...] = ()
    """The CRLs in force, one per CA."""
    crl_floors: Mapping[str, CrlFacts] = field(default_factory=dict)
    """The newest CRL seen from each CA (by its ``key``) since the listener started, also
    for CAs whose CRL left the file: no later CRL from that CA may be older."""
    files: tuple[Path, ...] = ()
    """The files behind this material, watched for changes."""
    notices: tuple[str, ...] = ()
    """What the operator should know about this material (a CRL that is not used)."""
    loaded_at: float = field(default_factory=time.time)


    @property
    def crl(self) -> CrlFacts | None:
        """The CRL that expires first (the one to refresh next), if any."""
        return min(self.crls, key=lambda c: c.next_update or dt.datetime.max.replace(
            tzinfo=dt.UTC), default=None)


def certificate_facts(cert: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(subject=cert.subject.rfc4514_string(),
                            serial=format(cert.serial_number, "x"),
                            not_after=cert.not_valid_after_utc)


def from_context(context: ssl.SSLContext, policy: Policy | None = None) -> Material:
    """Material for a ready-made SSLContext: the policy is known, the CA and CRL are
    OpenSSL's business alone (they cannot be read back out of a context)."""
    return Material(context=context, trust=TrustState(
        policy=policy or Policy(), peer_required=context.verify_mode == ssl.CERT_REQUIRED))
