"""Session and certificate-delivery facts, and their judgement. Pure.

:mod:`trustwire.probe.sessions_scan` collects a :class:`SessionFacts`; :func:`judge_sessions`
turns it into checks:

- ``session.renegotiation``: a server that lets the client renegotiate (TLS <= 1.2) does a
  full handshake's work each time a client asks, over one connection: a cheap
  denial-of-service lever (CVE-2011-1473). Refused (no_renegotiation alert, or a close) is a
  PASS; accepted is a WARN, and a FAIL under a profile that does not allow TLS 1.2 at all
  (Mozilla "modern"), where nothing should renegotiate.
- ``session.resumption.*``: whether sessions resume by session ID (TLS 1.2, tickets off), by
  ticket (TLS 1.2) and by ticket/PSK (TLS 1.3): facts (INFO). ``session.ticket_lifetime``:
  RFC 8446 4.6.1 forbids a TLS 1.3 ticket lifetime over 7 days (FAIL); a TLS 1.2 hint over
  7 days is a WARN (a stolen ticket key decrypts every session it covers; Mozilla suggests a
  day).
- ``session.early_data``: a server that accepts TLS 1.3 0-RTT data takes requests an attacker
  can replay (RFC 8446 8, E.5): a WARN, with the fix.
- ``cert.must_staple``: a certificate with the TLS Feature status_request (OCSP must-staple,
  RFC 7633) served without a stapled response is refused by clients that honour it: FAIL.
- ``cert.no_sni`` and ``cert.sct``: which certificate a client without SNI gets, and the
  Certificate Transparency SCTs by source (embedded, TLS extension, stapled OCSP): facts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509

from trustwire.pki.extensions import UNPARSABLE, unparsable
from trustwire.pki.info import describe_certificate
from trustwire.probe.findings import Check, Findings, Status
from trustwire.probe.profiles import Profile
from trustwire.probe.session_wire import Sct, SessionTicket

if TYPE_CHECKING:  # observations.py holds a SessionFacts: import it only for the checker
    from trustwire.probe.observations import Observations

__all__ = ["ONE_WEEK", "EarlyDataFacts", "NoSniFacts", "Renegotiation", "Resumption",
           "SctFacts", "SessionFacts", "judge_sessions"]

ONE_WEEK = 604800
"""Seconds: RFC 8446 4.6.1's limit on a TLS 1.3 ticket_lifetime."""

SESSION_ID, TICKET_TLS12, TICKET_TLS13 = "session-id", "ticket-tls1.2", "ticket-tls1.3"
_METHOD_LABEL = {SESSION_ID: "by session ID (TLS 1.2)", TICKET_TLS12: "by ticket (TLS 1.2)",
                 TICKET_TLS13: "by ticket (TLS 1.3)"}


@dataclass
class Renegotiation:
    """A client-initiated renegotiation on a completed TLS 1.2 handshake."""

    accepted: bool | None
    """None: not tested (``note`` says why)."""
    note: str
    applicable: bool = True
    """False when the server does not accept TLS 1.2."""


@dataclass
class Resumption:
    """Two handshakes, the second offering the first one's session."""

    method: str
    """``session-id``, ``ticket-tls1.2`` or ``ticket-tls1.3``."""
    resumed: bool | None
    """None: not tested (``note`` says why)."""
    tickets: list[SessionTicket] = field(default_factory=list)
    """The NewSessionTickets of the first handshake."""
    note: str | None = None
    applicable: bool = True
    """False when the server does not accept the method's TLS version."""


@dataclass
class EarlyDataFacts:
    """TLS 1.3 0-RTT."""

    offered: int | None
    """max_early_data_size of a TLS 1.3 ticket; None: no ticket offers early data."""
    accepted: bool | None
    """What the server did with early data on a resumed connection; None: not sent."""
    note: str
    tested: bool = True
    """False when no TLS 1.3 session could be had (``note`` says why)."""


@dataclass
class NoSniFacts:
    """One handshake without the server_name extension."""

    applicable: bool
    """False when the target is an IP address: every handshake goes without SNI then."""
    refused: bool | None = None
    leaf: x509.Certificate | None = None
    valid_for_name: bool | None = None
    """The no-SNI certificate is valid for the probed name."""
    same_as_sni: bool | None = None
    """It is the certificate sent with SNI."""
    note: str | None = None


@dataclass
class SctFacts:
    """Certificate Transparency SCTs by source; None: that source could not be read."""

    embedded: list[Sct] | None
    tls_extension: list[Sct] | None
    ocsp: list[Sct] | None
    note: str | None = None


