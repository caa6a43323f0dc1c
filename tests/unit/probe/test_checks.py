"""Judging rules, on synthetic observations (no network)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from cryptography import x509

from tests.zoo import Spec, build, key_usage
from trustwire.probe.checks import Check, Status, evaluate, hostname_matches, verdict, weaknesses
from trustwire.probe.observations import EnforcementCase, Observations, Support
from trustwire.probe.profiles import PROFILES
from trustwire.probe.target import ProbeTarget

NOW = dt.datetime.now(dt.UTC)
INTERMEDIATE = PROFILES["intermediate"]
GOOD_TLS12 = [{"name": "ECDHE-ECDSA-AES128-GCM-SHA256", "kea": "kx-ecdhe", "auth": "auth-ecdsa",
               "symmetric": "aes-128-gcm", "aead": True, "digest": None}]


def good(https: bool = False) -> Observations:
    obs = Observations(target=ProbeTarget(host="127.0.0.1", port=443, server_name="web.example",
                                          https=https), started=NOW)
    obs.versions = {"SSLv3": Support(None, "built without"), "TLSv1": Support(False),
                    "TLSv1.1": Support(False), "TLSv1.2": Support(True), "TLSv1.3": Support(True)}
    obs.ciphers = {"TLSv1.2": list(GOOD_TLS12),
                   "TLSv1.3": [{"name": "TLS_AES_128_GCM_SHA256"}]}
    obs.groups = {"x25519": Support(True), "secp256r1": Support(True)}
    obs.chain = [build(Spec())]
    obs.trusted = True
    obs.ocsp_stapled = True
    obs.client_auth_requested = False
    if https:
        obs.http_status = 200
        obs.http_verified = True
        obs.http_headers = {"strict-transport-security": "max-age=63072000; includeSubDomains",
                            "x-content-type-options": "nosniff",
                            "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
                            "referrer-policy": "no-referrer"}
    return obs


def by_id(checks: list[Check], id_: str) -> Check:
    return next(c for c in checks if c.id == id_)


def test_a_good_server_passes_cleanly() -> None:
    checks = evaluate(good(https=True), INTERMEDIATE, now=NOW)
    result = verdict(checks)
    assert result.passed and result.failures == 0 and result.warnings == 0, [
        c for c in checks if c.status in (Status.FAIL, Status.WARN)]


def test_old_protocols_fail_with_a_fix() -> None:
    obs = good()
    obs.versions["TLSv1"] = Support(True)
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "protocol.tlsv1")
    assert check.status is Status.FAIL and "TLS 1.0 is accepted" in check.detail
    assert check.fix and "ssl_protocols" in check.fix


def test_modern_profile_fails_tls12() -> None:
    result = verdict(evaluate(good(), PROFILES["modern"], now=NOW))
    assert not result.passed


@pytest.mark.parametrize(("cipher", "reason"), [
    ({"name": "AES128-SHA", "kea": "kx-rsa", "symmetric": "aes-128-cbc", "digest": "sha1"},
     "RSA key exchange"),
    ({"name": "ECDHE-RSA-AES128-SHA", "kea": "kx-ecdhe", "symmetric": "aes-128-cbc",
      "digest": "sha1"}, "CBC with SHA-1"),
    ({"name": "DES-CBC3-SHA", "kea": "kx-rsa", "symmetric": "des-ede3-cbc", "digest": "sha1"},
     "3DES"),
    ({"name": "ECDHE-RSA-NULL-SHA", "kea": "kx-ecdhe", "symmetric": "null", "digest": "sha1"},
     "NULL"),
    ({"name": "DHE-RSA-AES128-GCM-SHA256", "kea": "kx-dhe", "symmetric": "aes-128-gcm",
      "digest": None}, "DHE"),
    ({"name": "AECDH-AES128-SHA", "kea": "kx-ecdhe", "auth": "auth-null",
      "symmetric": "aes-128-cbc", "digest": "sha1"}, "anonymous"),
])
def test_weak_suites_are_named(cipher: dict[str, str], reason: str) -> None:
    assert any(reason in w for w in weaknesses(cipher, INTERMEDIATE))
    obs = good()
    obs.ciphers["TLSv1.2"].append(cipher)
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    weak = [c for c in checks if c.id.startswith("ciphers.weak")]
    assert weak and all(c.status is Status.FAIL for c in weak)
    assert by_id(checks, "ciphers.tlsv1_2").status is Status.FAIL


def test_profile_suites_are_not_weak() -> None:
    for name in INTERMEDIATE.ciphers:
        assert weaknesses({"name": name, "kea": "kx-ecdhe", "symmetric": "aes-128-gcm",
                           "aead": True, "digest": None}, INTERMEDIATE) == []


def test_certificate_problems() -> None:
    obs = good()
    obs.chain = [build(Spec(not_before=NOW - dt.timedelta(days=400),
                            not_after=NOW - dt.timedelta(days=1)))]
    obs.trusted = False
    obs.trust_error = "it has expired"
    checks = evaluate(replace(obs, target=replace(obs.target, server_name="other.example")),
                      INTERMEDIATE, now=NOW)
    assert by_id(checks, "cert.validity").status is Status.FAIL
    assert by_id(checks, "cert.hostname").status is Status.FAIL
    assert by_id(checks, "cert.trusted").status is Status.FAIL
    assert by_id(checks, "cert.lifetime").status is Status.FAIL  # 399 days > 366


def test_chain_out_of_order() -> None:
    obs = good()
    obs.chain = [build(Spec()), build(Spec(cn="unrelated"))]
    assert by_id(evaluate(obs, INTERMEDIATE, now=NOW), "cert.chain").status is Status.FAIL


def test_missing_hsts_and_redirect() -> None:
    obs = good(https=True)
    del obs.http_headers["strict-transport-security"]
    obs.redirect = (200, None)
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    assert by_id(checks, "http.hsts").status is Status.FAIL
    assert by_id(checks, "http.redirect").status is Status.FAIL
    obs.http_headers["strict-transport-security"] = "max-age=300"
    assert by_id(evaluate(obs, INTERMEDIATE, now=NOW), "http.hsts").status is Status.FAIL


def test_enforcement_names_what_got_in() -> None:
    obs = good()
    obs.client_auth_requested = True
    obs.enforcement = [EnforcementCase("no certificate", True, "refused"),
                       EnforcementCase("a self-signed certificate", False, "got in")]
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    enforced = by_id(checks, "clientauth.enforced")
    assert enforced.status is Status.FAIL
    assert "a self-signed certificate got in" in enforced.detail
    assert not verdict(checks).passed


def test_require_client_auth_profile() -> None:
    profile = replace(INTERMEDIATE, require_client_auth=True)
    assert by_id(evaluate(good(), profile, now=NOW), "clientauth.requested").status is Status.FAIL


def test_hostname_matching() -> None:
    import ipaddress

    from cryptography import x509

    cert = build(Spec(sans=[x509.DNSName("*.example.com"), x509.DNSName("a.test"),
                            x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]))
    assert hostname_matches(cert, "www.example.com")
    assert not hostname_matches(cert, "a.b.example.com")
    assert not hostname_matches(cert, "example.com")
    assert hostname_matches(cert, "A.TEST.")
    assert hostname_matches(cert, "10.0.0.1")
    assert not hostname_matches(cert, "10.0.0.2")


def test_groups_outside_the_profile_fail() -> None:
    obs = good()
    obs.groups["secp521r1"] = Support(True)
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "groups.extra")
    assert check.status is Status.FAIL and "secp521r1" in check.detail
    assert check.fix and "ssl_ecdh_curve" in check.fix


def test_a_missing_staple_fails_only_when_there_is_a_responder_to_staple_from() -> None:
    ocsp = x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://ocsp.example"))])
    obs = good()
    obs.ocsp_stapled = False
    obs.chain = [build(Spec(extra=[(ocsp, False)]))]
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "cert.ocsp")
    assert check.status is Status.FAIL and "http://ocsp.example" in check.detail
    obs.chain = [build(Spec())]
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "cert.ocsp")
    assert check.status is Status.INFO and "nothing to staple" in check.detail


def test_key_exchange_sizes_are_judged_by_the_profile() -> None:
    obs = good()
    obs.dh_param_size, obs.ecdh_param_size = 1024, 256
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    assert by_id(checks, "kex.dh_size").status is Status.FAIL
    assert by_id(checks, "kex.ecdh_size").status is Status.PASS
    obs.dh_param_size, obs.ecdh_param_size = 2048, 224
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    assert by_id(checks, "kex.dh_size").status is Status.PASS
    assert by_id(checks, "kex.ecdh_size").status is Status.FAIL


def test_a_weak_suite_preferred_over_a_strong_one_fails() -> None:
    obs = good()
    weak = {"name": "AES128-SHA", "kea": "kx-rsa", "auth": "auth-rsa", "symmetric": "aes-128-cbc",
            "aead": False, "digest": "sha1"}
    obs.ciphers["TLSv1.2"] = [*GOOD_TLS12, weak]
    obs.server_order = True
    obs.server_cipher_order = ["AES128-SHA", "ECDHE-ECDSA-AES128-GCM-SHA256"]
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "ciphers.server_order")
    assert check.status is Status.FAIL and "picks AES128-SHA" in check.detail
    obs.server_cipher_order.reverse()
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "ciphers.server_order")
    assert check.status is Status.INFO


def test_compressed_https_responses_warn_of_breach() -> None:
    obs = good(https=True)
    assert by_id(evaluate(obs, INTERMEDIATE, now=NOW), "http.compression").status is Status.PASS
    obs.http_headers["content-encoding"] = "gzip"
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "http.compression")
    assert check.status is Status.WARN and "BREACH" in check.detail and check.fix


def test_a_root_in_the_served_chain_is_not_blamed_for_another_failure() -> None:
    """openssl s_server -cert_chain with the root, a SHA-1 leaf and --ca holding that root:
    OpenSSL says "CA signature digest algorithm too weak" (68); that is the reason, not an
    untrusted root (the fix "pass --ca" would be the option already given)."""
    obs = good()
    obs.chain = [build(Spec()), build(Spec(cn="Zoo CA", ca=True, self_signed=True,
                                           ku=key_usage(key_cert_sign=True, crl_sign=True)))]
    obs.trusted = False
    obs.trust_error = "strict verification failed (CA signature digest algorithm too weak)"
    obs.trust_store = "ca.pem"
    weak = by_id(evaluate(replace(obs, trust_code=68), INTERMEDIATE, now=NOW), "cert.trusted")
    assert "do not trust" not in weak.detail and "too weak" in weak.detail
    assert weak.fix is not None and "--ca with it" not in weak.fix
    untrusted = by_id(evaluate(replace(obs, trust_code=19), INTERMEDIATE, now=NOW), "cert.trusted")
    assert "issued by a root you do not trust: CN=Zoo CA" in untrusted.detail


def test_a_chain_that_got_no_answer_is_not_tested_not_missing() -> None:
    obs = good()
    obs.chain, obs.trusted, obs.ocsp_stapled = [], None, None
    obs.chain_untested = obs.trust_error = "no answer within 5s"
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    assert by_id(checks, "cert.present").status is Status.SKIP
    assert by_id(checks, "cert.present").detail == "not tested: no answer within 5s"
    assert by_id(checks, "cert.trusted").status is Status.SKIP
    obs.chain_untested = None  # answered, and no certificate in it: the server sent none
    assert by_id(evaluate(obs, INTERMEDIATE, now=NOW), "cert.present").status is Status.FAIL


def test_an_unverified_chain_is_skipped_not_left_out() -> None:
    obs = good()
    obs.trusted, obs.trust_error = None, "the server stopped answering"
    check = by_id(evaluate(obs, INTERMEDIATE, now=NOW), "cert.trusted")
    assert check.status is Status.SKIP and check.detail == "not verified: the server stopped answering"


def test_groups_that_got_no_answer_are_not_tested_not_refused() -> None:
    obs = good()
    obs.groups = {g: Support(None, "no answer within 5s") for g in ("x25519", "secp256r1")}
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    profile = by_id(checks, "groups.profile")
    assert profile.status is Status.SKIP and "none of the profile" not in profile.detail
    assert "no answer within 5s" in by_id(checks, "groups.untested").detail
    obs.groups = {"x25519": Support(False), "secp256r1": Support(False)}
    assert by_id(evaluate(obs, INTERMEDIATE, now=NOW), "groups.profile").status is Status.FAIL


def test_an_incomplete_audit_never_passes() -> None:
    obs = good()
    assert "probe.incomplete" not in {c.id for c in evaluate(obs, INTERMEDIATE, now=NOW)}
    obs.versions = {v: Support(None, "no answer within 1 s") for v in obs.versions}
    obs.chain_untested = "no answer within 1 s"
    obs.stalled = True
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    found = by_id(checks, "probe.incomplete")
    assert found.status is Status.FAIL and "which TLS versions" in found.detail
    assert "its certificate" in found.detail and not verdict(checks).passed
