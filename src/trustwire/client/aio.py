"""The async client, on the same TLS driver as the server.

::

    async with await trustwire.aconnect("localhost", 8443, tls=tls) as c:
        reply = await c.request(b"Hello, server!")

Behaves like the blocking client: whole messages, timeouts, diagnoses, and
the TLS 1.3 wait for the server's verdict on our certificate.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import types

from trustwire.client._common import (
    client_context,
    connect_error,
    own_certificate,
    presents_certificate,
    remote_error,
    split_server_name,
)
from trustwire.errors import (
    ConnectionBroken,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    Timeout,
    TrustwireError,
)
from trustwire.identity import PeerIdentity
from trustwire.tls.context import ClientTLS
from trustwire.tls.diagnose import Diagnosis, diagnose_eof, diagnose_timeout
from trustwire.tls.protocol import TLS_OPEN, TLSProtocol
from trustwire.wire import NEED_DATA, Closed, Message, RemoteError, make_codec
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["AsyncClient", "aconnect"]


class AsyncClient:
    """A connected, verified async client. Use :func:`aconnect` to make one."""

    def __init__(self, *, framing: str, max_frame: int, timeout: float) -> None:
        self._codec = make_codec(framing, max_frame)
        self._timeout = timeout
        self._messages: collections.deque[bytes] = collections.deque()
        self._error: TrustwireError | None = None
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        self._handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tls: TLSProtocol = None  # type: ignore[assignment]  # set by aconnect
        self.peer: PeerIdentity | None = None
        self.version: str | None = None
        self._diagnose_late: Diagnosis | None = None

    # -- TLS callbacks --------------------------------------------------------------------------

    def tls_established(self, tls: TLSProtocol) -> None:
        self.peer = tls.peer
        self.version = tls.version()
        if not self._handshake.done():
            self._handshake.set_result(None)

    def tls_data(self, data: memoryview) -> None:
        codec = self._codec
        codec.receive_data(data)
        try:
            while (event := codec.next_event()) is not NEED_DATA:
                if isinstance(event, Message):
                    self._messages.append(event.data)
                elif isinstance(event, RemoteError):
                    self._error = remote_error(event.reason)
                    break
                elif isinstance(event, Closed):
                    break
        except ProtocolError as exc:
            self._error = ConnectionBroken(f"the server broke the framing: {exc.message}")
            self.tls.abort()
        self._wake()

    def tls_eof(self, clean: bool) -> None:
        self._ended = True
        self._wake()

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        error = HandshakeError(diagnosis)
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

    async def _wait(self, what: str) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, self._timeout)
        except TimeoutError as exc:
            raise Timeout(f"no {what} within {self._timeout:g} seconds") from exc
        finally:
            self._waiter = None

    async def _confirm(self) -> None:
        """TLS 1.3: wait for the server's ticket, data, alert or close (see blocking.py)."""
        tls = self.tls
        loop = asyncio.get_running_loop()
        verdict: asyncio.Future[None] = loop.create_future()

        def check() -> None:
            if not verdict.done() and (tls.session_ticket_received() or self._messages
                                       or self._error or self._ended):
                verdict.set_result(None)

        tls.on_read = check
        check()
        try:
            await asyncio.wait_for(asyncio.shield(verdict), self._timeout)
        except TimeoutError:
            return  # a server without tickets: its verdict arrives with the first reply
        finally:
            tls.on_read = None
        if isinstance(self._error, HandshakeError):
            raise self._error
        if self._ended and not self._messages and not tls.session_ticket_received():
            raise HandshakeError(diagnose_eof("client"))

    async def send(self, message: bytes) -> None:
        """Send one whole message; waits while the server is not reading.

        Raises:
            ConnectionClosed, ConnectionBroken, LocalProtocolError.
        """
        if self._error is not None:
            raise self._error
        try:
            self.tls.write(self._codec.send(Message(data=message)))
        except ConnectionClosed:
            raise ConnectionClosed("the connection is closed") from None
        while self._write_paused and self.tls.state is TLS_OPEN:
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
            ConnectionClosed, HandshakeError (policy), Timeout, ConnectionBroken.
        """
        while not self._messages:
            if self._error is not None:
                raise self._error
            if self._ended or self.tls.state is not TLS_OPEN:
                raise ConnectionClosed("the server closed the connection")
            await self._wait("reply")
        return self._messages.popleft()

    async def request(self, message: bytes) -> bytes:
        await self.send(message)
        return await self.recv()

    async def close(self) -> None:
        """close_notify, then wait (briefly) for the connection to end."""
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

    def factory() -> TLSProtocol:
        client.tls = TLSProtocol(context, client, server_side=False,
                                 server_hostname=server_name, own_cert=own_certificate(tls),
                                 presents_cert=presents_certificate(tls))
        return client.tls

    try:
        await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    except TimeoutError as exc:
        raise Timeout(f"cannot connect to {host}:{port} within {timeout:g} seconds") from exc
    except OSError as exc:
        raise connect_error(host, port, exc) from exc
    try:
        await asyncio.wait_for(asyncio.shield(client._handshake), timeout)
    except TimeoutError as exc:
        client.tls.abort()
        raise HandshakeError(diagnose_timeout("client", timeout)) from exc
    if confirm and client.version == "TLSv1.3":
        try:
            await client._confirm()
        except BaseException:
            client.tls.abort()
            raise
    return client
