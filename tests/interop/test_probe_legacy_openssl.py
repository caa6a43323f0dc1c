"""Hand-built legacy hellos against real OpenSSL 3 servers: they refuse them all, honour
TLS_FALLBACK_SCSV, and announce renegotiation_info and (unless configured off) EMS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Pki, require_tool
from tests.integration.test_probe_legacy import probe
from tests.peers import free_port, openssl_s_server

pytestmark = pytest.mark.interop
MANY = ["-naccept", "1000"]  # one connection per handshake
SAFE = ("protocol.sslv2", "protocol.sslv3", "tls.fallback_scsv", "tls.secure_renegotiation",
        "tls.extended_master_secret", "vuln.crime")


def serve(pki: Pki, extra: list[str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    server = pki.home.identity("server")
    port = free_port()
    return port, openssl_s_server(require_tool("openssl"), cert=server.cert, key=server.key,
                                  ca=server.ca, port=port, extra=[*MANY, *extra], env=env)


def test_openssl_refuses_every_legacy_hello(pki: Pki) -> None:
    port, server = serve(pki, [])
    with server:
        obs, checks = probe(port)
    assert obs.versions["SSLv2"].accepted is False and obs.versions["SSLv3"].accepted is False
    assert obs.legacy is not None and obs.legacy.suites == {}
    assert obs.legacy.fallback_versions == ("TLSv1.2", "TLSv1.3")
    assert {k: checks[k].status.value for k in SAFE} == dict.fromkeys(SAFE, "pass")
    assert all("SSL" not in what and "RC4" not in what for what, _ in obs.untested)


def test_openssl_at_seclevel_0_with_old_versions_still_refuses_them(pki: Pki) -> None:
    # -comp asks for compression; Debian's OpenSSL is built without zlib, so it cannot comply.
    port, server = serve(pki, ["-cipher", "ALL:@SECLEVEL=0", "-min_protocol", "TLSv1",
                               "-max_protocol", "TLSv1.2", "-comp"])
    with server:
        obs, checks = probe(port)
    assert obs.versions["TLSv1"].accepted and obs.versions["TLSv1.1"].accepted
    assert obs.legacy is not None and obs.legacy.suites == {}  # no RC4, DES, EXPORT left
    assert obs.legacy.fallback_versions == ("TLSv1.1", "TLSv1.2")
    assert checks["tls.fallback_scsv"].status.value == "pass"
    assert "inappropriate_fallback" in checks["tls.fallback_scsv"].detail
    assert checks["vuln.crime"].status.value == "pass"
    assert checks["protocol.sslv3"].status.value == "pass"


def test_openssl_without_extended_master_secret(pki: Pki, tmp_path: Path) -> None:
    config = tmp_path / "openssl.cnf"
    config.write_text("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n"
                      "[sys]\nOptions = -ExtendedMasterSecret\n")
    port, server = serve(pki, [], env={**os.environ, "OPENSSL_CONF": str(config)})
    with server:
        _, checks = probe(port)
    assert checks["tls.extended_master_secret"].status.value == "warn"
    assert checks["tls.secure_renegotiation"].status.value == "pass"
