"""Plain-language diagnosis of TLS handshake failures, on either side.

Every failure becomes a :class:`Diagnosis`: a stable ``reason`` code, which
side refused (``client`` or ``server``), one sentence saying what failed and
why, and the command that fixes it. The input is what OpenSSL reports:

* a *verify code* when this side rejected the peer's certificate
  (``ssl.SSLCertVerificationError.verify_code``: expired, unknown CA, ...);
* an *alert* when the peer rejected ours (``SSLError.reason`` such as
  ``TLSV1_ALERT_UNKNOWN_CA``); OpenSSL maps verify codes to alerts with
  ``ssl_verify_alarm_type`` (expired -> certificate_expired, revoked ->
  certificate_revoked, not-yet-valid -> bad_certificate, wrong purpose ->
  unsupported_certificate, unknown issuer -> unknown_ca), and we invert it;
* a local protocol error (no shared cipher, old protocol, plain text).

Pure: no sockets. ``own_cert`` lets a client refine a vague alert
("bad certificate") with facts about its own certificate (not yet valid?).
"""

from __future__ import annotations

import datetime as dt
import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID

from trustwire.errors import Diagnosis, Reason

__all__ = ["Diagnosis", "Role", "diagnose", "diagnose_eof", "diagnose_refusal", "diagnose_timeout",
           "policy_denied"]

Role = str  # "client" or "server": which end of the connection *we* are


def _other(role: Role) -> str:
    return "server" if role == "client" else "client"


def _cert_of(side: str) -> str:
    return f"the {side}'s certificate"


# X509_V_ERR_* codes (openssl/x509_vfy.h) -> reason
_VERIFY_CODES: dict[int, Reason] = {
    2: "unknown-ca", 7: "unknown-ca", 18: "unknown-ca", 19: "unknown-ca", 20: "unknown-ca",
    21: "unknown-ca", 3: "crl-missing", 9: "not-yet-valid", 10: "expired", 11: "crl-not-yet-valid",
    12: "crl-expired", 23: "revoked", 26: "wrong-eku", 47: "name-constraints",
    48: "name-constraints", 62: "hostname-mismatch", 64: "hostname-mismatch",
}

# Alerts a peer sends when it rejects our certificate or the connection
_ALERTS: dict[str, Reason] = {
    "TLSV1_ALERT_UNKNOWN_CA": "unknown-ca",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "revoked",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "wrong-eku",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad-certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "policy-denied",
    "TLSV1_ALERT_INTERNAL_ERROR": "server-error",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "client-cert-missing",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol-too-old",
    "TLSV1_ALERT_ACCESS_DENIED": "policy-denied",
    "TLSV1_ALERT_DECRYPT_ERROR": "bad-certificate",
}

_LOCAL: dict[str, Reason] = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "client-cert-missing",
    "WRONG_VERSION_NUMBER": "not-tls",
    "HTTP_REQUEST": "not-tls",
    "HTTPS_PROXY_REQUEST": "not-tls",
    "UNKNOWN_PROTOCOL": "not-tls",
    "PACKET_LENGTH_TOO_LONG": "not-tls",
    "RECORD_LENGTH_MISMATCH": "not-tls",
    "UNSUPPORTED_PROTOCOL": "protocol-too-old",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol-too-old",
    "NO_SHARED_CIPHER": "no-shared-cipher",
    "NO_CIPHERS_AVAILABLE": "no-shared-cipher",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "no-shared-cipher",
    "NO_SHARED_GROUPS": "no-shared-cipher",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake-failure",
    "UNEXPECTED_EOF_WHILE_READING": "closed",
}


