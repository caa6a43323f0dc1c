"""What hand-built hellos found out (:class:`LegacyFacts`) and the checks that judge it. Pure.

:mod:`trustwire.probe.legacy_scan` sends ClientHellos the local OpenSSL cannot: SSL 2.0 and
3.0, suites it no longer has (:mod:`trustwire.probe.legacy_suites`), DEFLATE compression,
TLS_FALLBACK_SCSV. What each answer was is a :class:`Reply`; :func:`read_reply` makes one from a
:class:`~trustwire.probe.hello.ServerFlight`. The versions and suites found are folded into
``Observations.versions``/``ciphers``, so the protocol and weak-suite checks of
:mod:`trustwire.probe.checks` judge them; :func:`judge_legacy` adds the checks of its own:

- ``tls.fallback_scsv``: a server that speaks two versions must refuse the lower one when the
  hello carries TLS_FALLBACK_SCSV (RFC 7507) with alert 86, inappropriate_fallback;
- ``tls.secure_renegotiation`` and ``tls.extended_master_secret``: the TLS <= 1.2 ServerHello
  carries renegotiation_info (RFC 5746, CVE-2009-3555) and extended_master_secret (RFC 7627,
  the triple handshake attack);
- ``vuln.crime``: the server must not pick DEFLATE (compression method 1) when offered it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trustwire.probe.findings import Check, Findings, Status
from trustwire.probe.hello import ParsedServerHello, ServerFlight
from trustwire.probe.legacy_suites import SSLV2_SPECS, suite_by_id
from trustwire.probe.messages import VERSION_NAMES

__all__ = ["INAPPROPRIATE_FALLBACK", "LegacyFacts", "Outcome", "Reply", "judge_legacy",
           "read_reply"]

INAPPROPRIATE_FALLBACK = 86
"""RFC 7507's alert: the hello carried TLS_FALLBACK_SCSV and the server knows a higher version."""
_EXTENDED_MASTER_SECRET, _RENEGOTIATION_INFO = 23, 0xFF01
_ALERT_NAMES = {10: "unexpected_message", 40: "handshake_failure", 47: "illegal_parameter",
                50: "decode_error", 70: "protocol_version", 71: "insufficient_security",
                80: "internal_error", 86: "inappropriate_fallback", 112: "unrecognized_name"}
_LABEL = {"SSLv2": "SSL 2.0", "SSLv3": "SSL 3.0", "TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1",
          "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}


class Outcome(enum.Enum):
    HELLO = "hello"
    """A ServerHello (or an SSL 2.0 SERVER-HELLO): the server went along."""
    ALERT = "alert"
    CLOSED = "closed"
    """Closed (or reset) without a word: a refusal."""
    MALFORMED = "malformed"
    """Something that is not TLS: a refusal too, from a server that answers TLS otherwise."""
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"

    @property
    def answered(self) -> bool:
        """Something came back that says what the server did (not silence, not a failure)."""
        return self not in (Outcome.TIMEOUT, Outcome.UNREACHABLE)


@dataclass(frozen=True, kw_only=True)
class Reply:
    """How the server answered one hand-built hello."""

    outcome: Outcome
    version: int | None = None
    cipher: int | None = None
    compression: int | None = None
    extensions: frozenset[int] = frozenset()
    alert: int | None = None
    sslv2_ciphers: tuple[int, ...] = ()
    """For an SSL 2.0 SERVER-HELLO: the cipher specs the server offered."""
    detail: str | None = None
    """Why nothing came back (a connection error), when nothing did."""

    @property
    def version_name(self) -> str | None:
        if self.version is None:
            return None
        return "SSLv2" if self.version == 0x0002 else VERSION_NAMES.get(
            self.version, f"0x{self.version:04x}")

    def chose(self, version: int, offered: list[int] | tuple[int, ...]) -> int | None:
        """The suite the server chose at ``version`` from ``offered``; None if it went elsewhere."""
        if self.outcome is Outcome.HELLO and self.version == version and self.cipher in offered:
            return self.cipher
        return None

    def describe(self) -> str:
        """What the server did, in a few words (for a check's detail)."""
        if self.outcome is Outcome.HELLO:
            return f"answered with a {self.version_name} ServerHello"
        if self.outcome is Outcome.ALERT and self.alert is not None:
            return f"answered with alert {_ALERT_NAMES.get(self.alert, 'number')} ({self.alert})"
        return {Outcome.CLOSED: "closed the connection without an answer",
                Outcome.MALFORMED: "answered with something that is not TLS",
                Outcome.TIMEOUT: "did not answer in time"}.get(
                    self.outcome, f"could not be reached ({self.detail})")

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "version": self.version_name,
                "cipher": None if self.cipher is None else f"0x{self.cipher:04x}",
                "compression": self.compression, "extensions": sorted(self.extensions),
                "alert": self.alert, "detail": self.detail}


