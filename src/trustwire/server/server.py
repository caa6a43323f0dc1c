"""The mTLS message server: a :class:`Listener` whose connections carry framed messages.

See :mod:`trustwire.server.listener` for accepting, limits, timeouts and
shutdown, and :mod:`trustwire.server.connection` for the two handler shapes.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections.abc import Awaitable, Callable, Coroutine
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
from trustwire.server.listener import Limits, Listener
from trustwire.tls.context import ServerTLS
from trustwire.tls.protocol import TLSProtocol

__all__ = ["Limits", "Server", "run", "server_context"]

T = TypeVar("T")


class Server(Listener):
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
        super().__init__(limits=limits, audit=audit)
        self.policy = policy or Policy()
        self.context = server_context(tls, self.policy)
        if framing not in ("length", "line"):
            raise ConfigError(f"unknown framing {framing!r}: use length or line")
        self.framing = framing
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

    def _protocol(self) -> asyncio.BaseProtocol:
        conn: _ServerConnection = (
            ReplyConnection(self, self._responder) if self._responder is not None
            else Connection(self, self._stream)  # type: ignore[arg-type]
        )
        tls = TLSProtocol(self.context, conn, server_side=True,  # type: ignore[arg-type]
                          write_high_water=self.limits.write_high_water)
        conn.tls = tls
        self.track(conn)
        return tls


def server_context(tls: ServerTLS | ssl.SSLContext, policy: Policy) -> ssl.SSLContext:
    """The context to accept with; a policy needs client certificates to judge."""
    if isinstance(tls, ServerTLS):
        if not tls.client_auth and not policy.is_open():
            raise ConfigError("an access policy needs client certificates",
                              hint="drop --no-client-auth or the --allow-* options")
        return tls.context()
    return tls


def run(main: Callable[[], Coroutine[Any, Any, T]] | Awaitable[T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's default loop."""
    coro = main() if callable(main) else main
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
