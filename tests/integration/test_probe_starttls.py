"""The probe through STARTTLS dialogues, against responders that speak the real protocols."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import CliResult, Pki
from tests.starttls_servers import RESPONDER_PROTOCOLS, StarttlsServer
from tests.tarpit import tarpit_after
from trustwire.probe.hello import HelloSpec, client_hello
from trustwire.probe.raw import exchange_hello
from trustwire.probe.target import ProbeTarget

Cli = Callable[..., CliResult]

NOT_OFFERED = {
    "smtp": "the SMTP server does not offer STARTTLS (EHLO reply lacks it)",
    "imap": "the IMAP server does not offer STARTTLS (it answered 'a1 BAD Error in IMAP command",
    "pop3": "the POP3 server does not offer STLS (it answered '-ERR Unknown command.')",
    "ftp": "the FTP server does not offer AUTH TLS (it answered '500 AUTH not understood')",
    "ldap": "the LDAP server does not offer StartTLS (resultCode 2 protocolError: "
            "'unsupported extended operation')",
    "mysql": "the MySQL server does not offer TLS (the handshake of '8.0.36-trustwire-responder' "
             "lacks the CLIENT_SSL capability)",
}


def check_report(report: dict, protocol: str, code: int) -> None:  # type: ignore[type-arg]
    """What a probe of a responder (Python's ssl defaults, our server certificate) must say."""
    assert report["target"]["starttls"] == protocol and report["http"] is None
    versions = {p["version"]: p["accepted"] for p in report["protocols"]}
    assert versions == {"SSLv2": False, "SSLv3": False, "TLSv1": False, "TLSv1.1": False, "TLSv1.2": True,
                        "TLSv1.3": True}
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in report["cipher_suites"]["TLSv1.2"]
    assert set(report["cipher_suites"]["TLSv1.3"]) >= {"TLS_AES_128_GCM_SHA256",
                                                       "TLS_AES_256_GCM_SHA384"}
    leaf = report["certificate"]["chain"][0]
    assert leaf["subject"] == "CN=server" and report["certificate"]["trusted"] is True
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["cert.hostname"] == "pass"
    assert not any(c.startswith("http.") for c in statuses)
    assert report["client_auth"]["requested"] is False
    # a server that asks for no certificate and stays silent after the handshake (as SMTP
    # waits for EHLO) costs the client-auth check no timeout (5 s)
    assert report["duration_s"] < 4
    assert code == (0 if report["verdict"]["pass"] else 1)


@pytest.mark.parametrize("protocol", RESPONDER_PROTOCOLS)
def test_probe_reads_versions_suites_and_certificate_after_starttls(
        pki: Pki, cli: Cli, protocol: str) -> None:
    server = pki.home.identity("server")
    with StarttlsServer(protocol, server.cert, server.key) as responder:
        result = cli("probe", f"127.0.0.1:{responder.port}", "--starttls", protocol,
                     "--ca", pki.home.ca_cert_path, "--json")
        assert result.code in (0, 1), result.err
        check_report(json.loads(result.out), protocol, result.code)
        assert responder.handshakes >= 10  # every handshake went through the dialogue


@pytest.mark.parametrize("protocol", RESPONDER_PROTOCOLS)
def test_a_server_without_starttls_stops_the_probe_with_the_reason(
        pki: Pki, cli: Cli, protocol: str) -> None:
    server = pki.home.identity("server")
    with StarttlsServer(protocol, server.cert, server.key, offer=False) as responder:
        result = cli("probe", f"127.0.0.1:{responder.port}", "--starttls", protocol,
                     "--ca", pki.home.ca_cert_path)
        assert result.code == 2 and result.out == ""
        assert result.err.startswith(f"error: cannot start TLS with 127.0.0.1:{responder.port}: "
                                     f"{NOT_OFFERED[protocol]}"), result.err
        assert "\nhint: " in result.err and "Traceback" not in result.err
        assert responder.connections == 1 and responder.handshakes == 0  # one dialogue, then stop


def test_a_hand_built_hello_goes_through_the_dialogue(pki: Pki) -> None:
    server = pki.home.identity("server")
    with StarttlsServer("smtp", server.cert, server.key) as responder:
        target = ProbeTarget.parse(f"127.0.0.1:{responder.port}", starttls="smtp")
        conn = exchange_hello(target, client_hello(HelloSpec(ciphers=(0xC02B, 0xC02F))), timeout=5)
    hello = conn.flight.server_hello
    assert hello is not None and hello.cipher == 0xC02B and conn.flight.hello_done


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (an implicit-TLS server waiting
    for a ClientHello looks like this to a STARTTLS client)."""
    with tarpit_after(0, served=0) as port:  # serves none: no upstream is ever dialled
        yield port


def test_a_silent_server_costs_one_timeout(cli: Cli, silent_port: int) -> None:
    result = cli("probe", f"127.0.0.1:{silent_port}", "--starttls", "imap", "--timeout", "0.3")
    assert result.code == 2
    assert "the IMAP server did not send its greeting within 0.3 seconds" in result.err
    assert "hint: is it an implicit-TLS port (for port 993: probe it without --starttls)?" in result.err


def test_starttls_with_a_url_is_a_usage_error(cli: Cli) -> None:
    result = cli("probe", "https://127.0.0.1:1/", "--starttls", "smtp")
    assert result.code == 2 and "--starttls takes HOST:PORT, not a URL" in result.err
