"""Judging renegotiation, resumption, 0-RTT, must-staple, no-SNI and SCT facts (no network)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from cryptography import x509

from tests.unit.probe.test_checks import NOW, by_id, good
from tests.zoo import Spec, build
from trustwire.probe.checks import Status, evaluate, verdict
from trustwire.probe.observations import Observations
from trustwire.probe.profiles import PROFILES
from trustwire.probe.report import to_json, to_junit, to_sarif
from trustwire.probe.session_wire import Sct, SessionTicket
from trustwire.probe.sessions import (
    ONE_WEEK,
    EarlyDataFacts,
    NoSniFacts,
    Renegotiation,
    Resumption,
    SctFacts,
    SessionFacts,
)

INTERMEDIATE, MODERN = PROFILES["intermediate"], PROFILES["modern"]
DAY = 86400


def facts(**changes: object) -> SessionFacts:
    base = SessionFacts(
        renegotiation=Renegotiation(False, "the server answered with a no_renegotiation alert"),
        resumption=[Resumption("session-id", False, note="a full handshake again"),
                    Resumption("ticket-tls1.2", True, tickets=[SessionTicket(DAY, None, 100)]),
                    Resumption("ticket-tls1.3", True, tickets=[SessionTicket(DAY, None, 100)])],
        early_data=EarlyDataFacts(None, None, "the TLS 1.3 tickets do not offer early data"),
        no_sni=NoSniFacts(applicable=True, refused=False, leaf=build(Spec()),
                          valid_for_name=True, same_as_sni=True),
        scts=SctFacts([], [], []), must_staple=False)
    return replace(base, **changes)  # type: ignore[arg-type]


def observed(**changes: object) -> Observations:
    obs = good()
    obs.sessions = facts(**changes)
    return obs


def check(obs: Observations, id_: str, profile: object = INTERMEDIATE):  # type: ignore[no-untyped-def]
    return by_id(evaluate(obs, profile, now=NOW), id_)  # type: ignore[arg-type]


def test_a_server_with_sound_sessions_passes_cleanly() -> None:
    checks = evaluate(observed(), INTERMEDIATE, now=NOW)
    result = verdict(checks)
    assert result.passed and result.warnings == 0, [c for c in checks if c.status in (
        Status.FAIL, Status.WARN)]
    ids = {c.id for c in checks}
    assert {"session.renegotiation", "session.resumption.session_id",
            "session.resumption.ticket_tls1_2", "session.resumption.ticket_tls1_3",
            "session.ticket_lifetime", "session.early_data", "cert.must_staple", "cert.no_sni",
            "cert.sct"} <= ids


def test_nothing_collected_adds_no_checks() -> None:
    assert not any(c.id.startswith("session.") for c in evaluate(good(), INTERMEDIATE, now=NOW))


def test_accepted_renegotiation_warns_and_fails_under_modern() -> None:
    obs = observed(renegotiation=Renegotiation(True, "a second handshake completed"))
    found = check(obs, "session.renegotiation")
    assert found.status is Status.WARN and found.fix and "renegotiation" in found.fix
    assert check(obs, "session.renegotiation", MODERN).status is Status.FAIL
    assert check(observed(), "session.renegotiation").status is Status.PASS
    untested = observed(renegotiation=Renegotiation(None, "the server requires a client cert"))
    assert check(untested, "session.renegotiation").status is Status.SKIP
    tls13 = observed(renegotiation=Renegotiation(False, "not applicable", applicable=False))
    assert check(tls13, "session.renegotiation").status is Status.INFO


@pytest.mark.parametrize(("tls12", "tls13", "status"), [
    (DAY, DAY, Status.PASS),
    (ONE_WEEK, ONE_WEEK, Status.PASS),
    (8 * DAY, ONE_WEEK, Status.WARN),
    (DAY, ONE_WEEK + 1, Status.FAIL),
    (0, DAY, Status.PASS),
])
def test_ticket_lifetime(tls12: int, tls13: int, status: Status) -> None:
    obs = observed(resumption=[
        Resumption("ticket-tls1.2", True, tickets=[SessionTicket(tls12, None, 1)]),
        Resumption("ticket-tls1.3", True, tickets=[SessionTicket(DAY, None, 1),
                                                   SessionTicket(tls13, None, 1)])])
    found = check(obs, "session.ticket_lifetime")
    assert found.status is status, found
    if status is not Status.PASS:
        assert found.fix and "ssl_session_timeout" in found.fix


def test_no_tickets_no_lifetime_check_and_resumption_facts() -> None:
    obs = observed(resumption=[
        Resumption("session-id", True),
        Resumption("ticket-tls1.2", False, note="no ticket issued; resumed by session ID instead"),
        Resumption("ticket-tls1.3", None, note="the server requires a client certificate"),
    ])
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    assert "session.ticket_lifetime" not in {c.id for c in checks}
    assert by_id(checks, "session.resumption.session_id").detail == "sessions resume"
    assert "resumed by session ID" in by_id(checks, "session.resumption.ticket_tls1_2").detail
    assert by_id(checks, "session.resumption.ticket_tls1_3").status is Status.SKIP


def test_early_data() -> None:
    accepted = check(observed(early_data=EarlyDataFacts(16384, True, "accepted")),
                     "session.early_data")
    assert accepted.status is Status.WARN and "16384" in accepted.detail
    assert accepted.fix and "ssl_early_data off" in accepted.fix
    unconfirmed = check(observed(early_data=EarlyDataFacts(16384, None, "cannot send")),
                        "session.early_data")
    assert unconfirmed.status is Status.WARN and "not confirmed" in unconfirmed.detail
    rejected = check(observed(early_data=EarlyDataFacts(16384, False, "rejected")),
                     "session.early_data")
    assert rejected.status is Status.PASS
    assert check(observed(), "session.early_data").status is Status.PASS
    untested = check(observed(early_data=EarlyDataFacts(None, None, "the server requires a "
                                                        "client certificate", tested=False)),
                     "session.early_data")
    assert untested.status is Status.SKIP and untested.detail.startswith("not tested")


def test_must_staple() -> None:
    obs = observed(must_staple=True)
    assert check(obs, "cert.must_staple").status is Status.PASS  # good() has a staple
    obs.ocsp_stapled = False
    failed = check(obs, "cert.must_staple")
    assert failed.status is Status.FAIL and failed.fix and "ssl_stapling on" in failed.fix
    obs.ocsp_stapled = None
    assert check(obs, "cert.must_staple").status is Status.SKIP
    assert check(observed(), "cert.must_staple").status is Status.INFO
    assert "cert.must_staple" not in {c.id for c in evaluate(observed(must_staple=None),
                                                             INTERMEDIATE, now=NOW)}


def test_no_sni_facts() -> None:
    other = build(Spec(cn="default.example", sans=[x509.DNSName("default.example")]))
    obs = observed(no_sni=NoSniFacts(applicable=True, refused=False, leaf=other,
                                     valid_for_name=False, same_as_sni=False))
    found = check(obs, "cert.no_sni")
    assert found.status is Status.INFO
    assert "a different certificate" in found.detail and "DNS:default.example" in found.detail
    assert "not valid for web.example" in found.detail
    refused = check(observed(no_sni=NoSniFacts(applicable=True, refused=True, note="alert")),
                    "cert.no_sni")
    assert refused.status is Status.INFO and "refuses clients without SNI" in refused.detail
    ip = check(observed(no_sni=NoSniFacts(applicable=False, note="an IP address")), "cert.no_sni")
    assert ip.status is Status.INFO and ip.detail.startswith("not applicable")


def test_sct_facts_name_counts_and_log_ids() -> None:
    sct = Sct(version=0, log_id=b"\x01" * 32, timestamp=NOW)
    found = check(observed(scts=SctFacts([sct, sct], [sct], None)), "cert.sct")
    assert found.status is Status.INFO
    assert "embedded: 2" in found.detail and "TLS extension: 1" in found.detail
    assert "stapled OCSP: not read" in found.detail and "AQEBAQEB" in found.detail


def test_json_sarif_and_junit_carry_the_family() -> None:
    obs = observed(must_staple=True, renegotiation=Renegotiation(True, "renegotiated"))
    obs.ocsp_stapled = False
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    data = to_json(obs, INTERMEDIATE, checks, verdict(checks))
    assert data["sessions"]["must_staple"] is True
    assert data["sessions"]["renegotiation"]["client_initiated_accepted"] is True
    assert data["sessions"]["no_sni"]["sans"] == ["DNS:web.example"]
    assert to_json(good(), INTERMEDIATE, [], verdict([]))["sessions"] is None
    results = {(r["ruleId"], r["level"]) for r in to_sarif(obs, INTERMEDIATE, checks)["runs"][0][
        "results"]}
    assert {("cert.must_staple", "error"), ("session.renegotiation", "warning")} <= results
    root = ET.fromstring(to_junit(obs, INTERMEDIATE, checks))
    assert "cert.must_staple" in {f.get("type") for f in root.findall("testcase/failure")}
