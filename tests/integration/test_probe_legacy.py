"""Hand-built hellos against servers that still speak SSL 2.0/3.0, RC4, EXPORT, DEFLATE or ignore
TLS_FALLBACK_SCSV: Python responders on loopback, probed the way the probe probes anything."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult
from tests.legacy_responder import responder
from trustwire.probe.attempt import Runner
from trustwire.probe.checks import Check, evaluate
from trustwire.probe.legacy_scan import scan_legacy
from trustwire.probe.observations import Observations
from trustwire.probe.profiles import PROFILES
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.probe.tls_scan import check_baseline, scan_ciphers, scan_versions

Cli = Callable[..., CliResult]
RC4_SHA, DES_CBC3_SHA, ECDHE_RSA_AES128_GCM, ECDHE_RSA_AES128_SHA = 0x0005, 0x000A, 0xC02F, 0xC013
SSL3, TLS10, TLS11, TLS12 = 0x0300, 0x0301, 0x0302, 0x0303


def probe(port: int, *, ciphers: bool = False,
          timeout: float = 3) -> tuple[Observations, dict[str, Check]]:
    """What the probe's version (and with ``ciphers``, suite) and legacy scans find, and the
    verdicts on it."""
    target = ProbeTarget.parse(f"127.0.0.1:{port}", "localhost")
    obs = Observations(target=target, started=dt.datetime.now(dt.UTC))
    runner = Runner(target, ProbeOptions(timeout=timeout), None)
    try:
        check_baseline(runner)
        scan_versions(runner, obs)
        if ciphers:
            scan_ciphers(runner, obs)
        scan_legacy(runner, obs)
    finally:
        runner.close()
    return obs, {c.id: c for c in evaluate(obs, PROFILES["intermediate"])}


def names(obs: Observations, version: str) -> set[str]:
    return {str(c["name"]) for c in obs.ciphers.get(version, [])}


def test_ssl3_with_rc4_and_3des_is_found_and_failed() -> None:
    with responder(versions=(SSL3, TLS10, TLS12),
                   suites=(ECDHE_RSA_AES128_GCM, RC4_SHA, DES_CBC3_SHA)) as server:
        obs, checks = probe(server.port, ciphers=True)
    assert obs.versions["SSLv3"].accepted is True and obs.versions["SSLv2"].accepted is False
    assert names(obs, "SSLv3") == {"RC4-SHA", "DES-CBC3-SHA"}
    assert names(obs, "TLSv1.2") == {"ECDHE-RSA-AES128-GCM-SHA256", "RC4-SHA", "DES-CBC3-SHA"}
    # TLS 1.0 here takes only suites OpenSSL 3 cannot offer: the hand-built hellos see it.
    assert obs.versions["TLSv1"].accepted is True and names(obs, "TLSv1") == {
        "RC4-SHA", "DES-CBC3-SHA"}
    for check in ("protocol.sslv3", "protocol.tlsv1", "ciphers.weak.rc4", "ciphers.weak.3des"):
        assert checks[check].status.value == "fail", (check, checks[check])
    assert "RC4-SHA (SSL 3.0)" in checks["ciphers.weak.rc4"].detail
    assert not [what for what, _ in obs.untested if "SSL 3.0" in what or "RC4" in what]
    assert obs.legacy is not None
    # One hello per accepted suite plus the refusal, per version; one each for the rest.
    assert obs.legacy.handshakes == 1 + 3 + 3 + 1 + 3 + 1 + 1


def test_ssl2_server_hello_lists_its_cipher_specs() -> None:
    with responder(sslv2_specs=(0x010080, 0x020080, 0x0700C0)) as server:
        obs, checks = probe(server.port)
    assert obs.versions["SSLv2"].accepted is True
    assert names(obs, "SSLv2") == {"RC4-MD5", "EXP-RC4-MD5", "DES-CBC3-MD5"}
    assert checks["protocol.sslv2"].status.value == "fail"
    assert "EXP-RC4-MD5 (SSL 2.0)" in checks["ciphers.weak.export"].detail
    assert list(obs.versions)[:2] == ["SSLv2", "SSLv3"]


def test_export_suites_are_found() -> None:
    with responder(versions=(TLS12,), suites=(ECDHE_RSA_AES128_GCM, 0x0003, 0x0008, 0x0014)) as server:
        obs, checks = probe(server.port)
    assert {"EXP-RC4-MD5", "EXP-DES-CBC-SHA", "EXP-EDH-RSA-DES-CBC-SHA"} <= names(obs, "TLSv1.2")
    assert checks["ciphers.weak.export"].status.value == "fail"
    assert obs.versions["SSLv3"].accepted is False


def test_a_server_that_picks_deflate_is_vulnerable_to_crime() -> None:
    with responder(compression=True) as server:
        _, checks = probe(server.port)
    assert checks["vuln.crime"].status.value == "fail"
    with responder(compression=False) as server:
        _, checks = probe(server.port)
    assert checks["vuln.crime"].status.value == "pass"


def test_fallback_scsv_ignored_or_honoured() -> None:
    with responder(versions=(TLS10, TLS11, TLS12), suites=(ECDHE_RSA_AES128_GCM, ECDHE_RSA_AES128_SHA),
                   honours_fallback_scsv=False) as server:
        obs, checks = probe(server.port)
    assert checks["tls.fallback_scsv"].status.value == "fail"
    assert obs.legacy is not None and obs.legacy.fallback_versions == ("TLSv1.1", "TLSv1.2")
    with responder(versions=(TLS10, TLS11, TLS12), suites=(ECDHE_RSA_AES128_GCM, ECDHE_RSA_AES128_SHA),
                   honours_fallback_scsv=True) as server:
        _, checks = probe(server.port)
    assert checks["tls.fallback_scsv"].status.value == "pass"
    with responder(versions=(TLS12,)) as server:
        _, checks = probe(server.port)
    assert checks["tls.fallback_scsv"].status.value == "info"
    assert "not applicable" in checks["tls.fallback_scsv"].detail


def test_no_renegotiation_info_and_no_extended_master_secret() -> None:
    with responder(renegotiation_info=False, extended_master_secret=False) as server:
        _, checks = probe(server.port)
    assert checks["tls.secure_renegotiation"].status.value == "fail"
    assert checks["tls.extended_master_secret"].status.value == "warn"
    with responder() as server:
        _, checks = probe(server.port)
    assert checks["tls.secure_renegotiation"].status.value == "pass"
    assert checks["tls.extended_master_secret"].status.value == "pass"


def test_silence_is_not_tested_never_passed() -> None:
    with responder(silent_to_sslv2=True) as server:
        obs, checks = probe(server.port, timeout=0.5)
    assert obs.versions["SSLv2"].accepted is None
    assert checks["protocol.sslv2"].status.value == "skip"
    assert "did not answer in time" in checks["protocol.sslv2"].detail
    assert ("SSL 2.0", "the server did not answer in time") in obs.untested
    assert checks["protocol.sslv3"].status.value == "pass"  # the rest was answered


def test_the_cli_reports_legacy_findings_in_json_sarif_and_junit(cli: Cli, tmp_path: Path) -> None:
    sarif, junit = tmp_path / "probe.sarif", tmp_path / "probe.xml"
    with responder(versions=(SSL3, TLS12), suites=(ECDHE_RSA_AES128_GCM, RC4_SHA),
                   compression=True) as server:
        result = cli("probe", f"127.0.0.1:{server.port}", "--json", "--timeout", "3",
                     "--sarif", sarif, "--junit", junit)
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["legacy"]["sslv3"]["outcome"] == "hello"
    assert report["legacy"]["suites"]["SSLv3"] == ["TLS_RSA_WITH_RC4_128_SHA"]
    assert {"version": "SSLv3", "accepted": True, "note": None} in report["protocols"]
    assert "RC4-SHA" in report["cipher_suites"]["SSLv3"]
    results = {(r["ruleId"], r["level"]) for r in json.loads(sarif.read_text())["runs"][0]["results"]}
    assert {("vuln.crime", "error"), ("protocol.sslv3", "error"), ("ciphers.weak.rc4", "error")} <= results
    failures = {f.get("type") for f in ET.fromstring(junit.read_bytes()).findall("testcase/failure")}
    assert {"vuln.crime", "protocol.sslv3"} <= failures
