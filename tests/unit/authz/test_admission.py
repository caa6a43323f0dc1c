"""The one admission decision, pure: every rule, its order, and the ways around it."""

from __future__ import annotations

import datetime as dt

import pytest

from trustwire.authz.admission import TrustState, admit
from trustwire.authz.policy import Policy
from trustwire.identity import PeerIdentity

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
ROOT, OTHER = "11" * 32, "22" * 32


def peer(cn: str = "alice", *, serial: int = 7, issuer: str = "CN=root",
         not_before: dt.datetime = NOW - dt.timedelta(days=1),
         not_after: dt.datetime = NOW + dt.timedelta(days=1)) -> PeerIdentity:
    return PeerIdentity(common_name=cn, organizational_units=(), dns=(), ips=(), uris=(),
                        serial=serial, fingerprint="ab" * 32, not_before=not_before,
                        not_after=not_after, issuer=issuer)


TRUST = TrustState(policy=Policy(cn={"alice"}), revoked=frozenset({("CN=root", 99)}),
                   anchors={ROOT: "CN=root", OTHER: "CN=other"},
                   crl_next_update=NOW + dt.timedelta(hours=1))


def test_an_allowed_identity_is_admitted() -> None:
    decision = admit(peer(), TRUST, now=NOW, verified_by=frozenset({ROOT}))
    assert decision.allowed and decision.code == "allowed"


@pytest.mark.parametrize(("who", "trust", "verified_by", "code"), [
    (None, TRUST, frozenset(), "no-certificate"),
    (peer(), TrustState(crl_next_update=NOW - dt.timedelta(seconds=1)), frozenset(), "crl-expired"),
    (peer(not_after=NOW - dt.timedelta(seconds=1)), TRUST, frozenset(), "expired"),
    (peer(not_before=NOW + dt.timedelta(seconds=1)), TRUST, frozenset(), "not-yet-valid"),
    (peer(), TrustState(anchors={OTHER: "CN=other"}), frozenset({ROOT}), "untrusted-ca"),
    (peer(serial=99), TRUST, frozenset({ROOT}), "revoked"),
    (peer("bob"), TRUST, frozenset({ROOT}), "policy"),
])
def test_each_rule_refuses(who: PeerIdentity | None, trust: TrustState, verified_by: frozenset[str],
                           code: str) -> None:
    decision = admit(who, trust, now=NOW, verified_by=verified_by)
    assert not decision.allowed and decision.code == code
    assert "bob" not in decision.reason or code == "policy"  # never the allow-list


def test_an_expired_crl_fails_closed_before_anything_else() -> None:
    """A revocation issued after the CRL's nextUpdate would go unseen: nobody is admitted."""
    trust = TrustState(policy=Policy(), crl_next_update=NOW - dt.timedelta(minutes=1))
    assert admit(peer(), trust, now=NOW).code == "crl-expired"
    assert admit(peer(), trust, now=NOW - dt.timedelta(minutes=2)).allowed


def test_revocation_is_matched_on_issuer_and_serial() -> None:
    """The same serial from another CA is another certificate."""
    trust = TrustState(revoked=frozenset({("CN=root", 99)}))
    assert admit(peer(serial=99, issuer="CN=other"), trust, now=NOW).allowed
    assert admit(peer(serial=99), trust, now=NOW).code == "revoked"


def test_every_candidate_anchor_must_stay_trusted() -> None:
    """A resumed session does not say which CA verified it: all the candidates must remain."""
    trust = TrustState(anchors={ROOT: "CN=root"})
    assert admit(peer(), trust, now=NOW, verified_by=frozenset({ROOT})).allowed
    assert admit(peer(), trust, now=NOW, verified_by=frozenset({ROOT, OTHER})).code == "untrusted-ca"
    assert admit(peer(), TrustState(), now=NOW, verified_by=frozenset({ROOT})).allowed  # not tracked


def test_candidates_narrow_to_the_anchors_that_issued_the_peer() -> None:
    assert TRUST.candidates(peer(issuer="CN=root")) == {ROOT}
    assert TRUST.candidates(peer(issuer="CN=intermediate")) == {ROOT, OTHER}  # unknown: all


def test_no_client_certificate_is_admitted_only_without_client_auth_or_policy() -> None:
    assert admit(None, TrustState(peer_required=False), now=NOW).allowed
    refused = admit(None, TrustState(peer_required=False, policy=Policy(cn={"x"})), now=NOW)
    assert not refused.allowed and refused.code == "policy"
