"""Policy decisions over identities: pure, no sockets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustwire.authz import Policy
from trustwire.errors import ConfigError
from trustwire.tls.identity import PeerIdentity

FP = "ab" * 32


def peer(cn: str | None = "alice", ou: tuple[str, ...] = (), dns: tuple[str, ...] = (),
         uris: tuple[str, ...] = (), fingerprint: str = FP) -> PeerIdentity:
    now = dt.datetime.now(dt.UTC)
    return PeerIdentity(common_name=cn, organizational_units=ou, dns=dns, ips=(), uris=uris,
                        serial=0x1234, fingerprint=fingerprint, not_before=now, not_after=now,
                        issuer="CN=CA")


def test_no_rules_admits_any_verified_peer() -> None:
    decision = Policy().check(peer())
    assert decision.allowed and "no policy" in decision.reason


def test_any_rule_means_deny_by_default() -> None:
    decision = Policy.build(cn=["bob"]).check(peer("alice"))
    assert not decision.allowed
    assert "CN=alice matches no allow rule" in decision.reason and "CN bob" in decision.reason


@pytest.mark.parametrize(("policy", "who", "allowed"), [
    (Policy.build(cn=["alice"]), peer("alice"), True),
    (Policy.build(cn=["alice"]), peer("Alice"), False),  # exact, case-sensitive
    (Policy.build(cn=["alice"]), peer(None), False),
    (Policy.build(ou=["eng"]), peer(ou=("sales", "eng")), True),
    (Policy.build(ou=["eng"]), peer(ou=("engineering",)), False),
    (Policy.build(dns=["*.svc.example"]), peer(dns=("api.svc.example",)), True),
    (Policy.build(dns=["*.svc.example"]), peer(dns=("a.b.svc.example",)), False),  # one label only
    (Policy.build(dns=["*.svc.example"]), peer(dns=("svc.example",)), False),
    (Policy.build(dns=["API.svc.example."]), peer(dns=("api.svc.example",)), True),
    (Policy.build(uri=["spiffe://td/ns/prod/*"]), peer(uris=("spiffe://td/ns/prod/web",)), True),
    (Policy.build(uri=["spiffe://td/ns/prod/*"]), peer(uris=("spiffe://td/ns/prod/web/x",)), False),
    (Policy.build(uri=["spiffe://td/ns/**"]), peer(uris=("spiffe://td/ns/prod/web/x",)), True),
    (Policy.build(uri=["spiffe://td/ns/prod/web"]), peer(uris=("spiffe://td/ns/prod/web2",)), False),
    (Policy.build(uri=["spiffe://td.example/a"]), peer(uris=("spiffe://tdXexample/a",)), False),
    (Policy.build(fingerprint=["AB:" * 31 + "AB"]), peer(), True),
    (Policy.build(fingerprint=["cd" * 32]), peer(), False),
])
def test_rules(policy: Policy, who: PeerIdentity, allowed: bool) -> None:
    assert policy.check(who).allowed is allowed


def test_rules_are_disjunctive() -> None:
    policy = Policy.build(cn=["bob"], uri=["spiffe://td/alice"])
    assert policy.check(peer("alice", uris=("spiffe://td/alice",))).allowed
    assert "URI" in policy.check(peer("alice", uris=("spiffe://td/alice",))).reason


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fingerprint": ["xyz"]}, "invalid fingerprint"),
    ({"dns": ["a.*.b"]}, "invalid DNS pattern"),
    ({"dns": ["*foo.b"]}, "invalid DNS pattern"),
    ({"cn": [""]}, "empty"),
])
def test_bad_rules_are_refused(kwargs: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.build(**kwargs)


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[allow]\ncn = ["alice"]\nuri = ["spiffe://td/**"]\n')
    policy = Policy.from_file(path)
    assert policy.cn == {"alice"} and policy.uri == {"spiffe://td/**"}
    assert policy.merged(Policy.build(cn=["bob"])).cn == {"alice", "bob"}


@pytest.mark.parametrize(("text", "message"), [
    ('[allow]\ncommon_name = ["alice"]\n', "unknown key"),
    ('[deny]\ncn = ["x"]\n', "unknown section"),
    ('[allow]\ncn = "alice"\n', "must be a list of strings"),
    ("[allow]\n", "no allow rules"),
    ("[allow\ncn=", "not valid TOML"),
])
def test_bad_policy_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Policy.from_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        Policy.from_file(tmp_path / "missing.toml")


@given(st.text(alphabet="abc/*.", max_size=12), st.text(alphabet="abc/.", max_size=12))
def test_uri_star_never_crosses_a_slash(pattern: str, uri: str) -> None:
    if "**" in pattern:
        return
    if Policy.build(uri=["spiffe://td/" + pattern]).check(peer(uris=("spiffe://td/" + uri,))).allowed:
        assert uri.count("/") == pattern.count("/")
