"""Helpers for the trust-core tests: one home, three kinds of server, framed requests.

Every rule that admits or refuses a peer must hold alike on ``trustwire serve``,
``trustwire tunnel server`` and a library ``tw.Server`` (run by
tests/library_server.py, with no CLI code involved); :func:`flavor` starts any of
them with the same home, a 0.2 s reload interval and an audit log.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.servers import Running, running
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.tls.context import ClientTLS

FLAVORS = ["serve", "tunnel", "library"]
LOCAL = SubjectAltNames.parse(dns=["localhost"], ips=["127.0.0.1", "::1"])


def trust_home(root: Path) -> Home:
    home = Home(root / "home")
    home.init_ca(name="trust CA")
    home.issue("server", kind=CertKind.SERVER, sans=LOCAL)
    for name in ("alice", "bob", "carol"):
        home.issue(name, kind=CertKind.CLIENT)
    return home


class _Upper(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1  # type: ignore[attr-defined]
        buffer = b""
        sock: socket.socket = self.request
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
                size = int.from_bytes(buffer[:4], "big")
                message, buffer = buffer[4:4 + size], buffer[4 + size:]
                sock.sendall(len(message).to_bytes(4, "big") + message.upper())


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    connections = 0


@contextlib.contextmanager
def upper_backend() -> Iterator[_Threaded]:
    """A plain TCP service speaking the length framing (upper), for the tunnel flavor."""
    server = _Threaded(("127.0.0.1", 0), _Upper)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Flavor:
    """A running server of one kind: its process and the audit events it wrote."""

    def __init__(self, kind: str, run: Running, audit: Path,
                 backend: _Threaded | None) -> None:
        self.kind = kind
        self.run = run
        self.port = run.port
        self.audit_path = audit
        self.backend = backend

    def wait_for(self, text: str, timeout: float = 10, count: int = 1) -> None:
        self.run.wait_for(text, timeout=timeout, count=count)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        events = [json.loads(line) for line in self.audit_path.read_text().splitlines() if line]
        return [e for e in events if name is None or e["event"] == name]

    def wait_for_event(self, name: str, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no {name} event in {self.events()}")


@contextlib.contextmanager
def flavor(kind: str, home: Home, *extra: str) -> Iterator[Flavor]:
    """Start ``kind`` (serve, tunnel or library) on 127.0.0.1:0 with the home's server
    identity; ``extra`` are more options (the library takes --policy only)."""
    audit = home.root / f"{kind}-audit.jsonl"
    common = ["--listen", "127.0.0.1:0", "--identity", "server", "--reload-interval", "0.2",
              "--audit-log", str(audit), *extra]
    with contextlib.ExitStack() as stack:
        backend = None
        if kind == "serve":
            run = stack.enter_context(running(home.root, "serve", *common))
        elif kind == "tunnel":
            backend = stack.enter_context(upper_backend())
            run = stack.enter_context(running(
                home.root, "tunnel", "server", "--target",
                f"127.0.0.1:{backend.server_address[1]}", *common))
        else:
            audit = home.root / "library-audit.jsonl"
            run = stack.enter_context(running(home.root, command=[
                sys.executable, "-m", "tests.library_server", str(home.root), "serve", *extra]))
        yield Flavor(kind, run, audit, backend)


def client_context(home: Home, name: str, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    return ClientTLS.from_identity(home, name, maximum_version=version,
                                   minimum_version=version).context()


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message


def read_frame(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data[4:]


def request(ctx: ssl.SSLContext, port: int, message: bytes = b"hi",
            session: ssl.SSLSession | None = None) -> tuple[bytes, ssl.SSLSession | None, bool]:
    """One framed request; returns the reply, the session to resume with, and whether
    this connection resumed one."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        tls.sendall(frame(message))
        reply = read_frame(tls)
        return reply, tls.session, tls.session_reused
