"""The mTLS message server: a :class:`Listener` whose sessions carry framed messages.

See :mod:`trustwire.net.listener` for accepting, limits, timeouts and
shutdown, :mod:`trustwire.net.gate` for admission, and
:mod:`trustwire.server.connection` for the two handler shapes. A server made
from :class:`ServerTLS` (files) reloads like ``trustwire serve`` does:
:meth:`Server.serve` watches the files and handles SIGHUP, SIGTERM and SIGINT,
and :meth:`Server.reload` is the same reload on demand::

    server = tw.Server(tw.services.upper, tls=tw.ServerTLS.from_identity(home, "server"),
                       policy=tw.Policy(cn={"alice"}))
    tw.run(server.serve("127.0.0.1", 8443))   # Ctrl-C drains and returns
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from trustwire.authz.policy import Policy
from trustwire.errors import ConfigError
from trustwire.net.listener import Limits, Listener
from trustwire.net.material import Material, from_context
from trustwire.net.observer import Observer
from trustwire.ops.audit import AuditLog, AuditObserver
from trustwire.ops.reload import Reloader, ReloadOutcome, TrustSource
from trustwire.ops.runtime import Operations, run_listener
from trustwire.server.connection import Connection, ReplySession, Responder, StreamHandler
from trustwire.tls.context import ServerTLS

__all__ = ["Limits", "Server", "ServerSource", "run", "server_material"]

T = TypeVar("T")


ServerSource = ServerTLS | TrustSource | ssl.SSLContext
"""What a server is made from: TLS files (reloadable), TLS files with a policy source
(flags and a policy file, reloadable), or a ready SSLContext (not reloadable)."""


def server_material(tls: ServerSource, policy: Policy | Path | None,
                    ) -> tuple[Material, TrustSource | None]:
    """What a server accepts with, and (for files) where it reloads from.

    Raises:
        ConfigError: a policy without client authentication, a policy file with a
            ready-made SSLContext (there are no files to reload it with), or both a
            TrustSource and a policy.
        ReloadError: the certificate, key, CA, CRL or policy file is unusable.
    """
    if isinstance(tls, (ServerTLS, TrustSource)):
        if isinstance(tls, TrustSource):
            if policy is not None:
                raise ConfigError("give the policy in the TrustSource, not beside it")
            source = tls
        else:
            source = TrustSource.of(tls, policy)
        if not isinstance(source.tls, ServerTLS):
            raise ConfigError("a server needs ServerTLS settings, not ClientTLS")
        if not source.tls.client_auth and not source.current_policy().is_open():
            raise ConfigError("an access policy needs client certificates",
                              hint="drop --no-client-auth or the --allow-* options")
        return source.build(), source
    if isinstance(policy, Path):
        raise ConfigError("a policy file needs ServerTLS (files to reload), not an SSLContext",
                          hint="pass tls=ServerTLS(...), or a Policy value")
    return from_context(tls, policy), None


class Server(Listener):
    """An mTLS message server.

    Args:
        handler: ``async def handler(conn)`` or a ``@responder`` function.
        tls: server TLS settings (files, reloadable), a :class:`TrustSource` (files plus a
            policy and policy file), or a ready SSLContext (not reloadable).
        policy: who may connect once verified (default: any certificate from the CA); a
            Path is a TOML policy file, re-read on every reload.
        limits: resource bounds.
        framing: ``length`` (default) or ``line``.
        audit: where connection events go (or pass any ``observer``).
        keep_revoked_sessions: on reload, keep open sessions the new state no longer admits.

    Raises:
        ConfigError: a handler of neither shape, or a policy without client authentication.
        ReloadError: unusable certificate, key, CA, CRL or policy file.
    """

    def __init__(
        self, handler: StreamHandler | Responder, *, tls: ServerSource,
        policy: Policy | Path | None = None, limits: Limits | None = None,
        framing: str = "length", audit: AuditLog | None = None,
        observer: Observer | None = None, keep_revoked_sessions: bool = False,
        sweep_interval: float = 1.0,
    ) -> None:
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
        material, source = server_material(tls, policy)
        if observer is None and audit is not None:
            observer = AuditObserver(audit)
        super().__init__(material, limits=limits, observer=observer,
                         sweep_interval=sweep_interval)
        self.reloader = (Reloader(self, source, keep_sessions=keep_revoked_sessions)
                         if source is not None else None)

    def make_protocol(self) -> asyncio.BaseProtocol:
        session = (ReplySession(self, self._responder) if self._responder is not None
                   else Connection(self, self._stream))  # type: ignore[arg-type]
        self.track(session)
        return session.tls

    def reload(self, reason: str = "requested") -> ReloadOutcome:
        """Re-read the certificate, key, CA, CRL and policy file; cut sessions no longer
        admitted. A failed reload keeps everything as it was.

        Raises:
            ConfigError: the server was made from an SSLContext (nothing to re-read).
        """
        if self.reloader is None:
            raise ConfigError("this server was made from an SSLContext: it has no files to "
                              "reload", hint="make it with tls=ServerTLS(...)")
        return self.reloader.reload(reason)

    async def serve(self, host: str | None = None, port: int = 0, *,
                    operations: Operations | None = None,
                    ready: Callable[[list[tuple[str, int]]], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT (or cancellation), reloading on SIGHUP and when the
        files change, then close gracefully (sessions get ``limits.shutdown_grace``).

        Args:
            host, port: where to listen (port 0 picks a free one).
            operations: reload interval, metrics endpoint, signal handling.
            ready: called with the bound addresses once listening.

        Raises:
            TrustwireError: the address cannot be bound.
        """
        await run_listener(self, host, port, operations=operations or Operations(),
                           reloader=self.reloader, announce=ready)


def run(main: Callable[[], Coroutine[Any, Any, T]] | Awaitable[T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's default loop."""
    coro = main() if callable(main) else main
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]
