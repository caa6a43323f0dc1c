"""Report formats: JSON schema, SARIF 2.1.0, JUnit XML."""

from __future__ import annotations

import ipaddress
import json
import xml.etree.ElementTree as ET

import pytest
from cryptography import x509
from rich.console import Console

from tests.unit.probe.test_checks import NOW, good
from tests.zoo import Spec, build
from trustwire.cli.common import out_console
from trustwire.probe.checks import Check, evaluate, verdict
from trustwire.probe.observations import EnforcementCase, Observations, Support
from trustwire.probe.profiles import PROFILES
from trustwire.probe.report import SCHEMA, dumps, render_human, to_json, to_junit, to_sarif

PROFILE = PROFILES["intermediate"]


def failing():  # type: ignore[no-untyped-def]
    obs = good(https=True)
    obs.versions["TLSv1"] = Support(True)
    return obs


def test_json_schema_fields() -> None:
    obs = failing()
    checks = evaluate(obs, PROFILE, now=NOW)
    data = json.loads(dumps(to_json(obs, PROFILE, checks, verdict(checks))))
    assert data["schema"] == SCHEMA == "trustwire.probe/1"
    assert data["profile"]["guidelines"].endswith("/6.0.json")
    assert {"protocols", "cipher_suites", "groups", "certificate", "client_auth", "http",
            "untested", "checks", "verdict"} <= set(data)
    assert data["verdict"] == {"pass": False, "failures": 1, "warnings": 0}
    assert {"version": "TLSv1", "accepted": True, "note": None} in data["protocols"]


def test_sarif_reports_failures_as_errors() -> None:
    obs = failing()
    sarif = to_sarif(obs, PROFILE, evaluate(obs, PROFILE, now=NOW))
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("protocol.tlsv1", "error")]
    assert sarif["runs"][0]["tool"]["driver"]["rules"][0]["id"] == "protocol.tlsv1"


def test_junit_counts_and_failure() -> None:
    obs = failing()
    checks = evaluate(obs, PROFILE, now=NOW)
    root = ET.fromstring(to_junit(obs, PROFILE, checks))
    assert root.tag == "testsuite" and int(root.get("tests", 0)) == len(checks)
    assert root.get("failures") == "1"
    failures = root.findall("testcase/failure")
    assert len(failures) == 1 and failures[0].get("type") == "protocol.tlsv1"


def test_human_report_prints_what_the_server_sent_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    """A server's certificate is the server's to write: a subject that looks like rich markup
    prints as written (no crash on ``[/x]``, no hidden text or hyperlink), and an IPv6 SAN keeps
    its colons (``:1234:`` is not an emoji code). Rendered on the console the CLI uses."""
    subject = "[link=https://evil.example]Bank[/link] [/x]"
    obs = good()
    obs.chain = [build(Spec(cn=subject, sans=[
        x509.DNSName("web.example"), x509.IPAddress(ipaddress.ip_address("fd00::1234:5678"))]))]
    checks = evaluate(obs, PROFILE, now=NOW)
    render_human(out_console(), obs, PROFILE, checks, verdict(checks))
    out = capsys.readouterr().out
    assert f"CN={subject}" in out, out
    assert "fd00::1234:5678" in out, out


def _hostile() -> tuple[Observations, list[Check]]:
    """A server whose 403 page quotes rich markup and control characters: the enforcement
    detail carries them into every report."""
    obs = good()
    obs.client_auth_requested = True
    obs.enforcement = [EnforcementCase(
        case="no certificate", refused=False,
        detail="accepted the handshake and then answered HTTP 403 (bad certificate [/bold] "
               "\x1b[31m\x01\x0c here)")]
    return obs, evaluate(obs, PROFILE, now=NOW)


def test_junit_stays_well_formed_when_the_server_quotes_control_characters() -> None:
    obs, checks = _hostile()
    root = ET.fromstring(to_junit(obs, PROFILE, checks))  # raises on invalid XML
    failure = next(f for f in root.iter("failure") if f.get("type") == "clientauth.no_certificate")
    assert "\\x1b[31m\\x01\\x0c here" in (failure.get("message") or "")


def test_the_screen_report_shows_server_text_as_text() -> None:
    obs, checks = _hostile()
    console = Console(record=True, width=200, color_system=None)
    render_human(console, obs, PROFILE, checks, verdict(checks))  # a MarkupError before the fix
    text = console.export_text()
    assert "[/bold]" in text and "\x1b" not in text and "\\x1b" in text


def test_sarif_locations_are_uris() -> None:
    from tests.unit.probe.test_checks import INTERMEDIATE, NOW, good
    obs = good()
    obs.versions["TLSv1"] = Support(True)
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    results = to_sarif(obs, INTERMEDIATE, checks)["runs"][0]["results"]
    assert results and {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                        for r in results} == {"tls://127.0.0.1:443"}
