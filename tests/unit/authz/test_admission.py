"""The one admission decision, pure: every rule, its order, and the ways around it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from trustwire.authz.admission import TrustState, admit, issuer_key, name_key
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


TRUST = TrustState(policy=Policy(cn={"alice"}), revoked=frozenset({(name_key("CN=root"), 99)}),
                   anchors={ROOT: "CN=root", OTHER: "CN=other"},
                   crls={name_key("CN=root"): NOW + dt.timedelta(hours=1), name_key("CN=other"): None})


def test_an_allowed_identity_is_admitted() -> None:
    decision = admit(peer(), TRUST, now=NOW, verified_by=frozenset({ROOT}))
    assert decision.allowed and decision.code == "allowed"


@pytest.mark.parametrize(("who", "trust", "verified_by", "code"), [
    (None, TRUST, frozenset(), "no-certificate"),
    (peer(), TrustState(crls={name_key("CN=root"): NOW - dt.timedelta(seconds=1)}), frozenset(),
     "crl-expired"),
    (peer(issuer="CN=intermediate"), TRUST, frozenset({ROOT}), "crl-missing"),
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
    """A revocation issued after the CRL's nextUpdate would go unseen: none of the
    certificates of its issuer is admitted (another CA's, with a fresh CRL, still are)."""
    trust = TrustState(policy=Policy(), crls={name_key("CN=root"): NOW - dt.timedelta(minutes=1),
                                              name_key("CN=other"): NOW + dt.timedelta(days=1)})
    assert admit(peer(), trust, now=NOW).code == "crl-expired"
    assert admit(peer(), trust, now=NOW - dt.timedelta(minutes=2)).allowed
    assert admit(peer(issuer="CN=other"), trust, now=NOW).allowed
    assert trust.crl_next_update == NOW - dt.timedelta(minutes=1)  # the first to run out


def test_with_crl_checking_a_certificate_needs_its_issuers_crl() -> None:
    """OpenSSL's rule for full handshakes (VERIFY_CRL_CHECK_LEAF), on every path."""
    trust = TrustState(crls={name_key("CN=root"): None})
    assert admit(peer(), trust, now=NOW).allowed
    missing = admit(peer(issuer="CN=intermediate"), trust, now=NOW)
    assert missing.code == "crl-missing" and "CN=intermediate" in missing.detail
    assert "CN=intermediate" not in missing.reason  # the peer is told whom, not the CRL file
    assert admit(peer(issuer="CN=intermediate"), TrustState(), now=NOW).allowed  # not checked


def test_revocation_is_matched_on_issuer_and_serial() -> None:
    """The same serial from another CA is another certificate."""
    trust = TrustState(revoked=frozenset({(name_key("CN=root"), 99)}))
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


def test_issuers_compare_as_openssl_compares_them() -> None:
    """RFC 5280 7.1: case and runs of white space do not count."""
    assert name_key("CN=Int  IB,O=Acme") == name_key("CN=int ib,O=ACME")
    assert name_key("CN=Int IB\\ ") == name_key("CN=\\ Int IB") == name_key("CN=Int IB")
    assert name_key("CN=Café") != name_key("CN=CAFÉ")  # OpenSSL folds ASCII only
    assert name_key("CN=a+O=b,C=DE") == name_key("O=b+CN=a,C=DE")
    assert name_key("CN=a,O=b") != name_key("CN=a\\,O=b")  # one attribute is not two
    trust = TrustState(revoked=frozenset({(name_key("CN=Int IB"), 7)}),
                       crls={name_key("CN=Int IB"): None})
    assert admit(peer(issuer="CN=INT  IB"), trust, now=NOW).code == "revoked"
    assert admit(peer(issuer="CN=Int IC"), trust, now=NOW).code == "crl-missing"


def test_two_cas_of_one_name_are_told_apart_by_key_identifier() -> None:
    """As OpenSSL does: the certificates a CA signs name it and carry its key identifier."""
    ours, theirs = issuer_key("CN=trustwire CA", "aa"), issuer_key("CN=trustwire CA", "bb")
    trust = TrustState(revoked=frozenset({(ours, 7)}), crls={ours: None})
    mine = dataclasses.replace(peer(issuer="CN=trustwire CA"), issuer_key_id="aa")
    other = dataclasses.replace(mine, issuer_key_id="bb")
    assert admit(mine, trust, now=NOW).code == "revoked"
    assert admit(other, trust, now=NOW).code == "crl-missing"  # its own CA's CRL is needed
    assert admit(other, dataclasses.replace(trust, crls={ours: None, theirs: None}),
                 now=NOW).allowed  # the same serial under the other CA is another certificate
