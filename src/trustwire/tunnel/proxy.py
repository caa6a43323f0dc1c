"""The tunnel: mutual TLS on one side, plain TCP (or a Unix socket) on the other.

Theory of operation
-------------------
``tunnel server``: accept mTLS, check the policy, connect to the target, and
splice. ``tunnel client``: accept plain TCP, connect to the target with mTLS
(verifying the server's name and, optionally, pinning its identity), and
splice. Both reuse the server's pieces: :class:`Listener` for accepting,
limits, timeouts, audit and shutdown; :class:`TLSProtocol` for TLS and
diagnoses; :class:`Policy` for who may pass.

A *splice* pumps bytes between the two sides with TCP's semantics:

* Bulk: each side reads up to 64 KiB per call into a shared buffer; TLS
  plaintext arrives in batches of up to 256 KiB and goes to the plain side in
  one write. No per-byte Python work.
* Backpressure, both ways: when one side's kernel buffer is full (its
  transport's ``pause_writing``), the other side stops reading, so a slow
  side bounds memory to the transports' high-water marks.
* Half-close, both ways: EOF from the plain side becomes close_notify on the
  TLS side (and the reverse becomes a TCP FIN), while the other direction
  keeps flowing. When both directions are done, both sides close.
* Resets: a side lost with an error is passed on as a TCP reset, so the other
  end sees a failure, not a clean end of data.
* Before the target is connected, the TLS side is not read (records wait in
  the BIO), so nothing is buffered in Python. A target that cannot be reached
  closes the client's connection and logs the reason; the listener goes on.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustwire.authz.policy import Policy
from trustwire.errors import ConfigError
from trustwire.observe.audit import AuditLog
from trustwire.server.connection import _ServerConnection
from trustwire.server.listener import Limits, Listener
from trustwire.server.server import server_context
from trustwire.tls.context import ClientTLS, ServerTLS
from trustwire.tls.diagnose import Diagnosis, diagnose_timeout
from trustwire.tls.protocol import (
    TLS_CLOSED,
    TLS_HANDSHAKING,
    TLS_OPEN,
    TLSProtocol,
    _buffers,
    reset_transport,
)
from trustwire.wire.proxyv2 import ProxyHeader, encode

__all__ = ["Target", "TunnelClient", "TunnelServer"]

CONNECT_TIMEOUT = 10.0
"""Seconds to reach the target before giving up on this connection."""


@dataclass(frozen=True)
class Target:
    """Where a tunnel connects: ``HOST:PORT`` or a Unix socket path."""

    host: str | None = None
    port: int | None = None
    path: Path | None = None

    def describe(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = self.host or ""
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def connect(self, factory: Any) -> tuple[asyncio.BaseTransport, Any]:
        loop = asyncio.get_running_loop()
        if self.path is not None:
            return await loop.create_unix_connection(factory, str(self.path))
        if self.host is None or self.port is None:
            raise ConfigError("a target needs HOST:PORT or a Unix socket path")
        return await loop.create_connection(factory, self.host, self.port)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g}s"
    return str(exc) or type(exc).__name__


class _Plain(asyncio.BufferedProtocol):
    """The plain TCP side of a splice; tells its owner everything."""

    __slots__ = ("_readbuf", "owner", "transport")

    def __init__(self, owner: _Splice) -> None:
        self.owner = owner
        self.transport: Any = None
        self._readbuf = _buffers.read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.owner.plain_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._readbuf

    def buffer_updated(self, nbytes: int) -> None:
        self.owner.plain_data(self._readbuf[:nbytes])

    def eof_received(self) -> bool:
        self.owner.plain_eof()
        return True  # keep our write side open: half-close

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.plain_lost(exc)

    def pause_writing(self) -> None:
        self.owner.tls.pause_reading()

    def resume_writing(self) -> None:
        self.owner.tls.resume_reading()


class _Splice(_ServerConnection):
    """Both tunnel modes: a TLS side (``tls``) and a plain side (``plain``), spliced."""

    __slots__ = ("_early", "_ending", "_plain_done", "_tls_done", "plain")
    carries_messages = False

    def __init__(self, listener: Listener) -> None:
        super().__init__(listener)
        self.plain: _Plain | None = None
        self._tls_done = False
        self._plain_done = False
        self._early: bytes | None = None
        """Plain bytes that arrived before the TLS side was open (at most one read)."""
        self._ending = False
        """We decided to end this tunnel; later events must not rewrite the reason."""

    # -- TLS side -------------------------------------------------------------------------------

    def tls_data(self, data: memoryview) -> None:
        plain = self.plain
        if plain is not None and plain.transport is not None:
            plain.transport.write(bytes(data))  # a copy: the view is a shared buffer

    def tls_eof(self, clean: bool) -> None:
        self._tls_done = True
        plain = self.plain
        if (plain is not None and plain.transport is not None
                and not plain.transport.is_closing() and plain.transport.can_write_eof()):
            plain.transport.write_eof()
        if self._plain_done:
            self._finish()

    def tls_pause_writing(self) -> None:
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.pause_reading()

    def tls_resume_writing(self) -> None:
        if self.plain is not None and self.plain.transport is not None:
            transport = self.plain.transport
            if not transport.is_closing():
                transport.resume_reading()

    def tls_closed(self, exc: BaseException | None) -> None:
        plain = self.plain
        if plain is not None and plain.transport is not None and not plain.transport.is_closing():
            if exc is not None:
                self._reason = f"client connection failed: {_reason(exc)}"
                reset_transport(plain.transport)
            else:
                plain.transport.close()
        super().tls_closed(exc)

    # -- plain side -----------------------------------------------------------------------------

    def plain_made(self, plain: _Plain) -> None:
        self.plain = plain

    def plain_data(self, data: memoryview) -> None:
        tls = self.tls
        if tls.state is TLS_OPEN:
            if not tls.write_closed:
                tls.write(data)
        elif tls.state is TLS_HANDSHAKING and self.plain is not None:
            # uvloop starts reading right after connection_made, whatever it asked; keep
            # these bytes and stop reading until the TLS side is up.
            self._early = (self._early or b"") + bytes(data)
            self.plain.transport.pause_reading()

    def flush_early(self) -> None:
        if self._early is not None:
            early, self._early = self._early, None
            self.tls.write(early)

    def plain_eof(self) -> None:
        self._plain_done = True
        self.tls.write_eof()
        if self._tls_done:
            self._finish()

    def plain_lost(self, exc: Exception | None) -> None:
        tls = self.tls
        if self._ending or tls.state is TLS_CLOSED or tls.transport is None:
            return
        if exc is not None:
            self._reason = f"{self.plain_role} connection failed: {_reason(exc)}"
            tls.reset()
        else:
            if not self._plain_done:
                self._reason = f"{self.plain_role} closed the connection"
            tls.close()

    plain_role = "target"

    def _finish(self) -> None:
        self._ending = True
        self._reason = "both sides finished"
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.close()
        self.tls.close()

    # -- listener hooks -------------------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        self._ending = True
        self.abort_plain()
        self.tls.close()

    def abort_plain(self) -> None:
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.abort()

    def abort(self) -> None:
        self._ending = True
        self.abort_plain()
        self.tls.abort()

    def begin_shutdown(self) -> None:
        """A byte stream has no message boundary to stop at: let it run until the grace ends."""

    def revoke(self, reason: str) -> None:
        """Tunnels are cut at once: there is no message boundary to wait for."""
        self._reason = reason
        self.refuse(reason)

    def live_bytes(self) -> tuple[int, int, int]:
        return self.tls.bytes_in, self.tls.bytes_out, 0


class _TunnelIn(_Splice):
    """``tunnel server``: mTLS accepted, target connected after the policy says yes."""

    __slots__ = ()

    def on_open(self) -> None:
        self.tls.pause_reading()  # until the target is connected; records wait in the BIO
        asyncio.get_running_loop().create_task(self._connect_target())

    async def _connect_target(self) -> None:
        listener: TunnelServer = self.server
        try:
            await asyncio.wait_for(listener.target.connect(lambda: _Plain(self)), CONNECT_TIMEOUT)
        except ConnectionResetError as exc:
            # Accepted, then reset before the connect completed here: pass the reset on.
            self._reason = f"target connection failed: {_reason(exc)}"
            self._ending = True
            self.tls.reset()
            return
        except (OSError, TimeoutError) as exc:
            listener.stats["target_unreachable"] += 1
            self._reason = f"target {listener.target.describe()} unreachable: {_reason(exc)}"
            self.tls.close()
            return
        if self.tls.state is not TLS_OPEN:  # the client left while we connected
            self.abort_plain()
            return
        if listener.proxy_protocol and self.plain is not None and self.plain.transport is not None:
            self.plain.transport.write(self._proxy_header())
        self.tls.resume_reading()

    def _proxy_header(self) -> bytes:
        transport = self.tls.transport
        peer = self.peer
        source = transport.get_extra_info("peername") if transport else None
        local = transport.get_extra_info("sockname") if transport else None
        return encode(ProxyHeader(
            source=(str(source[0]), int(source[1])) if source else None,
            destination=(str(local[0]), int(local[1])) if local else None,
            tls_version=self.tls.version(), cipher=self.tls.cipher(),
            common_name=peer.common_name if peer else None, client_cert=peer is not None,
            fingerprint=peer.fingerprint if peer else None, uris=peer.uris if peer else (),
        ))


class TunnelServer(Listener):
    """Accept mutual TLS, apply the policy, and pass the bytes to ``target``.

    Args:
        target: where the plain service listens (TCP or Unix socket).
        tls: server TLS settings.
        policy: who may pass (default: any certificate from the CA).
        proxy_protocol: send a PROXY v2 header with the client's address and identity.
    """

    def __init__(self, *, target: Target, tls: ServerTLS | ssl.SSLContext,
                 policy: Policy | None = None, limits: Limits | None = None,
                 audit: AuditLog | None = None, proxy_protocol: bool = False) -> None:
        super().__init__(limits=limits, audit=audit)
        self.target = target
        self.policy = policy or Policy()
        self.context = server_context(tls, self.policy)
        self.proxy_protocol = proxy_protocol

    def _protocol(self) -> asyncio.BaseProtocol:
        conn = _TunnelIn(self)
        conn.tls = TLSProtocol(self.context, conn, server_side=True,
                               write_high_water=self.limits.write_high_water)
        self.track(conn)
        return conn.tls


class _TunnelOut(_Splice):
    """``tunnel client``: plain TCP accepted, mTLS to the target."""

    __slots__ = ("_connecting",)
    plain_role = "client"

    def __init__(self, listener: TunnelClient) -> None:
        super().__init__(listener)
        self._connecting: asyncio.Task[None] | None = None

    @property
    def address(self) -> str | None:
        if self.plain is None or self.plain.transport is None:
            return None
        peer = self.plain.transport.get_extra_info("peername")
        if not peer:
            return None
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"

    def plain_made(self, plain: _Plain) -> None:
        super().plain_made(plain)
        self._connecting = asyncio.get_running_loop().create_task(self._connect_target())

    async def _connect_target(self) -> None:
        listener: TunnelClient = self.server
        target = listener.target
        try:
            await asyncio.wait_for(target.connect(lambda: self.tls), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            listener.stats["target_unreachable"] += 1
            self.server.audit_event("closed", self, reason=f"target {target.describe()} "
                                    f"unreachable: {_reason(exc)}", bytes_in=0, bytes_out=0)
            self.server.forget(self)
            self.abort_plain()

    def on_open(self) -> None:
        self.flush_early()
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.resume_reading()

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        super().tls_failed(exc, diagnosis, after_handshake)
        if after_handshake:  # e.g. TLS 1.3: the server refused our certificate late
            self._reason = f"refused by the target: {diagnosis.why}"
        self.abort_plain()

    def timeout_diagnosis(self, handshake_timeout: float) -> str:
        return diagnose_timeout("client", handshake_timeout).sentence()  # we are the TLS client

    def abort(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        super().abort()

    def plain_lost(self, exc: Exception | None) -> None:
        if self.tls.state is TLS_OPEN:
            super().plain_lost(exc)
            return
        # The client left before the tunnel was up.
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.tls.transport is not None:
            self.tls.abort()  # tls_closed() then forgets this connection
        else:
            self.server.forget(self)


class TunnelClient(Listener):
    """Accept plain TCP (loopback by default) and carry it to ``target`` over mutual TLS.

    Args:
        target: the TLS server (usually a ``tunnel server``).
        tls: client TLS settings (identity, CA, server name to verify).
        policy: optional pin on the server's identity (same allow-lists as servers use).
    """

    def __init__(self, *, target: Target, tls: ClientTLS, policy: Policy | None = None,
                 limits: Limits | None = None, audit: AuditLog | None = None) -> None:
        super().__init__(limits=limits, audit=audit)
        if target.path is not None:
            raise ConfigError("a tunnel client connects over TCP: give --target HOST:PORT")
        self.target = target
        self.tls_settings = tls
        self.policy = policy or Policy()
        self.context = tls.context()
        self.server_name = (tls.server_name or target.host or "").strip("[]")

    def _protocol(self) -> asyncio.BaseProtocol:
        conn = _TunnelOut(self)
        conn.tls = TLSProtocol(self.context, conn, server_side=False,
                               server_hostname=self.server_name,
                               write_high_water=self.limits.write_high_water,
                               presents_cert=self.tls_settings.presents_certificate)
        self.track(conn)
        return _Plain(conn)
