"""trustwire's server and client against OpenSSL's s_client and s_server."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Pki, require_tool, run_trustwire
from tests.peers import free_port, openssl_s_server
from tests.servers import serve_process
from trustwire.client import connect
from trustwire.errors import HandshakeError
from trustwire.tls.context import ClientTLS

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def openssl() -> str:
    return require_tool("openssl")


def s_client_session(openssl: str, port: int, lines: list[str], expect: list[str],
                     extra: list[str], timeout: float = 15) -> str:
    """Drive an interactive ``openssl s_client``; return everything it printed."""
    proc = subprocess.Popen(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-quiet", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None and proc.stdout is not None
    output = ""
    try:
        for line in lines:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while time.monotonic() < deadline and not all(e in output for e in expect):
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:  # os.read, not readline: a buffered pipe would hide data from select()
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                output += chunk.decode(errors="replace")
    finally:
        proc.kill()
        proc.wait(5)
    return output


def test_s_client_with_certificate_against_line_framed_serve(openssl: str, pki: Pki) -> None:
    alice = pki.home.identity("alice")
    with serve_process(pki.home.root, "--identity", "server", "--framing", "line") as (_, port):
        output = s_client_session(
            openssl, port, ["Hello, server!", "second"], ["HELLO, SERVER!", "SECOND"],
            ["-cert", str(alice.cert), "-key", str(alice.key), "-CAfile", str(alice.ca),
             "-verify_return_error", "-verify_hostname", "localhost"])
    assert "HELLO, SERVER!" in output and "SECOND" in output


def test_s_client_without_certificate_is_refused(openssl: str, pki: Pki, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with serve_process(pki.home.root, "--identity", "server", "--framing", "line",
                       "--audit-log", str(audit)) as (_proc, port):
        output = s_client_session(openssl, port, ["hello"], ["alert"],
                                  ["-CAfile", str(pki.home.ca_cert_path)], timeout=5)
        assert "HELLO" not in output
        assert "certificate required" in output or "alert" in output
        time.sleep(1.5)  # the audit log is flushed every second
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(e["event"] == "handshake_failed" and e["reason"] == "client-cert-missing"
               for e in events)


def test_tls_1_1_client_is_refused(openssl: str, pki: Pki, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    alice = pki.home.identity("alice")
    with serve_process(pki.home.root, "--identity", "server", "--audit-log", str(audit)) as (_, port):
        result = subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_1",
             "-cipher", "DEFAULT@SECLEVEL=0", "-cert", str(alice.cert), "-key", str(alice.key),
             "-CAfile", str(alice.ca)],
            input="", capture_output=True, text=True, timeout=15, check=False)
        assert result.returncode != 0
        assert "alert protocol version" in result.stdout + result.stderr
        time.sleep(1.5)
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    failed = [e for e in events if e["event"] == "handshake_failed"]
    assert failed and failed[0]["reason"] == "protocol-too-old"


def test_trustwire_client_against_s_server(openssl: str, pki: Pki) -> None:
    server = pki.home.identity("server")
    port = free_port()
    with openssl_s_server(openssl, cert=server.cert, key=server.key, ca=server.ca, port=port), \
            connect("localhost", port, tls=pki.client("alice"), framing="line") as client:
        assert client.request(b"hello") == b"olleh"  # s_server -rev
        assert client.peer is not None and client.peer.common_name == "server"


def test_trustwire_client_refused_by_s_server_gets_a_diagnosis(openssl: str, pki: Pki) -> None:
    server = pki.home.identity("server")
    port = free_port()
    with openssl_s_server(openssl, cert=server.cert, key=server.key, ca=server.ca, port=port), \
            pytest.raises(HandshakeError) as info:
        connect("localhost", port, tls=ClientTLS(ca=pki.home.ca_cert_path), framing="line")
    assert info.value.diagnosis.reason == "client-cert-missing"


@pytest.mark.parametrize("accepted", [True, False])
def test_a_ticketless_tls13_server_is_answered_without_waiting_out_the_timeout(
        openssl: str, pki: Pki, accepted: bool) -> None:
    """Break 9: against a TLS 1.3 server that sends no session ticket, connect() waited for
    the whole timeout (10.5 s for one `send`) before deciding it had been accepted."""
    server = pki.home.identity("server")
    port = free_port()
    ca = server.ca if accepted else pki.other.ca_cert_path  # refusing: it trusts another CA
    with openssl_s_server(openssl, cert=server.cert, key=server.key, ca=ca, port=port,
                          extra=["-num_tickets", "0"]):
        started = time.monotonic()
        if accepted:
            with connect("localhost", port, tls=pki.client("alice"), framing="line",
                         timeout=10) as client:
                took = time.monotonic() - started
                assert client.version == "TLSv1.3" and client.request(b"hello") == b"olleh"
        else:
            with pytest.raises(HandshakeError) as info, \
                    connect("localhost", port, tls=pki.client("alice"), framing="line",
                            timeout=10) as client:
                client.request(b"hello")  # the refusal can come late
            took = time.monotonic() - started
            assert info.value.diagnosis.reason == "unknown-ca"
    assert took < 1.0, f"{took:.2f}s"


def test_send_against_a_ticketless_server_takes_no_timeout(openssl: str, pki: Pki) -> None:
    server = pki.home.identity("server")
    port = free_port()
    with openssl_s_server(openssl, cert=server.cert, key=server.key, ca=server.ca, port=port,
                          extra=["-num_tickets", "0"]):
        started = time.monotonic()
        result = run_trustwire("--home", pki.home.root, "send", f"localhost:{port}", "hello",
                               "--identity", "alice", "--framing", "line", "--timeout", "10")
        took = time.monotonic() - started
    assert result.returncode == 0 and result.stdout == "olleh\n", result.stderr
    assert took < 5, f"{took:.1f}s: a whole timeout went by"
