"""The probe against trustwire's own servers, on loopback."""

from __future__ import annotations

import json
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, Pki
from tests.servers import ServerThread
from trustwire.server import Server
from trustwire.services import upper

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def mtls_port(pki: Pki):  # type: ignore[no-untyped-def]
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls())) as st:
        yield st.port


def probe_json(cli: Cli, *args: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = cli("probe", *args, "--json")
    assert result.err == "" or result.code != 2, result.err
    return result.code, json.loads(result.out)


def test_trustwire_serve_passes_the_enforcement_audit(pki: Pki, cli: Cli, mtls_port: int) -> None:
    alice = pki.home.identity("alice")
    code, report = probe_json(
        cli, f"localhost:{mtls_port}", "--ca", pki.home.ca_cert_path,
        "--cert", alice.cert, "--key", alice.key,
        "--ca-key", pki.home.ca_key_path, "--crl", pki.home.crl_path)
    assert code == 0, [c for c in report["checks"] if c["status"] == "fail"]
    auth = report["client_auth"]
    assert auth["requested"] and auth["required"] and auth["our_certificate_accepted"]
    cases = {e["case"]: e["refused"] for e in auth["enforcement"]}
    assert cases == {
        "no certificate": True, "a self-signed certificate": True,
        "a certificate from an unknown CA": True, "an expired certificate (unknown CA)": True,
        "a certificate without clientAuth (unknown CA)": True,
        "a valid certificate from your CA": False,
        "an expired certificate from your CA": True,
        "a certificate without clientAuth from your CA": True,
        "a revoked certificate from your CA": True,
    }
    versions = {p["version"]: p["accepted"] for p in report["protocols"]}
    assert versions == {"SSLv2": False, "SSLv3": False, "TLSv1": False, "TLSv1.1": False,
                        "TLSv1.2": True, "TLSv1.3": True}
    assert set(report["cipher_suites"]["TLSv1.2"]) == {
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305"}
    assert report["server_enforces_order"] is False
    assert {g["name"] for g in report["groups"] if g["accepted"]} == {
        "x25519", "secp256r1", "secp384r1"}
    assert report["certificate"]["trusted"] is True
    assert report["duration_s"] < 10


def test_without_our_ca_the_chain_is_untrusted(cli: Cli, mtls_port: int) -> None:
    code, report = probe_json(cli, f"localhost:{mtls_port}")
    assert code == 1
    trusted = next(c for c in report["checks"] if c["id"] == "cert.trusted")
    assert trusted["status"] == "fail"
    assert trusted["detail"].startswith("issued by a root you do not trust: CN=session CA")
    assert "the system store (/" in trusted["detail"] and "--ca" in trusted["fix"]
    chain = next(c for c in report["checks"] if c["id"] == "cert.chain")
    assert chain["status"] == "pass"  # an untrusted root is not an incomplete chain


def test_wrong_name_is_reported(pki: Pki, cli: Cli, mtls_port: int) -> None:
    code, report = probe_json(cli, f"127.0.0.1:{mtls_port}", "--ca", pki.home.ca_cert_path,
                              "--server-name", "elsewhere.example")
    assert code == 1
    name = next(c for c in report["checks"] if c["id"] == "cert.hostname")
    assert name["status"] == "fail" and "elsewhere.example" in name["detail"]


def test_tls12_only_server_against_both_profiles(pki: Pki, cli: Cli) -> None:
    tls = pki.server_tls(maximum_version=ssl.TLSVersion.TLSv1_2)
    with ServerThread(lambda audit: Server(upper, tls=tls)) as st:
        target = f"localhost:{st.port}"
        code, report = probe_json(cli, target, "--ca", pki.home.ca_cert_path)
        assert code == 0  # intermediate: TLS 1.3 missing is a warning
        tls13 = next(c for c in report["checks"] if c["id"] == "protocol.tlsv1_3")
        assert tls13["status"] == "warn"
        code, report = probe_json(cli, target, "--ca", pki.home.ca_cert_path, "--profile", "modern")
        assert code == 1
        assert report["profile"]["source"] == "Mozilla Server Side TLS 6.0 (modern)"


def test_sarif_junit_and_human_output(pki: Pki, cli: Cli, mtls_port: int, tmp_path: Path) -> None:
    sarif, junit = tmp_path / "probe.sarif", tmp_path / "probe.xml"
    result = cli("probe", f"localhost:{mtls_port}", "--sarif", sarif, "--junit", junit)
    assert result.code == 1  # untrusted without --ca
    assert "FAIL" in result.out and "Mozilla Server Side TLS 6.0 (intermediate)" in result.out
    assert "Not tested" in result.out and "SSL 3.0" in result.out
    data = json.loads(sarif.read_text())
    assert any(r["ruleId"] == "cert.trusted" and r["level"] == "error"
               for r in data["runs"][0]["results"])
    suite = ET.fromstring(junit.read_bytes())
    assert int(suite.get("failures", "0")) >= 1


def test_custom_profile_requiring_client_auth(pki: Pki, cli: Cli, tmp_path: Path) -> None:
    profile = tmp_path / "strict.toml"
    profile.write_text('name = "strict"\nrequire_client_auth = true\nocsp_staple = false\n')
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(client_auth=False))) as st:
        code, report = probe_json(cli, f"localhost:{st.port}", "--ca", pki.home.ca_cert_path,
                                  "--profile", profile)
    assert code == 1
    assert report["profile"]["name"] == "strict"
    requested = next(c for c in report["checks"] if c["id"] == "clientauth.requested")
    assert requested["status"] == "fail"
