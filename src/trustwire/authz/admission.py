"""The one admission decision: may this verified identity talk to us, now? Pure.

Every path that lets a peer exchange data asks :func:`admit` with the *current*
:class:`TrustState`: a full handshake (inside OpenSSL's verification, so a
refusal is a TLS alert), a resumed session (before its ticket is honoured, and
again when it is established), a handshake that was in flight when a reload
happened, and every open session at every reload and whenever a certificate or
the CRL runs out. OpenSSL checked the chain, signatures and key usage against
the context the handshake started on; ``admit`` checks what can change while a
process runs, in this order:

1. a certificate is there, when one is required;
2. when revocation is checked, a CRL from the certificate's issuer is in force
   and not past its nextUpdate (fail closed: without it, or with an expired
   one, a revocation would go unseen). This is OpenSSL's own rule for full
   handshakes (``VERIFY_CRL_CHECK_LEAF``), taken on every other path too;
3. the certificate is inside its validity period (a resumed session or a
   long-lived connection can outlive it);
4. the CA it was verified against is still trusted (the CA bundle changed);
5. the CRL in force does not list it;
6. the access policy allows the identity.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509

from trustwire.authz.policy import Decision, Policy, describe_peer
from trustwire.identity import PeerIdentity, canonical_name, fold_text

__all__ = ["ADMITTED_OPEN", "TrustState", "admit", "issuer_key", "name_key", "peer_issuer_key"]


def name_key(name: str | x509.Name) -> str:
    """A distinguished name as OpenSSL compares it when it matches a CRL or a CA to a
    certificate (:func:`trustwire.identity.canonical_name`). Give the parsed name where
    there is one (it keeps the string types); a string (RFC 4514) is parsed first, and
    folded as text only when it cannot be."""
    if isinstance(name, x509.Name):
        return canonical_name(name)  # not cached: equal Names may differ in string types
    return _text_name_key(name)


@functools.lru_cache(maxsize=1024)  # a handful of CA names, asked on every handshake
def _text_name_key(name: str) -> str:
    try:
        return canonical_name(x509.Name.from_rfc4514_string(name))
    except ValueError:  # not RFC 4514 after all: fold the text
        return "?" + fold_text(name)


def with_key_id(base: str, key_id: str) -> str:
    return f"{base}#{key_id}" if key_id else base


def issuer_key(name: str | x509.Name, key_id: str = "") -> str:
    """A CA as OpenSSL tells CAs apart: its name (:func:`name_key`) and its key identifier
    (hex; the certificates it signs carry it as their authority key identifier), since
    two CAs may share a name. The key of every issuer-indexed table below."""
    return with_key_id(name_key(name), key_id)


def peer_issuer_key(peer: PeerIdentity) -> str:
    """:func:`issuer_key` of the CA that issued ``peer``, from its parsed issuer name."""
    return with_key_id(peer.issuer_canonical or name_key(peer.issuer), peer.issuer_key_id)


@dataclass(frozen=True, kw_only=True)
class TrustState:
    """What admission is judged against: a value, replaced whole on every reload."""

    policy: Policy = field(default_factory=Policy)
    """Who may connect once verified."""
    revoked: frozenset[tuple[str, int]] = frozenset()
    """(issuer, serial) pairs the CRLs in force list, the issuer as :func:`issuer_key`."""
    anchors: Mapping[str, str] = field(default_factory=dict)
    """Trusted CA certificates: SHA-256 fingerprint -> subject (RFC 4514). Empty when
    unknown (a ready-made SSLContext): the CA check is then OpenSSL's alone."""
    crls: Mapping[str, dt.datetime | None] | None = None
    """The CRLs in force, when revocation is checked: issuer (as :func:`issuer_key`) ->
    nextUpdate (None: none given). Only CRLs whose signature was checked against a CA of
    the CA file or the chain are here; a certificate whose issuer has none is refused.
    None: revocation is not checked (no CRL file)."""
    peer_required: bool = True
    """A peer without a certificate is refused (mutual TLS)."""
    crl_not_before: Mapping[str, dt.datetime] = field(default_factory=dict)
    """CRLs in force issued in the future (within the clock skew a reload allows): issuer
    -> thisUpdate. OpenSSL refuses their certificates until then, and so does admission."""
    revoked_cas: frozenset[str] = frozenset()
    """CAs (as :func:`issuer_key`) that a CRL in force revokes, or whose own issuer it
    does: the certificates they issued are refused (OpenSSL checks the leaf's CRL only)."""

    @property
    def crl_next_update(self) -> dt.datetime | None:
        """When the first CRL in force expires (None: no CRL, or none with a nextUpdate)."""
        ends = [end for end in (self.crls or {}).values() if end is not None]
        return min(ends) if ends else None

    def candidates(self, peer: PeerIdentity) -> frozenset[str]:
        """The anchors ``peer`` may have been verified against, when the verification
        itself is not at hand (a resumed session): those whose subject issued it, else
        all of them. Admission then requires every candidate to stay trusted."""
        issuer = peer.issuer_canonical or name_key(peer.issuer)
        named = frozenset(fp for fp, subject in self.anchors.items()
                          if name_key(subject) == issuer)
        return named or frozenset(self.anchors)


