"""The legacy suite table, reading replies, and the judge of hand-built hellos (no network)."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.legacy_responder import Behaviour, ClientHello, answer, parse_client_hello
from tests.unit.probe.test_checks import INTERMEDIATE, NOW, by_id, good
from trustwire.probe.checks import Status, evaluate, verdict, weaknesses
from trustwire.probe.hello import ALERT, HANDSHAKE, HelloSpec, ServerFlight, client_hello, record
from trustwire.probe.legacy import LegacyFacts, Outcome, Reply, judge_legacy, read_reply
from trustwire.probe.legacy_suites import LEGACY_SUITES, SSLV2_CIPHERS, suite_by_id
from trustwire.probe.report import dumps, to_json, to_junit, to_sarif
from trustwire.probe.tls_scan import _legacy_ciphers

HELLO = Reply(outcome=Outcome.HELLO, version=0x0303, cipher=0xC02F, compression=0,
              extensions=frozenset({23, 0xFF01}))


def test_table_ids_and_names_are_unique_and_parse() -> None:
    assert len({s.id for s in LEGACY_SUITES}) == len(LEGACY_SUITES)
    assert len({s.name for s in LEGACY_SUITES}) == len(LEGACY_SUITES)
    for suite in LEGACY_SUITES:
        assert suite.iana.startswith("TLS_") and "_WITH_" in suite.iana
        assert suite.kea.startswith("kx-") and suite.auth.startswith("auth-") and suite.digest
        assert suite.families, suite.iana  # every row belongs to a weak family
        assert suite_by_id(suite.id) is suite
    families = {f for s in LEGACY_SUITES for f in s.families}
    assert families == {"EXPORT", "RC4", "3DES", "DES", "NULL", "anonymous"}


def test_table_describes_suites_as_openssl_does() -> None:
    rc4 = suite_by_id(0x0005)
    assert rc4 is not None and rc4.as_cipher() == {
        "name": "RC4-SHA", "kea": "kx-rsa", "auth": "auth-rsa", "symmetric": "rc4",
        "aead": False, "digest": "sha1"}
    adh = suite_by_id(0x0017)
    assert adh is not None and adh.families == ("EXPORT", "RC4", "anonymous")
    assert adh.kea == "kx-dhe" and adh.auth == "auth-null"
    # Where the local OpenSSL still has a suite of the table, it describes it the same way.
    local = {c["id"] & 0xFFFF: c for c in _legacy_ciphers()}
    shared = [s for s in LEGACY_SUITES if s.id in local]
    assert shared, "the local OpenSSL should still have the NULL suites"
    for suite in shared:
        theirs = local[suite.id]
        assert (suite.name, suite.kea, suite.auth, suite.symmetric, suite.digest) == (
            theirs["name"], theirs["kea"], theirs["auth"], theirs["symmetric"], theirs["digest"])


@pytest.mark.parametrize("suite", LEGACY_SUITES, ids=lambda s: s.name)
def test_every_table_suite_is_judged_weak(suite) -> None:  # type: ignore[no-untyped-def]
    assert weaknesses(suite.as_cipher(), INTERMEDIATE)


@pytest.mark.parametrize("cipher", SSLV2_CIPHERS, ids=lambda c: c.name)
def test_every_sslv2_cipher_is_judged_weak(cipher) -> None:  # type: ignore[no-untyped-def]
    assert weaknesses(cipher.as_cipher(), INTERMEDIATE)


def test_single_des_is_named() -> None:
    des = suite_by_id(0x0009)
    assert des is not None
    assert "DES (56-bit key)" in weaknesses(des.as_cipher(), INTERMEDIATE)


@given(version=st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303]),
       cipher=st.integers(min_value=0, max_value=0xFFFF),
       offered=st.lists(st.integers(min_value=0, max_value=0xFFFF), max_size=20),
       asked=st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303]))
def test_a_server_hello_is_read_back_and_chose_only_what_was_offered(
    version: int, cipher: int, offered: list[int], asked: int,
) -> None:
    flight = ServerFlight()
    flight.feed(record(HANDSHAKE, version, _server_hello(version, cipher)))
    reply = read_reply(flight, closed=True, timed_out=False)
    assert reply.outcome is Outcome.HELLO and reply.version == version and reply.cipher == cipher
    chosen = reply.chose(asked, offered)
    assert (chosen is not None) == (asked == version and cipher in offered)


def test_replies_other_than_a_hello() -> None:
    alert = ServerFlight()
    alert.feed(record(ALERT, 0x0303, b"\x02\x56"))
    assert read_reply(alert, closed=True, timed_out=False) == Reply(outcome=Outcome.ALERT,
                                                                     alert=86)
    silent = ServerFlight()
    assert read_reply(silent, closed=False, timed_out=True).outcome is Outcome.TIMEOUT
    assert read_reply(silent, closed=True, timed_out=False).outcome is Outcome.CLOSED
    garbage = ServerFlight()
    garbage.feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert read_reply(garbage, closed=True, timed_out=False).outcome is Outcome.MALFORMED
    assert not Outcome.TIMEOUT.answered and Outcome.CLOSED.answered


@given(version=st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303]),
       ciphers=st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=300),
       compression=st.sampled_from([(0,), (1, 0)]))
def test_the_responder_reads_our_hellos_back(version: int, ciphers: list[int],
                                              compression: tuple[int, ...]) -> None:
    parsed = parse_client_hello(client_hello(HelloSpec(
        version=version, ciphers=tuple(ciphers), compression=compression, server_name="x.test")))
    assert isinstance(parsed, ClientHello)
    assert parsed.version == version and parsed.ciphers == tuple(ciphers)
    assert parsed.compression == compression
    assert (23 in parsed.extensions) == (version > 0x0300)


def test_the_responder_answers_as_configured() -> None:
    behaviour = Behaviour(versions=(0x0301, 0x0303), suites=(0x0005,), honours_fallback_scsv=True)
    hello = parse_client_hello(client_hello(HelloSpec(version=0x0301,
                                                      ciphers=(0x0005, 0x5600))))
    flight = ServerFlight()
    flight.feed(answer(behaviour, hello))
    assert flight.alert is not None and flight.alert.description == 86


def test_judge_a_sound_server() -> None:
    facts = LegacyFacts(fallback_versions=("TLSv1.2", "TLSv1.3"),
                        fallback=Reply(outcome=Outcome.ALERT, alert=86),
                        features_version="TLSv1.2", features=HELLO)
    statuses = {c.id: c.status for c in judge_legacy(facts)}
    assert statuses == {"tls.fallback_scsv": Status.PASS, "tls.secure_renegotiation": Status.PASS,
                        "tls.extended_master_secret": Status.PASS, "vuln.crime": Status.PASS}
    assert judge_legacy(None) == []


def test_judge_a_careless_server() -> None:
    careless = Reply(outcome=Outcome.HELLO, version=0x0303, cipher=0xC02F, compression=1)
    facts = LegacyFacts(fallback_versions=("TLSv1.1", "TLSv1.2"),
                        fallback=Reply(outcome=Outcome.HELLO, version=0x0302, cipher=0x000A),
                        features_version="TLSv1.2", features=careless)
    checks = {c.id: c for c in judge_legacy(facts)}
    assert checks["tls.fallback_scsv"].status is Status.FAIL
    assert "TLS 1.1" in checks["tls.fallback_scsv"].detail
    assert checks["tls.secure_renegotiation"].status is Status.FAIL
    assert checks["tls.extended_master_secret"].status is Status.WARN
    assert checks["vuln.crime"].status is Status.FAIL and checks["vuln.crime"].fix
    assert all(c.fix for c in checks.values() if c.status in (Status.FAIL, Status.WARN))


def test_judge_says_not_applicable_and_not_tested() -> None:
    tls13_only = {c.id: c for c in judge_legacy(LegacyFacts())}
    assert {c.status for c in tls13_only.values()} == {Status.INFO}
    assert "not applicable" in tls13_only["tls.extended_master_secret"].detail
    silent = LegacyFacts(fallback_versions=("TLSv1.2", "TLSv1.3"),
                         fallback=Reply(outcome=Outcome.TIMEOUT), features_version="TLSv1.2",
                         features=Reply(outcome=Outcome.UNREACHABLE, detail="refused"))
    assert {c.status for c in judge_legacy(silent)} == {Status.SKIP}
    refused = LegacyFacts(fallback_versions=("TLSv1.2", "TLSv1.3"),
                          fallback=Reply(outcome=Outcome.ALERT, alert=40))
    check = next(c for c in judge_legacy(refused) if c.id == "tls.fallback_scsv")
    assert check.status is Status.SKIP and "handshake_failure" in check.detail


def test_a_downgrade_below_tls13_is_a_warning() -> None:
    facts = LegacyFacts(fallback_versions=("TLSv1.2", "TLSv1.3"), fallback=HELLO)
    check = next(c for c in judge_legacy(facts) if c.id == "tls.fallback_scsv")
    assert check.status is Status.WARN and "downgrade sentinel" in check.detail


def _server_hello(version: int, cipher: int) -> bytes:
    body = struct.pack(">H", version) + b"\x11" * 32 + b"\x00" + struct.pack(">HB", cipher, 0)
    return b"\x02" + len(body).to_bytes(3, "big") + body


def test_failures_reach_json_sarif_and_junit() -> None:
    obs = good()
    obs.legacy = LegacyFacts(features_version="TLSv1.2", features=Reply(
        outcome=Outcome.HELLO, version=0x0303, cipher=0xC02F, compression=1,
        extensions=frozenset({23, 0xFF01})), suites={"TLSv1.2": [0x0005]})
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    assert by_id(checks, "vuln.crime").status is Status.FAIL
    data = json.loads(dumps(to_json(obs, INTERMEDIATE, checks, verdict(checks))))
    assert data["legacy"]["features"]["compression"] is True
    assert data["legacy"]["suites"] == {"TLSv1.2": ["TLS_RSA_WITH_RC4_128_SHA"]}
    sarif = to_sarif(obs, INTERMEDIATE, checks)
    assert ("vuln.crime", "error") in [(r["ruleId"], r["level"])
                                       for r in sarif["runs"][0]["results"]]
    suite = ET.fromstring(to_junit(obs, INTERMEDIATE, checks))
    assert "vuln.crime" in [f.get("type") for f in suite.findall("testcase/failure")]


def test_not_applicable_is_never_said_from_unknown_versions() -> None:
    """A server that stopped answering: TLS 1.2/1.3 unknown is not 'single version' or
    'only TLS 1.3' (second review)."""
    from trustwire.probe.legacy import LegacyFacts, judge_legacy
    facts = LegacyFacts(versions_unknown=["TLSv1.2", "TLSv1.3"])
    checks = {c.id: c for c in judge_legacy(facts)}
    for key in ("tls.fallback_scsv", "tls.secure_renegotiation", "tls.extended_master_secret",
                "vuln.crime"):
        assert checks[key].status.value == "skip", (key, checks[key])
        assert "unknown" in checks[key].detail
    known = {c.id: c for c in judge_legacy(LegacyFacts())}
    assert known["tls.fallback_scsv"].status.value == "info"  # one version, known: n/a