@dataclass
class SessionFacts:
    renegotiation: Renegotiation
    resumption: list[Resumption]
    early_data: EarlyDataFacts
    no_sni: NoSniFacts
    scts: SctFacts
    must_staple: bool | None
    """The leaf carries OCSP must-staple; None: no certificate, or its extensions cannot be
    parsed."""

    def as_json(self) -> dict[str, Any]:
        sni = self.no_sni
        leaf = describe_certificate(sni.leaf) if sni.leaf is not None else None
        return {
            "renegotiation": {"applicable": self.renegotiation.applicable,
                              "client_initiated_accepted": self.renegotiation.accepted,
                              "note": self.renegotiation.note},
            "resumption": [{"method": r.method, "applicable": r.applicable,
                            "resumed": r.resumed, "note": r.note,
                            "tickets": [{"lifetime_s": t.lifetime,
                                         "max_early_data": t.max_early_data}
                                        for t in r.tickets]} for r in self.resumption],
            "early_data": {"tested": self.early_data.tested,
                           "max_early_data": self.early_data.offered,
                           "accepted": self.early_data.accepted, "note": self.early_data.note},
            "no_sni": {"applicable": sni.applicable, "refused": sni.refused,
                       "subject": leaf.subject if leaf else None,
                       "sans": leaf.sans.describe() if leaf else None,
                       "fingerprint_sha256": leaf.fingerprint_sha256 if leaf else None,
                       "valid_for_name": sni.valid_for_name, "same_as_sni": sni.same_as_sni,
                       "note": sni.note},
            "scts": {source: None if scts is None else [s.as_json() for s in scts]
                     for source, scts in (("embedded", self.scts.embedded),
                                          ("tls_extension", self.scts.tls_extension),
                                          ("ocsp", self.scts.ocsp))},
            "must_staple": self.must_staple,
        }


def judge_sessions(obs: Observations, profile: Profile) -> list[Check]:
    """The checks of this family, in report order; none when nothing was collected."""
    facts = obs.sessions
    if facts is None:
        return []
    sessions, cert = Findings("Sessions"), Findings("Certificate")
    _renegotiation(sessions, facts.renegotiation, profile)
    _resumption(sessions, facts.resumption)
    _early_data(sessions, facts.early_data)
    _must_staple(cert, facts.must_staple, obs.ocsp_stapled,
                 bool(obs.chain) and unparsable(obs.chain[0]) is not None)
    _no_sni(cert, facts.no_sni, obs.target.server_name)
    _scts(cert, facts.scts)
    return sessions.checks + cert.checks


def _renegotiation(out: Findings, facts: Renegotiation, profile: Profile) -> None:
    key, title = "session.renegotiation", "Client-initiated renegotiation"
    if not facts.applicable:
        out.add(key, title, Status.INFO, facts.note)
    elif facts.accepted is None:
        out.add(key, title, Status.SKIP, f"not tested: {facts.note}")
    elif facts.accepted:
        status = Status.WARN if "TLSv1.2" in profile.tls_versions else Status.FAIL
        out.add(key, title, status, "the server renegotiates whenever a client asks (a "
                f"denial-of-service lever): {facts.note}",
                fix="refuse client-initiated renegotiation (OpenSSL 3 does unless "
                    "SSL_OP_ALLOW_CLIENT_RENEGOTIATION is set; nginx always refuses)")
    else:
        out.add(key, title, Status.PASS, f"refused: {facts.note}")


def _resumption(out: Findings, resumptions: list[Resumption]) -> None:
    lifetimes: list[tuple[str, int]] = []
    for item in resumptions:
        label = _METHOD_LABEL.get(item.method, item.method)
        key = f"session.resumption.{item.method.replace('-', '_').replace('.', '_')}"
        title = f"Resumption {label}"
        note = f" ({item.note})" if item.note else ""
        if not item.applicable:
            out.add(key, title, Status.INFO, f"not applicable: {item.note}")
        elif item.resumed is None:
            out.add(key, title, Status.SKIP, f"not tested: {item.note}")
        else:
            out.add(key, title, Status.INFO,
                    ("sessions resume" if item.resumed else "sessions do not resume") + note)
        version = "TLS 1.3" if item.method == TICKET_TLS13 else "TLS 1.2"
        lifetimes += [(version, t.lifetime) for t in item.tickets]
    if not lifetimes:
        return
    key, title = "session.ticket_lifetime", "Ticket lifetime"
    longest13 = max((s for v, s in lifetimes if v == "TLS 1.3"), default=None)
    longest12 = max((s for v, s in lifetimes if v == "TLS 1.2"), default=None)
    said = "; ".join(f"{v}: {_duration(s)}" for v, s in
                     (("TLS 1.2", longest12), ("TLS 1.3", longest13)) if s is not None)
    fix = "issue tickets for at most a day (nginx: ssl_session_timeout 1d;)"
    if longest13 is not None and longest13 > ONE_WEEK:
        out.add(key, title, Status.FAIL, f"{said}: over the 7 days RFC 8446 allows", fix=fix)
    elif longest12 is not None and longest12 > ONE_WEEK:
        out.add(key, title, Status.WARN, f"{said}: over a week, so one ticket key protects "
                "sessions for that long", fix=fix)
    else:
        out.add(key, title, Status.PASS, said)


