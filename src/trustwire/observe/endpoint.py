"""A small HTTP endpoint for operators: ``/metrics``, ``/healthz``, ``/status``.

Plain HTTP on loopback by default (the CLI demands ``--unsafe-metrics-listen``
for anything else): it names live identities. One request per connection,
GET only, 8 KiB of request header at most, a 5-second read timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trustwire import __version__
from trustwire.observe.metrics import registry_for

if TYPE_CHECKING:
    from trustwire.server.listener import Listener

__all__ = ["StatusEndpoint", "status_document"]

_MAX_REQUEST = 8192


def status_document(listener: Listener) -> dict[str, Any]:
    """What ``/status`` returns (also used by ``cert revoke --dry-run``)."""
    material = listener.material
    now = time.time()
    connections = []
    for conn in list(listener.connections):
        peer = conn.peer
        started = getattr(conn, "started", None)
        connections.append({
            "peer": conn.address,
            "cn": peer.common_name if peer else None,
            "serial": peer.serial_hex if peer else None,
            "fingerprint": peer.fingerprint if peer else None,
            "uri": list(peer.uris) if peer else [],
            "open": conn.opened,
            "age_s": round(time.monotonic() - started, 1) if started is not None else None,
        })
    crl = None
    if material is not None and material.crl_this_update is not None:
        crl = {"this_update": material.crl_this_update.isoformat(),
               "next_update": material.crl_next_update.isoformat()
               if material.crl_next_update else None,
               "age_s": round(now - material.crl_this_update.timestamp(), 1),
               "revoked": len(material.revoked)}
    return {
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(now - listener.started, 1),
        "listening": [f"{h}:{p}" for h, p in listener.addresses],
        "certificate": material.certificate_facts() if material is not None else {},
        "crl": crl,
        "connections": connections,
        "reloads": {"ok": listener.stats["reloads_ok"], "failed": listener.stats["reloads_failed"],
                    "last_error": listener.last_reload_error,
                    "last_at": listener.last_reload_at},
        "stats": dict(listener.stats),
    }


class _Request(asyncio.Protocol):
    def __init__(self, endpoint: StatusEndpoint) -> None:
        self.endpoint = endpoint
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.timer = asyncio.get_running_loop().call_later(5, transport.close)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer and len(self.buffer) < _MAX_REQUEST:
            return
        if self.timer is not None:
            self.timer.cancel()
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
        assert self.transport is not None  # noqa: S101 - set in connection_made
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        self.transport.close()


class StatusEndpoint:
    """Serves a listener's metrics and status."""

    def __init__(self, listener: Listener, role: str) -> None:
        self.listener = listener
        self.registry = registry_for(listener, role)
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
        self._server = await loop.create_server(lambda: _Request(self), host, port)
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
