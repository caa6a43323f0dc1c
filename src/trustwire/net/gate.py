"""The gate: where :func:`trustwire.authz.admission.admit` is applied, on every path.

A listener has one :class:`Gate`. It holds the current :class:`TrustState`
(swapped whole on reload) and is installed into every SSLContext the listener
accepts with, old and new, so whichever context a handshake started on, the
decision is taken with the state in force *when the decision is taken*:

* **full handshake** -- OpenSSL's verification callback calls the gate once the
  chain verified; a refusal becomes the TLS alert for the reason
  (certificate_revoked, certificate_expired, unknown_ca, certificate_unknown
  for the access policy, internal_error for an expired CRL), as stunnel does;
* **resumption** -- OpenSSL's ticket callback asks the gate before a decrypted
  ticket (TLS 1.2 or 1.3) is used: a refused ticket is ignored and the client
  must do a full handshake, which then fails with the alert. The server-side
  session cache is off, so tickets are the only way to resume. Ticket keys are
  derived from the trusted CA bundle and CRL (:func:`trustwire.tls.context.ticket_keys`),
  so workers that loaded the same files share them; and only a ticket sealed with
  the *current* key is honoured, whichever context (old or new) decrypted it: a
  connection accepted before a CA or CRL change still runs on the context of its
  accept, which knows the old key, and its old ticket must not resume there. A
  ready-made SSLContext gets random keys of its own, so two servers in one process
  never honour each other's tickets;
* **established** -- when any handshake completes, :meth:`Gate.admit_established`
  decides again with the current state (a reload may have happened between the
  certificate and the Finished message; a resumed session is judged here too);
* **open sessions** -- at every reload, and when a certificate or the CRL runs
  out, the listener asks :meth:`Gate.judge` for each live session.

Hand-offs from inside OpenSSL's callbacks: the root a chain was verified against
is remembered by leaf fingerprint (a session picks it up when it is established);
a refusal is left in a thread-local slot that the failing handshake takes right
after (the refusal aborts that same ``do_handshake`` call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import ssl
import threading
from dataclasses import dataclass

from trustwire.authz.admission import TrustState, admit
from trustwire.authz.policy import Decision
from trustwire.errors import ConfigError
from trustwire.identity import PeerIdentity
from trustwire.net.observer import Stats
from trustwire.tls import native
from trustwire.tls.context import ticket_keys

__all__ = ["ALERT_CODES", "Denial", "Gate"]

ALERT_CODES: dict[str, int] = {
    "revoked": native.X509_V_ERR_CERT_REVOKED,
    "expired": native.X509_V_ERR_CERT_HAS_EXPIRED,
    "not-yet-valid": native.X509_V_ERR_CERT_NOT_YET_VALID,
    "untrusted-ca": native.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    "crl-missing": native.X509_V_ERR_UNSPECIFIED,
    "crl-expired": native.X509_V_ERR_UNSPECIFIED,
    "crl-not-yet-valid": native.X509_V_ERR_UNSPECIFIED,
    "policy": native.X509_V_ERR_POLICY_REFUSED,
    "no-certificate": native.X509_V_ERR_POLICY_REFUSED,
}
"""The X509 error a refusal is reported with, and so (through OpenSSL) the TLS alert."""

_NO_USABLE_CRL = Decision(
    False, "revocation cannot be checked: no usable CRL from the certificate's issuer is in "
    "force", "crl-missing", "add that CA's CRL to the CRL file (signed by it), and the CA's "
    "certificate to the CA file if it is an intermediate the clients send")

_STALE_CRL = {
    native.X509_V_ERR_UNABLE_TO_GET_CRL: _NO_USABLE_CRL,
    native.X509_V_ERR_CRL_SIGNATURE_FAILURE: _NO_USABLE_CRL,
    native.X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER: _NO_USABLE_CRL,
    native.X509_V_ERR_KEYUSAGE_NO_CRL_SIGN: _NO_USABLE_CRL,
    native.X509_V_ERR_CRL_HAS_EXPIRED: Decision(
        False, "revocation cannot be checked: the CRL in force has expired", "crl-expired",
        "refresh it with `trustwire ca crl`"),
    native.X509_V_ERR_CRL_NOT_YET_VALID: Decision(
        False, "revocation cannot be checked: the CRL in force is not valid yet (a clock is "
        "wrong)", "crl-not-yet-valid", "check the clocks (timedatectl status)"),
}

_REMEMBERED = 4096
"""Leaf -> root entries kept between a verification and its handshake's end."""


