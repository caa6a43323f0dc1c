"""The async client, on the same TLS transport and message channel as the server.

::

    async with await trustwire.aconnect("localhost", 8443, tls=tls) as c:
        reply = await c.request(b"Hello, server!")

Behaves like the blocking client: whole messages, timeouts, diagnoses, and
the TLS 1.3 wait for the server's verdict on our certificate (see
:func:`trustwire.wire.channel.tls13_verdict`), bounded by
:func:`trustwire.wire.channel.verdict_wait`.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import types

from trustwire.client._common import (
    client_context,
    connect_error,
    own_certificate,
    presents_certificate,
    refusal,
    split_server_name,
)
from trustwire.errors import (
    ConnectionBroken,
    ConnectionClosed,
    Diagnosis,
    HandshakeError,
    ProtocolError,
    Timeout,
    TrustwireError,
)
from trustwire.identity import PeerIdentity
from trustwire.net.transport import TLS_OPEN, TLSTransport
from trustwire.tls.context import ClientTLS
from trustwire.tls.diagnose import diagnose_eof, diagnose_timeout
from trustwire.wire.channel import OPEN, Channel, Verdict, peer_error, tls13_verdict, verdict_wait
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["AsyncClient", "aconnect"]


class AsyncClient:
    """A connected, verified async client. Use :func:`aconnect` to make one."""

    def __init__(self, *, framing: str, max_frame: int, timeout: float) -> None:
        self._channel = Channel(framing, max_frame)
        self._timeout = timeout
        self._messages: collections.deque[bytes] = collections.deque()
        self._error: TrustwireError | None = None
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self.tls: TLSTransport | None = None
        self.peer: PeerIdentity | None = None
        """The server's verified identity."""
        self.version: str | None = None

    # -- TLS callbacks --------------------------------------------------------------------------

    def tls_connected(self, tls: TLSTransport) -> None:
        self.tls = tls

    def tls_established(self, tls: TLSTransport) -> None:
        self.peer = tls.peer
        self.version = tls.version()
        if not self._handshake.done():
            self._handshake.set_result(None)

    def tls_data(self, data: memoryview) -> None:
        channel = self._channel
        try:
            self._messages.extend(channel.receive(data))
        except ProtocolError as exc:
            self._error = ConnectionBroken(f"the server broke the framing: {exc.message}")
            if self.tls is not None:
                self.tls.abort()
        if channel.state is not OPEN and channel.peer_error is not None:
            self._error = peer_error(channel.peer_error)
        self._wake()

    def tls_eof(self, clean: bool) -> None:
        if clean:
            try:
                self._messages.extend(self._channel.receive_eof())
            except ProtocolError as exc:
                self._error = ConnectionBroken(f"the server broke the framing: {exc.message}")
            if self._channel.peer_error is not None and self._error is None:
                self._error = peer_error(self._channel.peer_error)
        self._ended = True
        self._wake()

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        error = refusal(diagnosis)
        error.__cause__ = exc
        if not self._handshake.done():
            self._handshake.set_exception(error)
        elif self._error is None:
            self._error = error
        self._wake()

    def tls_closed(self, exc: BaseException | None) -> None:
        self._ended = True
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionBroken("the connection closed during the handshake"))
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def tls_pause_writing(self) -> None:
        self._write_paused = True

    def tls_resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- API ------------------------------------------------------------------------------------

    def _transport(self) -> TLSTransport:
        if self.tls is None:
            raise ConnectionClosed("the connection is closed")
        return self.tls

    async def _wait(self, what: str) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, self._timeout)
        except TimeoutError as exc:
            raise Timeout(f"no {what} within {self._timeout:g} seconds") from exc
        finally:
            self._waiter = None

    def _verdict(self) -> Verdict:
        tls = self._transport()
        return tls13_verdict(ticket=tls.session_ticket_received(), messages=bool(self._messages),
                             refused=self._error is not None, ended=self._ended)

    async def _confirm(self, wait: float) -> None:
        """TLS 1.3: wait (at most ``wait`` seconds) for the server's verdict on our certificate."""
        tls = self._transport()
        verdict: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def check() -> None:
            if not verdict.done() and self._verdict() is not Verdict.UNDECIDED:
                verdict.set_result(None)

        tls.on_read = check
        check()
        try:
            await asyncio.wait_for(asyncio.shield(verdict), wait)
        except TimeoutError:
            return  # no ticket: a refusal, if any, surfaces on the first read
        finally:
            tls.on_read = None
        if self._verdict() is Verdict.REFUSED:
            raise self._error if self._error is not None else HandshakeError(diagnose_eof("client"))

    async def send(self, message: bytes) -> None:
        """Send one whole message; waits while the server is not reading.

        Raises:
            ConnectionClosed, ConnectionBroken, LocalProtocolError
        """
        if self._error is not None:
            raise self._error
        tls = self._transport()
        try:
            tls.write(self._channel.send(message))
        except ConnectionClosed:
            raise ConnectionClosed("the connection is closed") from None
        while self._write_paused and tls.state is TLS_OPEN:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._drained, self._timeout)
            except TimeoutError as exc:
                raise Timeout(f"the server did not read within {self._timeout:g} seconds") from exc
            finally:
                self._drained = None

    async def recv(self) -> bytes:
        """The next whole message.

        Raises:
            ConnectionClosed, Timeout, ConnectionBroken
            HandshakeError: the server refused us (AccessDenied: its policy did).
        """
        while not self._messages:
            if self._error is not None:
                raise self._error
            if self._ended or self._transport().state is not TLS_OPEN:
                raise ConnectionClosed("the server closed the connection")
            await self._wait("reply")
        return self._messages.popleft()

    async def request(self, message: bytes) -> bytes:
        await self.send(message)
        return await self.recv()

    async def close(self) -> None:
        """close_notify, then wait (briefly) for the connection to end."""
        self._channel.close()
        if self.tls is None:
            return
        self.tls.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._lost), 2.0)
        except TimeoutError:
            self.tls.abort()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: types.TracebackType | None) -> None:
        await self.close()


async def aconnect(
    host: str, port: int, *, tls: ClientTLS | ssl.SSLContext, framing: str = "length",
    max_frame: int = DEFAULT_MAX_FRAME, timeout: float = 10.0, confirm: bool = True,
) -> AsyncClient:
    """Connect, handshake and wait for the server's verdict (see :func:`trustwire.connect`)."""
    context = client_context(tls)
    server_name = split_server_name(tls, host)
    loop = asyncio.get_running_loop()
    client = AsyncClient(framing=framing, max_frame=max_frame, timeout=timeout)

    def factory() -> TLSTransport:
        return TLSTransport(context, client, server_side=False, server_hostname=server_name,
                            own_cert=own_certificate(tls), presents_cert=presents_certificate(tls))

    started = time.monotonic()
    try:
        await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    except TimeoutError as exc:
        raise Timeout(f"cannot connect to {host}:{port} within {timeout:g} seconds") from exc
    except OSError as exc:
        raise connect_error(host, port, exc) from exc
    transport = client._transport()
    try:
        await asyncio.wait_for(asyncio.shield(client._handshake), timeout)
    except TimeoutError as exc:
        transport.abort()
        raise HandshakeError(diagnose_timeout("client", timeout)) from exc
    if confirm and client.version == "TLSv1.3":
        try:
            await client._confirm(verdict_wait(time.monotonic() - started, timeout))
        except BaseException:
            transport.abort()
            raise
    return client
