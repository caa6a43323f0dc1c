"""The tunnel's two modes, both a :class:`Listener` of :class:`Splice` sessions.

``tunnel server``: accept mTLS, admit by the gate (a refusal is a TLS alert,
as stunnel's), connect to the target, and splice; a PROXY v2 header can tell
the target who is calling. ``tunnel client``: accept plain TCP (loopback by
default), connect to the target with mTLS (verifying the server's name and,
optionally, pinning its identity with the same allow-lists), and splice.

Before the target is connected, the TLS side is not read (records wait in the
BIO), so nothing is buffered in Python. A target that cannot be reached
closes the client's connection and logs the reason; the listener goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from trustwire.authz.policy import Policy
from trustwire.errors import ConfigError, Diagnosis
from trustwire.net.addresses import peer_of
from trustwire.net.listener import Limits, Listener
from trustwire.net.material import Material
from trustwire.net.observer import Observer
from trustwire.net.transport import TLS_OPEN
from trustwire.ops.reload import Reloader, ReloadOutcome, TrustSource
from trustwire.ops.runtime import Operations, run_listener
from trustwire.server.server import ServerSource, server_material
from trustwire.tls.context import ClientTLS
from trustwire.tls.diagnose import diagnose_timeout
from trustwire.tunnel.splice import CONNECT_TIMEOUT, Plain, Splice, Target, failure_reason
from trustwire.wire.proxyv2 import ProxyHeader, encode

__all__ = ["Target", "TunnelClient", "TunnelServer"]


class _Reloadable(Listener):
    reloader: Reloader | None = None

    def reload(self, reason: str = "requested") -> ReloadOutcome:
        """Re-read certificates, CA, CRL and policy; cut sessions no longer admitted.

        Raises:
            ConfigError: made from an SSLContext (nothing to re-read).
        """
        if self.reloader is None:
            raise ConfigError("this tunnel was made from an SSLContext: it has no files to "
                              "reload")
        return self.reloader.reload(reason)

    async def serve(self, host: str | None = None, port: int = 0, *,
                    operations: Operations | None = None,
                    ready: Callable[[list[tuple[str, int]]], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT, reloading on SIGHUP and file changes (see Server.serve)."""
        await run_listener(self, host, port, operations=operations or Operations(),
                           reloader=self.reloader, announce=ready)


class _TunnelIn(Splice):
    """``tunnel server``: mTLS accepted, target connected once the gate admitted the peer."""

    __slots__ = ()

    def on_open(self) -> None:
        self.tls.pause_reading()  # until the target is connected; records wait in the BIO
        asyncio.get_running_loop().create_task(self._connect_target())

    async def _connect_target(self) -> None:
        listener = self.listener
        assert isinstance(listener, TunnelServer)  # noqa: S101 - only TunnelServer makes these
        try:
            await asyncio.wait_for(listener.target.connect(lambda: Plain(self)), CONNECT_TIMEOUT)
        except ConnectionResetError as exc:
            # Accepted, then reset before the connect completed here: pass the reset on.
            self._reason = f"target connection failed: {failure_reason(exc)}"
            self._ending = True
            self.tls.reset()
            return
        except (OSError, TimeoutError) as exc:
            listener.stats.target_unreachable += 1
            self._reason = f"target {listener.target.describe()} unreachable: {failure_reason(exc)}"
            self.tls.close()
            return
        if self.tls.state is not TLS_OPEN or self.tls.closed:  # gone, or cut, meanwhile
            if self.plain is not None:
                self.plain.abort()
            return
        if listener.proxy_protocol and self.plain is not None:
            self.plain.write(self._proxy_header())
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