@dataclass(frozen=True, slots=True)
class Denial:
    """A refusal taken inside OpenSSL, handed to the handshake that failed: who was refused
    and, when the gate refused (not OpenSSL's own checks), the decision."""

    peer: PeerIdentity | None
    decision: Decision | None
    verified: bool = True
    """False when OpenSSL's own checks failed: the certificate's names are only claims."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Gate:
    """The current trust state and the callbacks that apply it.

    Args:
        trust: the state to admit by (replace it with :meth:`update`).
        server_side: installed into server contexts (tickets are judged too).
        stats: where refused tickets are counted.
    """

    def __init__(self, trust: TrustState, *, server_side: bool, stats: Stats) -> None:
        self.trust = trust
        self.server_side = server_side
        self.stats = stats
        self._ticket_name: bytes | None = None
        """The name of the ticket key of the current context: the only one honoured."""
        self._roots: dict[str, str] = {}
        self._local = threading.local()

    def update(self, trust: TrustState) -> None:
        self.trust = trust

    def install(self, ctx: ssl.SSLContext, *, epoch: bytes | None) -> bool:
        """Apply this gate inside ``ctx``'s handshakes; False if OpenSSL cannot be reached
        (then only :meth:`admit_established` and :meth:`judge` decide, after the handshake).

        Raises:
            ConfigError: ``ctx`` already serves another listener (OpenSSL keeps one
                callback per context: the second listener's policy would judge both).
        """
        owner = ctx.__dict__.get("_trustwire_gate")
        if owner is not None and owner is not self:
            raise ConfigError("this SSLContext already serves another listener, whose access "
                              "policy would then judge this one's clients too",
                              hint="give each server its own context (ServerTLS.context() "
                                   "makes a fresh one)")
        ctx.__dict__["_trustwire_gate"] = self
        installed = native.set_verify_judge(ctx, self._verify)
        if self.server_side:
            keys = ticket_keys(epoch) if epoch is not None else os.urandom(native.TICKET_KEYS_SIZE)
            keyed = native.set_ticket_keys(ctx, keys)
            self._ticket_name = keys[:16] if keyed else None  # None: no ticket is honoured
            installed = native.disable_session_cache(ctx) and keyed and installed
            installed = native.set_session_ticket_judge(ctx, self._ticket) and installed
        return installed

    # -- the decisions --------------------------------------------------------------------------

    def judge(self, peer: PeerIdentity | None, verified_by: frozenset[str],
              now: dt.datetime | None = None) -> Decision:
        """The admission decision for an identity, with the current state (at ``now``,
        default the clock)."""
        return admit(peer, self.trust, now=now or _now(), verified_by=verified_by)

    def admit_established(self, peer: PeerIdentity | None,
                          *, resumed: bool) -> tuple[Decision, frozenset[str]]:
        """Decide for a handshake that just completed; returns the decision and the CA
        fingerprints the peer counts as verified by (kept for later judgements)."""
        verified_by: frozenset[str] = frozenset()
        if peer is not None:
            root = None if resumed else self._roots.pop(peer.fingerprint, None)
            verified_by = frozenset((root,)) if root else self.trust.candidates(peer)
        return self.judge(peer, verified_by), verified_by

    def take_denial(self) -> Denial | None:
        """The refusal the verification callback just made on this thread, if any."""
        denial: Denial | None = getattr(self._local, "denial", None)
        self._local.denial = None
        return denial

    # -- inside OpenSSL -------------------------------------------------------------------------

    def _verify(self, error: int, leaf: bytes | None, root: bytes | None) -> int:
        if error:
            stale = _STALE_CRL.get(error)
            if stale is not None:
                # OpenSSL would say "certificate expired", "bad certificate" or "unknown
                # CA": untrue, the peer's certificate is fine; this side's CRL is not.
                self._local.denial = Denial(
                    PeerIdentity.from_der(leaf) if leaf is not None else None, stale,
                    verified=False)
                return ALERT_CODES[stale.code]
            if leaf is not None:  # OpenSSL refused the leaf: the log says whom it claims to be
                self._local.denial = Denial(PeerIdentity.from_der(leaf), None, verified=False)
            return error
        if leaf is None:
            return native.X509_V_ERR_UNSPECIFIED
        peer = PeerIdentity.from_der(leaf)
        root_fp = hashlib.sha256(root).hexdigest() if root is not None else None
        decision = self.judge(peer, frozenset((root_fp,)) if root_fp else frozenset())
        if not decision.allowed:
            self._local.denial = Denial(peer, decision)
            return ALERT_CODES.get(decision.code, native.X509_V_ERR_POLICY_REFUSED)
        if root_fp is not None:
            if len(self._roots) >= _REMEMBERED:
                self._roots.clear()  # handshakes that never finished; theirs are gone
            self._roots[peer.fingerprint] = root_fp
        return 0

    def _ticket(self, key_name: bytes, leaf: bytes | None) -> bool:
        if self._ticket_name is None or key_name != self._ticket_name:
            self.stats.tickets_refused += 1  # sealed under other trust: verify afresh
            return False
        peer = PeerIdentity.from_der(leaf) if leaf is not None else None
        verified_by = self.trust.candidates(peer) if peer is not None else frozenset()
        if self.judge(peer, verified_by).allowed:
            return True
        self.stats.tickets_refused += 1
        return False