def read_reply(flight: ServerFlight, *, closed: bool, timed_out: bool) -> Reply:
    """What ``flight`` says the server did with our hello. A ServerHello wins over anything
    after it (the server chose, whatever went wrong next)."""
    hello: ParsedServerHello | None = flight.server_hello
    if hello is not None and hello.sslv2:
        return Reply(outcome=Outcome.HELLO, version=hello.version,
                     sslv2_ciphers=hello.sslv2_ciphers)
    if hello is not None:
        return Reply(outcome=Outcome.HELLO, version=hello.version, cipher=hello.cipher,
                     compression=hello.compression, extensions=frozenset(hello.extensions))
    if flight.alert is not None:
        return Reply(outcome=Outcome.ALERT, alert=flight.alert.description)
    if flight.malformed is not None:
        return Reply(outcome=Outcome.MALFORMED, detail=flight.malformed)
    if timed_out and not closed:
        return Reply(outcome=Outcome.TIMEOUT)
    return Reply(outcome=Outcome.CLOSED)


@dataclass
class LegacyFacts:
    """Everything the hand-built hellos found. ``None`` fields were not asked."""

    sslv2: Reply | None = None
    sslv3: Reply | None = None
    """The answer to the first SSL 3.0 hello (which offers every suite SSL 3.0 can carry)."""
    suites: dict[str, list[int]] = field(default_factory=dict)
    """Version -> the suites (IANA ids) the server took in hand-built hellos, in the order it
    chose them: for SSL 3.0 all of them, for TLS the ones the local OpenSSL cannot offer."""
    fallback_versions: tuple[str, str] | None = None
    """(version offered with TLS_FALLBACK_SCSV, the highest the server accepts); None when the
    server accepts only one version, so no fallback is possible."""
    fallback: Reply | None = None
    features_version: str | None = None
    """The TLS <= 1.2 version of the hello that offered DEFLATE, EMS and renegotiation_info;
    None when the server accepts no such version."""
    features: Reply | None = None
    unanswered: list[str] = field(default_factory=list)
    """TLS versions whose hand-built hello got no answer at all (timeout, connection failure)."""
    versions_unknown: list[str] = field(default_factory=list)
    """TLS versions whose support is unknown (no answer): "not applicable" cannot be said."""
    handshakes: int = 0

    @property
    def compression(self) -> bool | None:
        """The server chose DEFLATE; None when the features hello got no ServerHello."""
        hello = self._features_hello
        return None if hello is None else hello.compression == 1

    @property
    def extended_master_secret(self) -> bool | None:
        hello = self._features_hello
        return None if hello is None else _EXTENDED_MASTER_SECRET in hello.extensions

    @property
    def secure_renegotiation(self) -> bool | None:
        hello = self._features_hello
        return None if hello is None else _RENEGOTIATION_INFO in hello.extensions

    @property
    def _features_hello(self) -> Reply | None:
        if self.features is not None and self.features.outcome is Outcome.HELLO:
            return self.features
        return None

    def as_json(self) -> dict[str, Any]:
        def suite_name(suite_id: int) -> str:
            suite = suite_by_id(suite_id)
            return suite.iana if suite else f"0x{suite_id:04x}"

        sslv2 = None if self.sslv2 is None else self.sslv2.as_json() | {
            "cipher_specs": [SSLV2_SPECS[s].iana if s in SSLV2_SPECS else f"0x{s:06x}"
                             for s in self.sslv2.sslv2_ciphers]}
        fallback = None
        if self.fallback_versions is not None:
            fallback = {"offered": self.fallback_versions[0], "highest": self.fallback_versions[1],
                        "reply": None if self.fallback is None else self.fallback.as_json()}
        return {
            "handshakes": self.handshakes,
            "sslv2": sslv2,
            "sslv3": None if self.sslv3 is None else self.sslv3.as_json(),
            "suites": {v: [suite_name(s) for s in ids] for v, ids in self.suites.items()},
            "fallback_scsv": fallback,
            "features": None if self.features_version is None else {
                "version": self.features_version,
                "reply": None if self.features is None else self.features.as_json(),
                "compression": self.compression,
                "extended_master_secret": self.extended_master_secret,
                "secure_renegotiation": self.secure_renegotiation},
        }


def judge_legacy(facts: LegacyFacts | None) -> list[Check]:
    """The checks of the hand-built hellos (none when they were not run)."""
    if facts is None:
        return []
    features = Findings("Protocol features")
    _fallback(features, facts)
    _feature(features, facts, _RENEGOTIATION)
    _feature(features, facts, _EMS)
    vulnerabilities = Findings("Vulnerabilities")
    _feature(vulnerabilities, facts, _CRIME)
    return features.checks + vulnerabilities.checks


