"""A small HTTP endpoint for operators: ``/metrics``, ``/healthz``, ``/status``.

Plain HTTP on loopback by default (the CLI demands ``--unsafe-metrics-listen``
for anything else): it names live identities. One request per connection,
GET only, 8 KiB of request header at most, a 5-second deadline per
connection, and at most :data:`MAX_CONNECTIONS` connections at once: it shares
the process's descriptors with the listener, so a scraper gone wild, or anyone
who can reach the port, must not be able to take them. When full, a new
connection makes room by dropping the oldest one: a scraper sends its request
at once and is answered within the same read, so idle sockets held open (and
reopened as fast as they are dropped) are the ones that go.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trustwire.net.addresses import format_hostport
from trustwire.net.listener import Listener
from trustwire.ops.metrics import registry_for
from trustwire.version import __version__

__all__ = ["MAX_CONNECTIONS", "StatusEndpoint", "status_document"]

_MAX_REQUEST = 8192
_DEADLINE = 5.0
MAX_CONNECTIONS = 16
"""Concurrent connections to the endpoint; a scrape takes milliseconds."""


def status_document(listener: Listener) -> dict[str, object]:
    """What ``/status`` returns, as JSON-ready data (``cert revoke --dry-run`` reads it)."""
    material = listener.material
    now = time.time()
    connections = []
    for session in list(listener.sessions):
        peer = session.peer
        connections.append({
            "peer": session.address,
            "cn": peer.common_name if peer else None,
            "serial": peer.serial_hex if peer else None,
            "fingerprint": peer.fingerprint if peer else None,
            "uri": list(peer.uris) if peer else [],
            "open": session.opened,
            "age_s": round(time.monotonic() - session.started, 1),
        })
    crls = [{"issuer": c.issuer, "number": c.number, "this_update": c.this_update.isoformat(),
             "next_update": c.next_update.isoformat() if c.next_update else None,
             "age_s": round(now - c.this_update.timestamp(), 1), "revoked": c.revoked}
            for c in material.crls]
    first = material.crl
    crl = next((c for c, facts in zip(crls, material.crls, strict=True) if facts is first), None)
    certificate: dict[str, object] = {}
    if material.certificate is not None:
        facts = material.certificate
        certificate = {"subject": facts.subject, "serial": facts.serial,
                       "not_after": facts.not_after.isoformat(), "days_left": facts.days_left()}
    stats = listener.stats
    return {
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(now - listener.started, 1),
        "listening": [format_hostport(h, p) for h, p in listener.addresses],
        "certificate": certificate,
        "crl": crl,
        "crls": crls,
        "connections": connections,
        "unauthenticated": len(listener.unauthenticated),
        "admission_in_handshake": listener.inside_handshake,
        "reloads": {"ok": stats.reloads_ok, "failed": stats.reloads_failed,
                    "last_error": listener.last_reload_error,
                    "last_at": listener.last_reload_at},
        "stats": {name: getattr(stats, name) for name in (
            "accepted", "refused", "refused_unauthenticated", "evicted", "handshakes_ok",
            "handshakes_failed", "access_denied", "sessions_revoked", "tickets_refused",
            "protocol_errors", "target_unreachable", "bytes_in", "bytes_out", "messages")},
    }


class _Request(asyncio.Protocol):
    def __init__(self, endpoint: StatusEndpoint) -> None:
        self.endpoint = endpoint
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        open_now = self.endpoint.open
        if len(open_now) >= MAX_CONNECTIONS:
            oldest = next(iter(open_now))
            oldest.abort()
        open_now[self] = None
        self.timer = asyncio.get_running_loop().call_later(_DEADLINE, self.abort)

    def abort(self) -> None:
        self.endpoint.open.pop(self, None)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.open.pop(self, None)
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer and len(self.buffer) < _MAX_REQUEST:
            return
        line = self.buffer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(self.buffer) >= _MAX_REQUEST and b"\r\n\r\n" not in self.buffer:
            self.respond(431, "text/plain", b"request header too large\n")
        elif len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self.respond(400, "text/plain", b"bad request\n")
        elif parts[0] != "GET":
            self.respond(405, "text/plain", b"only GET\n")
        else:
            self.respond(*self.endpoint.route(parts[1].split("?", 1)[0]))

    def respond(self, status: int, content_type: str, body: bytes) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  431: "Request Header Fields Too Large", 503: "Service Unavailable"}[status]
        assert self.transport is not None  # noqa: S101 - data arrives only while connected
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        self.endpoint.open.pop(self, None)  # answered: no longer holds a slot
        self.transport.close()


class StatusEndpoint:
    """Serves a listener's metrics and status."""

    def __init__(self, listener: Listener, role: str) -> None:
        self.listener = listener
        self.registry = registry_for(listener, role)
        self.open: dict[_Request, None] = {}
        """Connections not answered yet, oldest first."""
        self._server: asyncio.Server | None = None

    def route(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            if self.listener.closing:
                return 503, "text/plain", b"shutting down\n"
            return 200, "text/plain", b"ok\n"
        if path == "/status":
            return 200, "application/json", json.dumps(status_document(self.listener),
                                                       indent=2).encode()
        return 404, "text/plain", b"not found: try /metrics, /healthz or /status\n"

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Request(self), host, port, backlog=64)
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
