"""A server that speaks only TLS 1.0 is audited in full (issue 12 review).

The certificate, client-authentication and session questions are asked with what the server
accepts (``Runner.offer``: its newest version and every suite), not with the default
TLS 1.2+ context it refuses: no "sent no certificate", no "not applicable: does not accept
TLS 1.2" for renegotiation and resumption that TLS 1.0 has, and the mTLS audit runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, Pki
from tests.interop.test_probe_openssl import check, probe, rsa_server, s_server, statuses

pytestmark = pytest.mark.interop
Cli = Callable[..., CliResult]
TLS10_ONLY = ("-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0")
__all__ = ["rsa_server"]  # the fixture, used by name


def test_the_certificate_and_sessions_of_a_tls10_server_are_audited(
    cli: Cli, pki: Pki, rsa_server: tuple[Path, Path],
) -> None:
    with s_server(*rsa_server, *TLS10_ONLY) as port:
        _, report = probe(cli, port, "--ca", pki.home.ca_cert_path)
    found = statuses(report)
    assert "cert.present" not in found
    trusted = check(report, "cert.trusted")  # verified over TLS 1.0: the fixture has no AKI
    assert "strict verification failed (Missing Authority Key Identifier)" in trusted["detail"]
    assert found["cert.hostname"] == "pass"
    assert found["cert.validity"] == "pass" and check(report, "cert.key")["detail"] == "RSA 2048"
    assert report["certificate"]["ocsp_stapled"] is False  # asked over TLS 1.0, none stapled
    renegotiation = check(report, "session.renegotiation")
    assert "not applicable" not in renegotiation["detail"], renegotiation
    assert renegotiation["detail"].endswith("(over TLS 1.0)")
    for method in ("session_id", "ticket_tls1_2"):
        resumption = check(report, f"session.resumption.{method}")
        assert resumption["detail"] == "sessions resume (over TLS 1.0)", resumption
    assert check(report, "cert.no_sni")["detail"].startswith("they get the same certificate")


def test_the_mtls_audit_runs_against_a_tls10_server(
    cli: Cli, pki: Pki, rsa_server: tuple[Path, Path],
) -> None:
    alice = pki.home.identity("alice")
    with s_server(*rsa_server, *TLS10_ONLY, "-CAfile", str(pki.home.ca_cert_path),
                  "-Verify", "1", "-verify_return_error") as port:
        _, report = probe(cli, port, "--ca", pki.home.ca_cert_path, "--cert", alice.cert,
                          "--key", alice.key)
    auth = report["client_auth"]
    assert auth["requested"] is True and auth["required"] is True
    assert auth["our_certificate_accepted"] is True
    cases = {e["case"]: e["refused"] for e in auth["enforcement"]}
    assert cases and all(refused is True for refused in cases.values()), cases
    assert statuses(report)["clientauth.enforced"] == "pass"
