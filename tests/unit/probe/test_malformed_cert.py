"""A served certificate whose extensions cannot be parsed: judged, never a crash. Pure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

from cryptography import x509

from tests.unit.probe.test_checks import INTERMEDIATE, NOW, by_id, good
from tests.unit.probe.test_sessions import facts
from tests.zoo import Spec, build
from trustwire.pki.extensions import UNPARSABLE, find_extension, unparsable
from trustwire.probe.chain import explain_untrusted, out_of_order
from trustwire.probe.checks import Status, evaluate, hostname_matches, verdict
from trustwire.probe.report import dumps, to_json, to_junit, to_sarif
from trustwire.probe.session_wire import must_staple

SAN = x509.ObjectIdentifier("2.5.29.17")
BROKEN_SAN = x509.UnrecognizedExtension(SAN, bytes.fromhex("3003020101"))  # SEQUENCE { INTEGER 1 }


def malformed_leaf() -> x509.Certificate:
    return build(Spec(sans=None, extra=[(BROKEN_SAN, False)]))


def test_the_extension_readers_say_unparsable_instead_of_raising() -> None:
    leaf = malformed_leaf()
    assert unparsable(leaf) is not None and "subject_alternative_name" in str(unparsable(leaf))
    assert find_extension(leaf, x509.SubjectAlternativeName) is None
    assert not hostname_matches(leaf, "web.example")
    assert must_staple(leaf) is None
    assert out_of_order([leaf]) is None
    assert explain_untrusted([leaf], 20, "unable to get local issuer", None).kind == "untrusted-root"
    good_leaf = build(Spec())
    assert unparsable(good_leaf) is None and must_staple(good_leaf) is False
    assert find_extension(good_leaf, x509.SubjectAlternativeName) is not None


def test_a_malformed_leaf_fails_and_the_checks_that_need_extensions_skip() -> None:
    obs = good(https=True)
    obs.chain = [malformed_leaf()]
    obs.ocsp_stapled = False
    obs.sessions = replace(facts(must_staple=None),
                           no_sni=replace(facts().no_sni, leaf=obs.chain[0]))
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    malformed = by_id(checks, "cert.malformed")
    assert malformed.status is Status.FAIL and malformed.fix and "reissue" in malformed.fix
    assert malformed.detail.startswith(f"{UNPARSABLE}: ")
    for skipped in ("cert.hostname", "cert.must_staple"):
        assert by_id(checks, skipped).status is Status.SKIP
        assert by_id(checks, skipped).detail == f"not tested: {UNPARSABLE}"
    assert UNPARSABLE in by_id(checks, "cert.ocsp").detail
    assert "SANs: unreadable" in by_id(checks, "cert.subject").detail
    assert "its extensions cannot be parsed" in by_id(checks, "cert.no_sni").detail
    sarif = to_sarif(obs, INTERMEDIATE, checks)
    assert "cert.malformed" in {r["ruleId"] for r in sarif["runs"][0]["results"]
                                if r["level"] == "error"}
    root = ET.fromstring(to_junit(obs, INTERMEDIATE, checks))
    assert "cert.malformed" in {f.get("type") for f in root.findall("testcase/failure")}
    report = json.loads(dumps(to_json(obs, INTERMEDIATE, checks, verdict(checks))))
    assert report["verdict"]["pass"] is False


def test_a_well_formed_leaf_has_no_malformed_check() -> None:
    checks = evaluate(good(https=True), INTERMEDIATE, now=NOW)
    assert "cert.malformed" not in {c.id for c in checks}
    assert by_id(checks, "cert.hostname").status is Status.PASS