def _fallback(findings: Findings, facts: LegacyFacts) -> None:
    key, title = "tls.fallback_scsv", "Downgrade protection (TLS_FALLBACK_SCSV)"
    if facts.fallback_versions is None:
        if facts.versions_unknown:
            findings.add(key, title, Status.SKIP, "not tested: whether the server accepts "
                         f"{', '.join(_LABEL.get(v, v) for v in facts.versions_unknown)} is unknown")
        else:
            findings.add(key, title, Status.INFO,
                         "not applicable: the server accepts a single protocol version")
        return
    offered, highest = (_LABEL.get(v, v) for v in facts.fallback_versions)
    reply = facts.fallback
    if reply is None or not reply.outcome.answered:
        findings.add(key, title, Status.SKIP, f"not tested: the server "
                     f"{reply.describe() if reply else 'was not asked'}")
    elif reply.outcome is Outcome.ALERT and reply.alert == INAPPROPRIATE_FALLBACK:
        findings.add(key, title, Status.PASS, f"a {offered} hello marked as a fallback was "
                     f"refused with inappropriate_fallback (the server speaks {highest})")
    elif reply.outcome is Outcome.HELLO:
        protected = facts.fallback_versions[1] == "TLSv1.3"
        findings.add(
            key, title, Status.WARN if protected else Status.FAIL,
            f"the server accepted a {offered} hello marked as a fallback although it speaks "
            f"{highest}: an attacker can force clients that retry down to {offered}"
            + ("; TLS 1.3 clients are still protected by the ServerHello's downgrade sentinel"
               if protected else ""),
            fix="use a TLS library that honours TLS_FALLBACK_SCSV (RFC 7507; OpenSSL has since "
                "1.0.1j), or disable the versions below the highest")
    else:
        findings.add(key, title, Status.SKIP, f"inconclusive: the server {reply.describe()} "
                     f"to a {offered} hello with TLS_FALLBACK_SCSV, not with inappropriate_fallback")


def _features_skip(findings: Findings, facts: LegacyFacts, key: str, title: str,
                   not_applicable: str) -> bool:
    """Add the INFO/SKIP check when the features hello gave no ServerHello; True if it did."""
    if facts.features_version is None:
        if facts.versions_unknown:
            findings.add(key, title, Status.SKIP, "not tested: whether the server accepts "
                         f"{', '.join(_LABEL.get(v, v) for v in facts.versions_unknown)} is unknown")
        else:
            findings.add(key, title, Status.INFO, f"not applicable: {not_applicable}")
        return True
    reply = facts.features
    if reply is None or reply.outcome is not Outcome.HELLO:
        findings.add(key, title, Status.SKIP, f"not tested: the server "
                     f"{reply.describe() if reply else 'was not asked'} to a "
                     f"{_LABEL.get(facts.features_version, facts.features_version)} hello")
        return True
    return False


@dataclass(frozen=True)
class _Rule:
    """One check read from the features hello's ServerHello."""

    key: str
    title: str
    not_applicable: str
    sound: Callable[[LegacyFacts], bool | None]
    passed: str
    """Detail when sound; ``{version}`` is the hello's version."""
    failed: str
    status: Status
    fix: str


_RENEGOTIATION = _Rule(
    "tls.secure_renegotiation", "Secure renegotiation (RFC 5746)",
    "only TLS 1.3 is accepted, and it has no renegotiation",
    lambda facts: facts.secure_renegotiation,
    "the {version} ServerHello carries renegotiation_info",
    "the {version} ServerHello has no renegotiation_info: the server does not support secure "
    "renegotiation, so a man in the middle can splice his own data in front of a client's "
    "(CVE-2009-3555)", Status.FAIL,
    "upgrade the server's TLS library (every maintained one supports RFC 5746) or turn "
    "renegotiation off")
_EMS = _Rule(
    "tls.extended_master_secret", "Extended master secret (RFC 7627)",
    "only TLS 1.3 is accepted, which always binds the session to the handshake",
    lambda facts: facts.extended_master_secret,
    "the {version} ServerHello carries extended_master_secret",
    "the {version} ServerHello has no extended_master_secret: resumed sessions are open to the "
    "triple handshake attack", Status.WARN,
    "enable the extended master secret (OpenSSL has it on unless Options "
    "-ExtendedMasterSecret turns it off)")
_CRIME = _Rule(
    "vuln.crime", "TLS compression (CRIME)", "only TLS 1.3 is accepted, and it has no compression",
    lambda facts: not facts.compression,
    "offered DEFLATE in {version}, the server chose no compression",
    "the server chose DEFLATE compression for {version}: the length of compressed records "
    "leaks secrets such as cookies (CRIME)", Status.FAIL,
    "disable TLS compression (OpenSSL: SSL_OP_NO_COMPRESSION, the default since 1.1.0)")


def _feature(findings: Findings, facts: LegacyFacts, rule: _Rule) -> None:
    if _features_skip(findings, facts, rule.key, rule.title, rule.not_applicable):
        return
    version = _LABEL.get(facts.features_version or "", facts.features_version)
    if rule.sound(facts):
        findings.add(rule.key, rule.title, Status.PASS, rule.passed.format(version=version))
    else:
        findings.add(rule.key, rule.title, rule.status, rule.failed.format(version=version),
                     fix=rule.fix)
