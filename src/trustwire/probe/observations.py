"""The facts the probe collects about one endpoint: plain data, no IO, no judgement.

:mod:`trustwire.probe.collect` fills an :class:`Observations`;
:mod:`trustwire.probe.checks` turns it into verdicts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from trustwire.probe.exploits import ExploitFacts
from trustwire.probe.legacy import LegacyFacts
from trustwire.probe.sessions import SessionFacts
from trustwire.probe.target import ProbeTarget

__all__ = ["VALID_FROM_YOUR_CA", "EnforcementCase", "Observations", "Support"]

VALID_FROM_YOUR_CA = "a valid certificate from your CA"
"""The one enforcement case the server should accept: the control for the others."""


@dataclass
class Support:
    accepted: bool | None
    """None: could not be tested."""
    note: str | None = None


@dataclass
class EnforcementCase:
    case: str
    refused: bool | None
    detail: str


@dataclass
class Observations:
    """Everything collected about one endpoint."""

    target: ProbeTarget
    started: dt.datetime
    duration: float = 0.0
    versions: dict[str, Support] = field(default_factory=dict)
    ciphers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    untested_suites: dict[str, str] = field(default_factory=dict)
    """Version -> why some of its suites are unknown (their hellos got no answer)."""
    server_order: bool | None = None
    server_cipher_order: list[str] = field(default_factory=list)
    """TLS 1.2 suites in the server's order of preference (when it enforces one)."""
    groups: dict[str, Support] = field(default_factory=dict)
    dh_param_size: int | None = None
    """Bits of the smallest DH prime the server used (DHE suites or ffdhe groups)."""
    ecdh_param_size: int | None = None
    """Bits of the smallest elliptic-curve group it accepted."""
    chain: list[x509.Certificate] = field(default_factory=list)
    chain_untested: str | None = None
    """Why no chain was read (the handshakes that ask for it got no answer); None: they
    were answered, so an empty ``chain`` means the server sent none."""
    trusted: bool | None = None
    trust_error: str | None = None
    """Why the chain did not verify, or (``trusted`` None) why it was not verified."""
    trust_code: int | None = None
    """OpenSSL's X509_V_ERR code for ``trust_error``."""
    trust_store: str | None = None
    """What the chain was verified against: the --ca file, or the system store's path."""
    ocsp_stapled: bool | None = None
    client_auth_requested: bool | None = None
    client_auth_required: bool | None = None
    our_certificate_accepted: bool | None = None
    enforcement: list[EnforcementCase] = field(default_factory=list)
    http_status: int | None = None
    http_headers: dict[str, str] = field(default_factory=dict)
    http_verified: bool | None = None
    http_error: str | None = None
    redirect: tuple[int | None, str | None] | None = None
    untested: list[tuple[str, str]] = field(default_factory=list)
    stalled: bool = False
    """The server stopped answering partway through: what came after was not tested."""
    legacy: LegacyFacts | None = None
    """What hand-built hellos found (SSL 2.0/3.0, suites OpenSSL lacks, SCSV, EMS...)."""
    exploits: ExploitFacts | None = None
    """Heartbleed, CCS injection, ROBOT (:mod:`trustwire.probe.exploits`); None: not collected."""
    sessions: SessionFacts | None = None
    """Renegotiation, resumption, 0-RTT, no-SNI, SCTs, must-staple (None: not collected)."""
