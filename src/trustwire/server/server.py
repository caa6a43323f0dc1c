"""The asyncio mTLS server.

Theory of operation: ``loop.create_server`` accepts TCP connections (uvloop
when installed); each gets a :class:`TLSProtocol` driving OpenSSL and a
connection object from :mod:`trustwire.server.connection`. One repeating
timer per server (the *sweep*, once a second) enforces handshake and idle
timeouts and flushes the audit log, instead of a timer per connection.

Limits (:class:`Limits`) bound everything a client can make the server hold:
connections, handshake time, idle time, message size, queued messages, and
unsent replies (a peer that stops reading stops being read).

Shutdown (:meth:`Server.close`): stop accepting, let every connection finish
the message it is receiving and send its replies, close each with
close_notify, and abort what is left when the grace period ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from trustwire.authz.policy import Policy
from trustwire.errors import ConfigError
from trustwire.observe.audit import AuditLog
from trustwire.server.connection import (
    Connection,
    ReplyConnection,
    Responder,
    StreamHandler,
    _ServerConnection,
)
from trustwire.tls.context import ServerTLS
from trustwire.tls.protocol import TLSProtocol
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["Limits", "Server", "run"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on what one client can make the server hold."""

    max_connections: int = 10_000
    """Connections beyond this are closed right after accept."""
    handshake_timeout: float = 10.0
    """Seconds a client has to complete the TLS handshake."""
    idle_timeout: float = 300.0
    """Seconds without a message before the server closes (0: never)."""
    max_frame: int = DEFAULT_MAX_FRAME
    """Largest message, in bytes."""
    max_queued: int = 64
    """Messages a stream handler may fall behind before reading pauses."""
    write_high_water: int = 256 * 1024
    """Unsent reply bytes per connection before reading from it pauses."""
    shutdown_grace: float = 10.0
    """Seconds in-flight messages get at shutdown before connections are cut."""

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_frame < 1 or self.max_queued < 1:
            raise ConfigError("limits must be positive")
        if self.handshake_timeout <= 0 or self.idle_timeout < 0 or self.shutdown_grace < 0:
            raise ConfigError("timeouts must be positive (idle timeout 0 means none)")


class _Refuser(asyncio.Protocol):
    """Closes a connection over the limit at once (no handshake: that is what is scarce)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class Server:
    """An mTLS message server.

    Args:
        handler: ``async def handler(conn)`` or a ``@responder`` function.
        tls: server TLS settings (or a ready SSLContext).
        policy: who may connect once verified (default: any certificate from the CA).
        limits: resource bounds.
        framing: ``length`` (default) or ``line``.
        audit: where connection events go.

    Raises:
        ConfigError: a handler of neither shape, or a policy without client authentication.
    """

    def __init__(
        self, handler: StreamHandler | Responder, *, tls: ServerTLS | ssl.SSLContext,
        policy: Policy | None = None, limits: Limits | None = None, framing: str = "length",
        audit: AuditLog | None = None,
    ) -> None:
        self.policy = policy or Policy()
        if isinstance(tls, ServerTLS):
            if not tls.client_auth and not self.policy.is_open():
                raise ConfigError("an access policy needs client certificates",
                                  hint="drop --no-client-auth or the --allow-* options")
            self.context = tls.context()
        else:
            self.context = tls
        if framing not in ("length", "line"):
            raise ConfigError(f"unknown framing {framing!r}: use length or line")
        self.framing = framing
        self.limits = limits or Limits()
        self.audit = audit
        self._responder: Responder | None = None
        self._stream: StreamHandler | None = None
        if getattr(handler, "__trustwire_responder__", False):
            self._responder = handler  # type: ignore[assignment]
        elif inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                getattr(handler, "__call__", None)):  # noqa: B004 - async callable objects too
            self._stream = handler  # type: ignore[assignment]
        else:
            raise ConfigError(
                "a handler must be an async function taking a Connection, or a function "
                "decorated with @trustwire.responder",
            )
        self.connections: set[_ServerConnection] = set()
        self.closing = False
        self.stats: collections.Counter[str] = collections.Counter()
        self.handshake_failures: collections.Counter[str] = collections.Counter()
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed: asyncio.Event | None = None
        self.started = time.time()

    # -- lifecycle ------------------------------------------------------------------------------

    def _protocol(self) -> asyncio.BaseProtocol:
        if len(self.connections) >= self.limits.max_connections or self.closing:
            self.stats["refused"] += 1
            self.audit_event("refused", None, reason="max connections reached"
                             if not self.closing else "shutting down")
            return _Refuser()
        conn: _ServerConnection = (
            ReplyConnection(self, self._responder) if self._responder is not None
            else Connection(self, self._stream)  # type: ignore[arg-type]
        )
        tls = TLSProtocol(self.context, conn, server_side=True,  # type: ignore[arg-type]
                          write_high_water=self.limits.write_high_water)
        conn.tls = tls
        self.connections.add(conn)
        self.stats["accepted"] += 1
        return tls

    async def start(
        self, host: str | None = None, port: int = 0, *, sock: socket.socket | None = None,
        reuse_port: bool = False, backlog: int = 1024,
    ) -> list[tuple[str, int]]:
        """Start listening; returns the bound addresses (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(self._protocol, sock=sock, backlog=backlog)
        else:
            server = await loop.create_server(self._protocol, host, port, backlog=backlog,
                                              reuse_port=reuse_port or None)
        self._servers.append(server)
        self._closed = asyncio.Event()
        if self._sweeper is None:
            self._sweeper = loop.call_later(1.0, self._sweep)
        return self.addresses

    @property
    def addresses(self) -> list[tuple[str, int]]:
        result = []
        for server in self._servers:
            for s in server.sockets:
                name = s.getsockname()
                result.append((str(name[0]), int(name[1])))
        return result

    async def serve(self, host: str | None = None, port: int = 0) -> None:
        """Start and serve until :meth:`close` completes."""
        await self.start(host, port)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await self._closed.wait()

    def _sweep(self) -> None:
        now = time.monotonic()
        limits = self.limits
        for conn in list(self.connections):
            conn.idle_check(now, limits.handshake_timeout, limits.idle_timeout)
        if self.audit is not None:
            self.audit.flush()
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting, finish in-flight messages within ``grace`` seconds, then cut the rest."""
        if self.closing:
            await self.wait_closed()
            return
        self.closing = True
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.opened:
                conn.begin_shutdown()
            else:
                conn.tls.abort()
        deadline = time.monotonic() + (self.limits.shutdown_grace if grace is None else grace)
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            if isinstance(conn, Connection):
                conn.cancel()
            conn.tls.abort()
        await asyncio.sleep(0)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        if self.audit is not None:
            self.audit.flush()
        if self._closed is not None:
            self._closed.set()

    def forget(self, conn: _ServerConnection) -> None:
        self.connections.discard(conn)

    def audit_event(self, event: str, conn: _ServerConnection | None, **fields: Any) -> None:
        if self.audit is None:
            return
        if conn is not None:
            fields["peer"] = conn.tls.peername
            peer = conn.peer
            if peer is not None:
                fields["cn"] = peer.common_name
                fields["serial"] = peer.serial_hex
                fields["fingerprint"] = peer.fingerprint
                if peer.uris:
                    fields["uri"] = list(peer.uris)
        self.audit.event(event, **fields)


def run(main: Callable[[], Coroutine[Any, Any, T]] | Awaitable[T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's default loop."""
    coro = main() if callable(main) else main
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
