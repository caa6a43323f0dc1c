"""STARTTLS against real peers: ``openssl s_client -starttls`` against the responders (they
speak the protocols as real clients expect), and the probe against a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import IN_CI, CliResult, Pki, require_tool
from tests.integration.test_probe_starttls import check_report
from tests.peers import free_port
from tests.starttls_servers import RESPONDER_PROTOCOLS, PostgresServer, StarttlsServer

pytestmark = pytest.mark.interop

Cli = Callable[..., CliResult]


def s_client_starttls(port: int, protocol: str, ca: str) -> subprocess.CompletedProcess[str]:
    openssl = require_tool("openssl")
    return subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-starttls",
                           protocol, "-CAfile", ca, "-verify_return_error", "-brief"],
                          input="", capture_output=True, text=True, timeout=20, check=False)


@pytest.mark.parametrize("protocol", RESPONDER_PROTOCOLS)
def test_openssl_s_client_starts_tls_with_the_responders(pki: Pki, protocol: str) -> None:
    server = pki.home.identity("server")
    with StarttlsServer(protocol, server.cert, server.key) as responder:
        done = s_client_starttls(responder.port, protocol, str(pki.home.ca_cert_path))
        assert done.returncode == 0, done.stderr + done.stdout
        assert "CONNECTION ESTABLISHED" in done.stderr and "Verification: OK" in done.stderr
        assert responder.handshakes == 1


@pytest.mark.parametrize("protocol", ["smtp", "ftp", "ldap", "mysql"])
def test_openssl_s_client_gets_no_tls_from_a_responder_that_does_not_offer_it(
        pki: Pki, protocol: str) -> None:
    server = pki.home.identity("server")
    with StarttlsServer(protocol, server.cert, server.key, offer=False) as responder:
        done = s_client_starttls(responder.port, protocol, str(pki.home.ca_cert_path))
    assert done.returncode != 0 and "CONNECTION ESTABLISHED" not in done.stderr
    assert responder.handshakes == 0


@pytest.fixture(scope="module")
def postgres(pki: Pki) -> Iterator[PostgresServer]:
    if PostgresServer.tools() is None:
        if IN_CI:
            pytest.fail("PostgreSQL is not installed but CI=true: .ci/run must install postgresql")
        pytest.skip("PostgreSQL is not installed")
    server = pki.home.identity("server")
    with PostgresServer(server.cert, server.key, free_port()) as cluster:
        yield cluster


def test_probe_of_a_real_postgresql_after_the_sslrequest(pki: Pki, cli: Cli,
                                                        postgres: PostgresServer) -> None:
    result = cli("probe", f"127.0.0.1:{postgres.port}", "--starttls", "postgres",
                 "--ca", pki.home.ca_cert_path, "--json")
    assert result.code in (0, 1), result.err
    report = json.loads(result.out)
    check_report(report, "postgres", result.code)
    done = s_client_starttls(postgres.port, "postgres", str(pki.home.ca_cert_path))
    assert done.returncode == 0 and "Verification: OK" in done.stderr, done.stderr


def test_a_postgresql_with_ssl_off_stops_the_probe(pki: Pki, cli: Cli,
                                                   postgres: PostgresServer) -> None:
    postgres.set_ssl(False)
    try:
        result = cli("probe", f"127.0.0.1:{postgres.port}", "--starttls", "postgres",
                     "--ca", pki.home.ca_cert_path)
    finally:
        postgres.set_ssl(True)
    assert result.code == 2
    assert result.err.startswith(
        f"error: cannot start TLS with 127.0.0.1:{postgres.port}: the PostgreSQL server does "
        "not offer TLS (it answered N to the SSLRequest)"), result.err
    assert "hint: set ssl = on in postgresql.conf" in result.err
