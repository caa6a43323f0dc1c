"""Policy decisions over identities: pure, no sockets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustwire.authz import Policy
from trustwire.errors import ConfigError
from trustwire.identity import PeerIdentity

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
    assert not decision.allowed and decision.code == "policy"
    # The peer is told who was refused, never the allow-list; the audit detail has the rules.
    assert decision.reason == "CN=alice is not allowed by the access policy"
    assert "bob" not in decision.reason and "CN bob" in decision.detail
    assert "CN bob" in decision.log_reason


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


@given(st.text(alphabet="abc/*.", max_size=12), st.text(alphabet="abc/.%?#", max_size=12))
def test_uri_star_never_crosses_a_slash(pattern: str, uri: str) -> None:
    try:
        policy = Policy.build(uri=["spiffe://td/" + pattern])
    except ConfigError:
        return  # empty, '.' or '..' segments, or a misplaced '**': refused as a pattern
    if policy.check(peer(uris=("spiffe://td/" + uri,))).allowed:
        segments = uri.split("/")
        assert all(s not in ("", ".", "..") for s in segments)
        assert not any(c in uri for c in "%?#")
        if "**" not in pattern:
            assert uri.count("/") == pattern.count("/")


@pytest.mark.parametrize("uri", [
    "spiffe://td/ns/..", "spiffe://td/ns/.", "spiffe://td/ns/", "spiffe://td/ns//web",
    "spiffe://td/ns/a%2Fb", "spiffe://td/ns/a%2fb", "spiffe://td/ns/web?x=1", "spiffe://td/ns/web#f",
    "spiffe://td/ns/we\nb", "spiffe://td/ns/web\n", "spiffe://td/ns/w\x00", "spiffe://td/ns/w eb",
    "spiffe://td/ns/wéb", "spiffe://td/ns/a\\b", "spiffe://td.evil/ns/web", "spiffe://td/ns",
])
def test_uri_star_refuses_lookalikes(uri: str) -> None:
    assert not Policy(uri={"spiffe://td/ns/*"}).check(peer(uris=(uri,))).allowed


@pytest.mark.parametrize("uri", [
    "spiffe://td/../../admin", "spiffe://td/ns/../admin", "spiffe://td//admin", "spiffe://td/",
    "spiffe://td/a/%2e%2e/admin", "spiffe://td/a?b", "spiffe://td/a#b", "spiffe://td",
])
def test_double_star_never_matches_dot_segments_or_escapes(uri: str) -> None:
    assert not Policy(uri={"spiffe://td/**"}).check(peer(uris=(uri,))).allowed


def test_double_star_matches_one_or_more_segments() -> None:
    policy = Policy(uri={"spiffe://td/ns/**"})
    assert policy.check(peer(uris=("spiffe://td/ns/a",))).allowed
    assert policy.check(peer(uris=("spiffe://td/ns/a/b/c",))).allowed
    assert not policy.check(peer(uris=("spiffe://td/nsx/a",))).allowed


@pytest.mark.parametrize("pattern", [
    "spiffe://td/ns/**/web", "spiffe://td/a/../b", "spiffe://td//a", "spiffe://td/a/",
    "spiffe://*/a", "spiffe://td/a?x", "spiffe://td/a#x", "spiffe://td/a%2F", "td/a", "spiffe://td/a**",
])
def test_bad_uri_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError, match="invalid URI pattern"):
        Policy(uri={pattern})


@pytest.mark.parametrize("value", ["sha256:" + "AB" * 32, "SHA256:" + ":".join(["ab"] * 32),
                                   "ab" * 32, "AB:" * 31 + "AB"])
def test_fingerprint_forms_are_normalised(value: str) -> None:
    policy = Policy(fingerprint={value})
    assert policy.fingerprint == {"ab" * 32}
    assert policy.check(peer()).allowed
    assert Policy.build(fingerprint=[value]) == policy


def test_constructor_validates_like_build() -> None:
    """tw.Policy(...) once skipped the checks: a colon fingerprint silently never matched."""
    assert Policy(fingerprint={"AB:" * 31 + "AB"}).check(peer()).allowed
    assert Policy(dns={"API.svc.example."}).dns == {"api.svc.example"}
    with pytest.raises(ConfigError, match="invalid fingerprint"):
        Policy(fingerprint={"xyz"})
    with pytest.raises(ConfigError, match="not one string"):
        Policy(cn="alice")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["cn", "ou", "dns", "uri"])
@pytest.mark.parametrize("value", ["alice\n", "ali\x00ce", "alice\r", "\x1bali"])
def test_rules_with_control_characters_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError):
        Policy.build(**{key: [value if key != "uri" else "spiffe://td/" + value]})


@pytest.mark.parametrize("name", ["a\x00.example.com", " a.example.com", "a b.example.com",
                                  "ä.example.com", ".example.com", "-.example.com",
                                  "\u212aey.example.com"])
def test_a_dns_wildcard_stands_for_a_real_label_only(name: str) -> None:
    """Review finding: *.example.com admitted labels with NUL or spaces (a lenient CA's)."""
    assert not Policy(dns={"*.example.com"}).check(peer(dns=(name,))).allowed
    assert Policy(dns={"*.example.com"}).check(peer(dns=("api-1.example.com",))).allowed


def test_unicode_dns_patterns_compare_as_a_labels() -> None:
    policy = Policy(dns={"bücher.example"})
    assert policy.dns == {"xn--bcher-kva.example"}
    assert policy.check(peer(dns=("xn--bcher-kva.example",))).allowed


@pytest.mark.parametrize("pattern", ["*", "a..b", "a b.example", "*.*.example", "a*.example",
                                     "-a.example", "a_.example\x00"])
def test_bad_dns_patterns(pattern: str) -> None:
    with pytest.raises(ConfigError):
        Policy(dns={pattern})


def test_a_kelvin_sign_does_not_pass_for_k() -> None:
    """Review finding: "\\u212aey.example.com".lower() is "key.example.com"."""
    assert not Policy(dns={"key.example.com"}).check(peer(dns=("\u212aey.example.com",))).allowed