ADMITTED_OPEN = Decision(True, "no client certificate required", "allowed")


def admit(peer: PeerIdentity | None, trust: TrustState, *, now: dt.datetime,
          verified_by: frozenset[str] = frozenset()) -> Decision:
    """Decide whether ``peer`` may exchange data under ``trust`` at ``now``.

    Args:
        peer: the identity from the peer's certificate (None: it sent none).
        trust: the current trust state.
        now: the time (timezone-aware).
        verified_by: fingerprints of the CA(s) the peer's chain was verified against;
            every one must still be trusted. Empty: not known (the check is skipped).

    Returns:
        The decision; ``reason`` may be told to the peer, ``detail`` only logged.
    """
    if peer is None:
        if trust.peer_required:
            return Decision(False, "no client certificate was presented", "no-certificate")
        return ADMITTED_OPEN if trust.policy.is_open() else Decision(
            False, "no certificate was presented and the access policy needs one", "policy")
    who = describe_peer(peer)
    issuer = peer_issuer_key(peer)
    if trust.crls is not None:
        if issuer not in trust.crls:
            return Decision(False, "revocation cannot be checked: no CRL from the issuer of the "
                            f"certificate of {who} is in force", "crl-missing",
                            f"no CRL from {peer.issuer} that can be checked: add that CA's CRL "
                            "to the CRL file, and its certificate to the CA file if it is an "
                            "intermediate the clients send")
        starts = trust.crl_not_before.get(issuer)
        if starts is not None and now < starts:
            return Decision(False, "revocation cannot be checked: the CRL in force is not valid "
                            "yet (a clock is wrong)", "crl-not-yet-valid",
                            f"the CRL from {peer.issuer} is valid from {starts.isoformat()}; "
                            "check the clocks (timedatectl status)")
        ends = trust.crls[issuer]
        if ends is not None and now > ends:
            return Decision(False, "revocation cannot be checked: the CRL in force has expired",
                            "crl-expired",
                            f"the CRL from {peer.issuer} expired at {ends.isoformat()}; "
                            "refresh it with `trustwire ca crl`")
    if now > peer.not_after:
        return Decision(False, f"the certificate of {who} expired at "
                        f"{peer.not_after:%Y-%m-%d %H:%M} UTC", "expired")
    if now < peer.not_before:
        return Decision(False, f"the certificate of {who} is not valid before "
                        f"{peer.not_before:%Y-%m-%d %H:%M} UTC", "not-yet-valid")
    if trust.anchors and verified_by and not verified_by <= trust.anchors.keys():
        return Decision(False, f"the CA that issued the certificate of {who} is no longer "
                        "trusted", "untrusted-ca",
                        f"verified against {', '.join(sorted(f[:16] for f in verified_by))}")
    if issuer in trust.revoked_cas:
        return Decision(False, f"the CA that issued the certificate of {who} has been revoked",
                        "revoked", f"{peer.issuer} is revoked by a CRL in force")
    if (issuer, peer.serial) in trust.revoked:
        return Decision(False, f"the certificate of {who} has been revoked", "revoked",
                        f"serial {peer.serial_hex} is in the CRL")
    return trust.policy.check(peer)
