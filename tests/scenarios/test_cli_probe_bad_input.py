"""`trustwire probe` on targets that cannot be probed: one sentence, exit 2, bounded time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import CliResult
from tests.peers import free_port
from tests.scenarios.helpers import assert_clean_error

Cli = Callable[..., CliResult]


def listener(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=behaviour, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def http_server(conn: socket.socket) -> None:
    with conn:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def ssh_banner(conn: socket.socket) -> None:
    with conn:
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        time.sleep(0.5)


def stall(conn: socket.socket) -> None:
    with conn:
        conn.recv(4096)  # read the ClientHello, never answer
        time.sleep(5)


@pytest.fixture(params=[http_server, ssh_banner], ids=["plain-http", "ssh-banner"])
def not_tls(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from listener(request.param)


def test_closed_port(cli: Cli) -> None:
    result = cli("probe", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert_clean_error(result, 2, "cannot connect to 127.0.0.1:")
    assert "Connection refused" in result.err


def test_not_a_tls_service(cli: Cli, not_tls: int) -> None:
    started = time.monotonic()
    result = cli("probe", f"127.0.0.1:{not_tls}", "--timeout", "2")
    assert_clean_error(result, 2)
    assert "does not speak TLS" in result.err or "without a TLS answer" in result.err
    assert time.monotonic() - started < 10


def test_stalled_handshake(cli: Cli) -> None:
    for port in listener(stall):
        started = time.monotonic()
        result = cli("probe", f"127.0.0.1:{port}", "--timeout", "1")
        assert_clean_error(result, 2, "did not answer the TLS handshake within 1 seconds")
        assert time.monotonic() - started < 5


def test_unresolvable_name(cli: Cli) -> None:
    result = cli("probe", "no-such-host.invalid:443", "--timeout", "2")
    assert_clean_error(result, 2, "cannot resolve no-such-host.invalid")


@pytest.mark.parametrize("target", ["nonsense", "http://example.com", "example.com:99999",
                                    "https://"])
def test_malformed_targets(cli: Cli, target: str) -> None:
    assert_clean_error(cli("probe", target), 2, "give HOST:PORT or an https:// URL")


def test_cert_without_key(cli: Cli, tmp_path: object) -> None:
    import pathlib

    cert = pathlib.Path(str(tmp_path)) / "c.pem"
    cert.write_text("x")
    assert_clean_error(cli("probe", "127.0.0.1:1", "--cert", cert), 2, "both --cert and --key")