def _duration(seconds: int) -> str:
    if seconds == 0:
        return "no hint (0)"
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    if seconds % 60 == 0:
        return f"{seconds // 60} minute(s)"
    return f"{seconds} s"


def _early_data(out: Findings, facts: EarlyDataFacts) -> None:
    key, title = "session.early_data", "0-RTT (TLS 1.3 early data)"
    fix = ("turn 0-RTT off (nginx: ssl_early_data off;), or accept only replay-safe requests "
           "early (answer 425 Too Early to the rest)")
    if not facts.tested:
        out.add(key, title, Status.SKIP, f"not tested: {facts.note}")
    elif facts.offered is None:
        out.add(key, title, Status.PASS, facts.note)
    elif facts.accepted:
        out.add(key, title, Status.WARN, f"the server accepts replayable early data "
                f"(up to {facts.offered} bytes): {facts.note}", fix=fix)
    elif facts.accepted is None:
        out.add(key, title, Status.WARN, f"tickets offer up to {facts.offered} bytes of early "
                f"data; not confirmed by sending: {facts.note}", fix=fix)
    else:
        out.add(key, title, Status.PASS, f"tickets offer up to {facts.offered} bytes of early "
                f"data, but the server rejected ours: {facts.note}")


def _must_staple(out: Findings, must_staple: bool | None, stapled: bool | None,
                 malformed: bool) -> None:
    key, title = "cert.must_staple", "OCSP must-staple"
    if must_staple is None:
        if malformed:
            out.add(key, title, Status.SKIP, f"not tested: {UNPARSABLE}")
        return
    if not must_staple:
        out.add(key, title, Status.INFO, "the certificate does not require a stapled response")
    elif stapled is None:
        out.add(key, title, Status.SKIP, "the certificate requires a stapled OCSP response; "
                "not tested: this Python cannot ask for one")
    elif stapled:
        out.add(key, title, Status.PASS, "the certificate requires a stapled OCSP response, "
                "and one is stapled")
    else:
        out.add(key, title, Status.FAIL, "the certificate requires a stapled OCSP response "
                "(TLS Feature status_request) but none is stapled: clients that honour it "
                "refuse the connection",
                fix="staple OCSP responses (nginx: ssl_stapling on; ssl_stapling_verify on;), "
                    "or reissue the certificate without must-staple")


def _no_sni(out: Findings, facts: NoSniFacts, name: str) -> None:
    key, title = "cert.no_sni", "Clients without SNI"
    if not facts.applicable:
        out.add(key, title, Status.INFO, f"not applicable: {facts.note}")
    elif facts.refused:
        out.add(key, title, Status.INFO, f"the server refuses clients without SNI ({facts.note})")
    elif facts.leaf is None:
        out.add(key, title, Status.SKIP, f"not tested: {facts.note}")
    else:
        info = describe_certificate(facts.leaf)
        same = {True: "the same certificate as with SNI", False: "a different certificate "
                "than with SNI", None: "a certificate"}[facts.same_as_sni]
        valid = "valid" if facts.valid_for_name else "not valid"
        sans = f"SANs {', '.join(info.sans.describe()) or 'none'}; {valid} for {name}"
        if unparsable(facts.leaf):
            sans = UNPARSABLE.replace("the certificate's", "its")
        out.add(key, title, Status.INFO, f"they get {same}: {info.subject}, {sans}")


def _scts(out: Findings, facts: SctFacts) -> None:
    parts = []
    for label, scts in (("embedded", facts.embedded), ("TLS extension", facts.tls_extension),
                        ("stapled OCSP", facts.ocsp)):
        if scts is None:
            parts.append(f"{label}: not read")
            continue
        ids = ", ".join(base64.b64encode(s.log_id).decode() for s in scts if s.log_id)
        parts.append(f"{label}: {len(scts)}" + (f" (log IDs {ids})" if ids else ""))
    note = f"; {facts.note}" if facts.note else ""
    out.add("cert.sct", "Certificate Transparency", Status.INFO, "SCTs " + "; ".join(parts) + note)