class TunnelServer(_Reloadable):
    """Accept mutual TLS, admit by the policy, and pass the bytes to ``target``.

    Args:
        target: where the plain service listens (TCP or Unix socket).
        tls: server TLS settings (files, reloadable), a TrustSource, or a ready SSLContext.
        policy: who may pass (default: any certificate from the CA); a Path is a policy file.
        proxy_protocol: send a PROXY v2 header with the client's address and identity.
    """

    def __init__(self, *, target: Target, tls: ServerSource,
                 policy: Policy | Path | None = None, limits: Limits | None = None,
                 observer: Observer | None = None, proxy_protocol: bool = False,
                 keep_revoked_sessions: bool = False) -> None:
        material, source = server_material(tls, policy)
        super().__init__(material, limits=limits, observer=observer)
        self.target = target
        self.proxy_protocol = proxy_protocol
        self.reloader = (Reloader(self, source, keep_sessions=keep_revoked_sessions)
                         if source is not None else None)

    def make_protocol(self) -> asyncio.BaseProtocol:
        session = _TunnelIn(self)
        self.track(session)
        return session.tls


class _TunnelOut(Splice):
    """``tunnel client``: plain TCP accepted, mTLS to the target."""

    __slots__ = ("_connecting",)
    plain_role = "client"

    def __init__(self, listener: TunnelClient) -> None:
        super().__init__(listener, server_side=False, server_hostname=listener.server_name,
                         presents_cert=listener.tls_settings.presents_certificate)
        self._connecting: asyncio.Task[None] | None = None

    @property
    def address(self) -> str | None:
        transport = self.plain.transport if self.plain is not None else None
        found = peer_of(transport) if transport is not None else None
        return found[1] if found else None

    def plain_made(self, plain: Plain) -> None:
        super().plain_made(plain)
        self._connecting = asyncio.get_running_loop().create_task(self._connect_target())

    async def _connect_target(self) -> None:
        listener = self.listener
        assert isinstance(listener, TunnelClient)  # noqa: S101 - only TunnelClient makes these
        try:
            await asyncio.wait_for(listener.target.connect(lambda: self.tls), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            listener.stats.target_unreachable += 1
            self._reason = (f"target {listener.target.describe()} unreachable: "
                            f"{failure_reason(exc)}")
            if listener.observer is not None:
                listener.observer.closed(self)
            listener.forget(self)
            if self.plain is not None:
                self.plain.abort()

    def on_open(self) -> None:
        self.flush_early()
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.resume_reading()

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        super().tls_failed(exc, diagnosis, after_handshake)
        if after_handshake:  # e.g. TLS 1.3: the server refused our certificate late
            self._reason = f"refused by the target: {diagnosis.why}"
        if self.plain is not None:
            self.plain.abort()

    def timeout_diagnosis(self, seconds: float) -> Diagnosis:
        return diagnose_timeout("client", seconds)  # we are the TLS client

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
            self.tls.abort()  # tls_closed() then forgets this session
        else:
            self.listener.forget(self)


class TunnelClient(_Reloadable):
    """Accept plain TCP (loopback by default) and carry it to ``target`` over mutual TLS.

    Args:
        target: the TLS server (usually a ``tunnel server``).
        tls: client TLS settings (identity, CA, server name to verify).
        policy: optional pin on the server's identity (same allow-lists as servers use).
    """

    server_side = False

    def __init__(self, *, target: Target, tls: ClientTLS | TrustSource,
                 policy: Policy | Path | None = None, limits: Limits | None = None,
                 observer: Observer | None = None, keep_revoked_sessions: bool = False) -> None:
        if target.path is not None:
            raise ConfigError("a tunnel client connects over TCP: give --target HOST:PORT")
        source = tls if isinstance(tls, TrustSource) else TrustSource.of(tls, policy)
        if not isinstance(source.tls, ClientTLS):
            raise ConfigError("a tunnel client needs ClientTLS settings")
        tls = source.tls
        material: Material = source.build()
        super().__init__(material, limits=limits, observer=observer)
        self.target = target
        self.tls_settings = tls
        self.server_name = (tls.server_name or target.host or "").strip("[]")
        self.reloader = Reloader(self, source, keep_sessions=keep_revoked_sessions)

    def make_protocol(self) -> asyncio.BaseProtocol:
        session = _TunnelOut(self)
        self.track(session)
        return Plain(session)