def _subject(cert: x509.Certificate) -> str:
    """``CN=alice, OU=eng`` (the parts of a subject that name someone)."""
    subject = cert.subject
    parts = [f"CN={a.value!s}" for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    parts += [f"OU={a.value!s}"
              for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    return ", ".join(parts) or subject.rfc4514_string()


def _fmt(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _local_rejection(exc: ssl.SSLCertVerificationError, role: Role) -> Diagnosis:
    """We (``role``) rejected the peer's certificate."""
    peer = _other(role)
    reason = _VERIFY_CODES.get(exc.verify_code, "bad-certificate")
    what = _cert_of(peer)
    message = exc.verify_message or "verification failed"
    renew = f"renew it on the {peer}: trustwire cert renew NAME"
    table: dict[str, tuple[str, str | None]] = {
        "expired": ("it has expired", renew),
        "not-yet-valid": ("it is not valid yet: one of the two clocks is wrong, or it was issued "
                          "for the future", "check both clocks (timedatectl status) and the "
                          "certificate's dates with `trustwire cert show FILE`"),
        "unknown-ca": (f"it was not issued by a CA this {role} trusts ({message})",
                       f"give the {role} the CA that issued it (--ca FILE or --identity from the "
                       f"same home), or issue the {peer} a certificate from this CA"),
        "revoked": ("it has been revoked (it is listed in the CRL)",
                    f"issue the {peer} a new certificate: trustwire cert issue NAME "
                    f"--{'server' if peer == 'server' else 'client'}"),
        "hostname-mismatch": (f"it is not valid for the name or address connected to ({message})",
                              "connect with a name the certificate holds (--server-name NAME), or "
                              "reissue it with the right --dns / --ip"),
        "wrong-eku": (f"it may not be used as a TLS {peer} certificate (its extendedKeyUsage lacks "
                      f"{'serverAuth' if peer == 'server' else 'clientAuth'})",
                      f"issue it with --{peer} or --both"),
        "crl-missing": ("no CRL from its issuer is loaded, and CRL checking is on",
                        "load the CA's CRL (trustwire ca crl) or do not pass --crl"),
        "crl-expired": ("the loaded CRL is past its nextUpdate, so nothing can be checked",
                        "regenerate the CRL with `trustwire ca crl` and reload"),
        "crl-not-yet-valid": ("the loaded CRL is not valid yet (clock skew?)",
                              "check the clock with `timedatectl status`"),
        "name-constraints": (f"its names lie outside what its CA may certify ({message})",
                             "issue it from a CA whose name constraints cover its names"),
        "bad-certificate": (f"strict verification failed ({message})",
                            "run `trustwire cert lint FILE` on it to see why"),
    }
    why, fix = table[reason]
    return Diagnosis(reason=reason, side=role, what=what, why=why, fix=fix)


def _alert_rejection(alert: str, role: Role, own_cert: x509.Certificate | None,
                     presented: bool, now: dt.datetime) -> Diagnosis:
    """The peer sent ``alert``: it refused our certificate or the connection."""
    peer = _other(role)
    reason = _ALERTS[alert]
    what = f"this {role}'s certificate" if presented else f"this {role}"
    if presented and own_cert is not None:
        what += f" ({_subject(own_cert)})"  # who was refused: the peer's reasons are its own
    if reason == "bad-certificate" and own_cert is not None:
        if now < own_cert.not_valid_before_utc:
            reason = "not-yet-valid"
        elif now > own_cert.not_valid_after_utc:
            reason = "expired"
    if reason == "client-cert-missing" or (role == "client" and not presented
                                            and reason in ("bad-certificate", "handshake-failure")):
        return Diagnosis(reason="client-cert-missing", side=peer, what="this client",
                         why="the server requires a client certificate and none was sent",
                         fix="pass --identity NAME (or --cert FILE --key FILE)")
    table: dict[str, tuple[str, str | None]] = {
        "unknown-ca": (f"the {peer} does not trust the CA that issued it",
                       f"use a certificate issued by the {peer}'s CA (trustwire cert issue NAME "
                       f"--{role} in the {peer}'s home)"),
        "expired": ("it has expired" + (f" (on {_fmt(own_cert.not_valid_after_utc)})"
                                        if own_cert is not None else ""),
                    "renew it: trustwire cert renew NAME"),
        "not-yet-valid": ("it is not valid yet" + (
            f" (it starts {_fmt(own_cert.not_valid_before_utc)}); a clock is wrong"
            if own_cert is not None else ""),
            "check both clocks (timedatectl status)"),
        "revoked": (f"the {peer}'s CRL lists it as revoked",
                    f"get a new certificate: trustwire cert issue NAME --{role}"),
        "wrong-eku": (f"it may not be used as a TLS {role} certificate (wrong extendedKeyUsage)",
                      f"issue it with --{role} or --both"),
        "bad-certificate": (f"the {peer} found it invalid", "run `trustwire cert lint FILE` on it"),
        "protocol-too-old": (f"the {peer} does not accept this TLS version",
                             "use TLS 1.2 or newer on both sides"),
        "policy-denied": (f"the {peer} does not accept this identity (a trustwire {peer} says "
                          "so when its access policy refuses it; its audit log names the reason)",
                          f"ask the {peer}'s operator to allow it (--allow-cn NAME), or use an "
                          "allowed identity"),
        "server-error": (f"the {peer} could not check it (a trustwire {peer} says so when its "
                         "CRL has expired: it then refuses everyone until the CRL is refreshed)",
                         f"ask the {peer}'s operator to refresh the CRL (trustwire ca crl) and "
                         "check its log"),
    }
    why, fix = table[reason]
    return Diagnosis(reason=reason, side=peer, what=what, why=why, fix=fix)


def diagnose(exc: BaseException, *, role: Role, own_cert: x509.Certificate | None = None,
             presented: bool = False, now: dt.datetime | None = None) -> Diagnosis:
    """Explain a handshake failure seen by ``role``.

    Args:
        exc: what the ssl module raised (or an EOF/timeout error).
        role: ``client`` or ``server``: which end we are.
        own_cert: our certificate, to refine vague alerts.
        presented: whether we sent a certificate.
        now: the time (tests pass a fixed clock).
    """
    now = now or dt.datetime.now(dt.UTC)
    presented = presented or role == "server"  # a server always sends its certificate
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _local_rejection(exc, role)
    reason_code = str(getattr(exc, "reason", "") or "")
    if reason_code in _ALERTS:
        return _alert_rejection(reason_code, role, own_cert, presented, now)
    reason = _LOCAL.get(reason_code)
    peer = _other(role)
    if isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, EOFError)) or reason == "closed":
        return diagnose_eof(role)
    if reason == "client-cert-missing":
        return Diagnosis(reason="client-cert-missing", side="server", what="the client",
                         why="it sent no certificate, and this server requires one",
                         fix="the client must pass --identity NAME (or --cert/--key)")
    if reason == "not-tls":
        return Diagnosis(reason="not-tls", side=role, what=f"the {peer}",
                         why="it did not speak TLS (plain HTTP or another protocol on a TLS port)",
                         fix=f"point a TLS {peer} at this port (https://, openssl s_client, "
                         "trustwire send)")
    if reason == "protocol-too-old":
        return Diagnosis(reason="protocol-too-old", side=role, what=f"the {peer}'s TLS version",
                         why="it is older than TLS 1.2, which this side requires",
                         fix=f"upgrade the {peer} to TLS 1.2 or 1.3")
    if reason == "no-shared-cipher":
        return Diagnosis(reason="no-shared-cipher", side=role, what=f"the {peer}'s cipher suites",
                         why="none of them is an AEAD suite with ECDHE that this side accepts",
                         fix=f"enable ECDHE with AES-GCM or ChaCha20-Poly1305 on the {peer}")
    if reason == "handshake-failure" and role == "client" and not presented:
        # TLS 1.2 servers answer a missing required certificate with a bare handshake_failure.
        return _alert_rejection("TLSV13_ALERT_CERTIFICATE_REQUIRED", role, own_cert, presented, now)
    if reason == "handshake-failure":
        return Diagnosis(reason="handshake-failure", side=peer, what=f"this {role}",
                         why=f"the {peer} aborted the handshake (no shared cipher, or a required "
                         "certificate missing)",
                         fix="compare both sides' TLS versions, suites and certificates with "
                         "`trustwire probe`")
    text = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
    return Diagnosis(reason="tls-error", side=role, what="the TLS handshake", refused=False,
                     why=text.replace("_", " ").lower(), fix=None)


def diagnose_eof(role: Role) -> Diagnosis:
    """The peer closed the connection during (or right after) the handshake, without an alert."""
    peer = _other(role)
    return Diagnosis(
        reason="closed", side=peer, what="the TLS handshake", refused=False,
        why=f"the {peer} closed the connection without saying why (it may have refused this "
            f"{role}'s certificate or identity, or be overloaded)",
        fix=f"check the {peer}'s audit log for this connection",
    )


def diagnose_timeout(role: Role, seconds: float) -> Diagnosis:
    peer = _other(role)
    return Diagnosis(
        reason="timeout", side=role, what="the TLS handshake", refused=False,
        why=f"the {peer} did not complete it within {seconds:g} seconds",
        fix=f"check that a TLS {peer} is on the other end and the network is not dropping packets",
    )


_REFUSALS: dict[str, tuple[Reason, str]] = {
    "policy": ("policy-denied", "ask the operator to allow it (--allow-cn NAME and friends), or use "
               "an allowed identity"),
    "no-certificate": ("client-cert-missing", "the client must pass --identity NAME "
                       "(or --cert/--key)"),
    "revoked": ("revoked", "issue a new certificate: trustwire cert issue NAME"),
    "expired": ("expired", "renew it: trustwire cert renew NAME"),
    "not-yet-valid": ("not-yet-valid", "check both clocks (timedatectl status)"),
    "untrusted-ca": ("unknown-ca", "issue a certificate from a CA this side trusts"),
    "crl-missing": ("crl-missing", "add the CRL of the certificate's issuer to the CRL file; "
                    "the listener reloads it by itself"),
    "crl-expired": ("crl-expired", "regenerate the CRL with `trustwire ca crl`; the listener "
                    "reloads it by itself"),
    "crl-not-yet-valid": ("crl-not-yet-valid", "check the clocks of this host and the CA "
                          "(timedatectl status)"),
}


def diagnose_refusal(code: str, why: str, *, role: Role) -> Diagnosis:
    """This side (``role``) refused the peer's verified identity: the admission decision
    ``code`` (policy, revoked, expired, not-yet-valid, untrusted-ca, crl-missing, crl-expired,
    no-certificate) with its reason."""
    peer = _other(role)
    reason, fix = _REFUSALS.get(code, ("policy-denied", _REFUSALS["policy"][1]))
    what = f"the {peer}'s identity" if code == "policy" else _cert_of(peer)
    return Diagnosis(reason=reason, side=role, what=what, why=why, fix=fix)


def policy_denied(side: str, reason: str) -> Diagnosis:
    """The server's access policy refused a verified identity."""
    return Diagnosis(
        reason="policy-denied", side=side, what="this client's identity" if side == "server"
        else "the server's identity",
        why=reason,
        fix="ask the operator to allow it (--allow-cn NAME and friends), or use an allowed identity",
    )
