"""The blocking client: the tutorial's socket code, made safe.

::

    with trustwire.connect("localhost", 8443, tls=ClientTLS.from_identity(home, "alice")) as c:
        print("Response from server:", c.request(b"Hello, server!").decode())

Whole messages, never partial reads; timeouts on connect, handshake and every
read; errors that say what happened. With TLS 1.3 the server checks our
certificate *after* our handshake returns, so ``connect`` waits (up to the
timeout) for the server's verdict: its session ticket or first data means
accepted; an alert or a close means refused, raised as
:class:`HandshakeError` with the diagnosis, not as a bare EOF.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
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
    Timeout,
)
from trustwire.identity import PeerIdentity
from trustwire.tls.context import ClientTLS
from trustwire.tls.diagnose import diagnose, diagnose_eof, diagnose_timeout
from trustwire.wire import NEED_DATA, Closed, Message, RemoteError, make_codec
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["Client", "connect"]

_READ = 256 * 1024


class Client:
    """A connected, verified client. Use :func:`connect` to make one."""

    def __init__(self, sock: ssl.SSLSocket, *, framing: str, max_frame: int, timeout: float,
                 tls: ClientTLS | ssl.SSLContext) -> None:
        self._sock = sock
        self._codec = make_codec(framing, max_frame)
        self._timeout = timeout
        self._tls = tls
        self._closed = False
        self._ended = False
        self._received = False
        der = sock.getpeercert(binary_form=True)
        self.peer: PeerIdentity | None = PeerIdentity.from_der(der) if der else None
        """The server's verified identity."""
        self.version: str | None = sock.version()
        """Negotiated TLS version, e.g. ``TLSv1.3``."""

    def _confirm(self, deadline: float) -> None:
        sock = self._sock
        sock.setblocking(False)
        try:
            while True:
                try:
                    data = sock.recv(_READ)
                except ssl.SSLWantReadError:
                    session = sock.session
                    if session is not None and session.has_ticket:
                        return
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return  # the server sends no tickets; its verdict will come with data
                    select.select([sock], [], [], remaining)
                    continue
                except ssl.SSLError as exc:
                    raise HandshakeError(diagnose(
                        exc, role="client", own_cert=own_certificate(self._tls), presented=True,
                    )) from exc
                except OSError as exc:
                    raise HandshakeError(diagnose_eof("client")) from exc
                if not data:
                    raise HandshakeError(diagnose_eof("client"))
                self._received = True
                self._codec.receive_data(data)
                return
        finally:
            sock.settimeout(self._timeout)

    def send(self, message: bytes) -> None:
        """Send one whole message.

        Raises:
            ConnectionClosed, ConnectionBroken, LocalProtocolError (too large / not line-safe).
        """
        if self._closed:
            raise ConnectionClosed("this client is closed")
        data = self._codec.send(Message(data=message))
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise Timeout(f"the server did not accept data within {self._timeout:g} seconds") from exc
        except OSError as exc:
            raise ConnectionBroken(f"sending failed: {exc}") from exc

    def recv(self) -> bytes:
        """The next whole message from the server.

        Raises:
            ConnectionClosed: the server closed the connection.
            HandshakeError: the server's policy refused our identity.
            Timeout: nothing within the timeout.
            ConnectionBroken, RemoteProtocolError.
        """
        if self._closed:
            raise ConnectionClosed("this client is closed")
        codec = self._codec
        while True:
            event = codec.next_event()
            if isinstance(event, Message):
                return event.data
            if isinstance(event, RemoteError):
                self._ended = True
                raise remote_error(event.reason)
            if isinstance(event, Closed):
                self._ended = True
                raise ConnectionClosed("the server closed the connection")
            assert event is NEED_DATA  # noqa: S101
            try:
                data = self._sock.recv(_READ)
            except TimeoutError as exc:
                raise Timeout(f"no reply within {self._timeout:g} seconds") from exc
            except ssl.SSLError as exc:
                diagnosis = diagnose(exc, role="client", own_cert=own_certificate(self._tls),
                                     presented=presents_certificate(self._tls))
                if not self._received and diagnosis.reason != "tls-error":
                    raise HandshakeError(diagnosis) from exc  # a late TLS 1.3 refusal
                raise ConnectionBroken(f"TLS error: {diagnosis.why}") from exc
            except OSError as exc:
                raise ConnectionBroken(f"the connection broke: {exc}") from exc
            if data:
                self._received = True
            codec.receive_data(data)

    def request(self, message: bytes) -> bytes:
        """Send a message and return the server's reply."""
        self.send(message)
        return self.recv()

    def close(self) -> None:
        """Send close_notify and close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.settimeout(1.0)
            self._sock.unwrap()
        except (OSError, ValueError):
            pass
        finally:
            self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.close()


def connect(
    host: str, port: int, *, tls: ClientTLS | ssl.SSLContext, framing: str = "length",
    max_frame: int = DEFAULT_MAX_FRAME, timeout: float = 10.0, confirm: bool = True,
) -> Client:
    """Connect, complete the mutual-TLS handshake, and wait for the server's verdict.

    Args:
        host, port: where to connect.
        tls: client TLS settings (or a ready SSLContext).
        framing: ``length`` or ``line``.
        max_frame: largest message accepted.
        timeout: seconds for connecting, the handshake, and each read.
        confirm: with TLS 1.3, wait for the server to accept our certificate
            (its session ticket) before returning; costs one round trip. Without
            it a refusal surfaces on the first ``recv`` instead.

    Raises:
        ConnectionBroken: cannot resolve or connect.
        HandshakeError: either side refused; ``.diagnosis`` says why and how to fix it.
        Timeout: no handshake within ``timeout``.
    """
    context = client_context(tls)
    server_name = split_server_name(tls, host)
    deadline = time.monotonic() + timeout
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise Timeout(f"cannot connect to {host}:{port} within {timeout:g} seconds") from exc
    except OSError as exc:
        raise connect_error(host, port, exc) from exc
    try:
        sock = context.wrap_socket(raw, server_hostname=server_name)
    except TimeoutError as exc:
        raw.close()
        raise HandshakeError(diagnose_timeout("client", timeout)) from exc
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        raise HandshakeError(diagnose(exc, role="client", own_cert=own_certificate(tls),
                                      presented=presents_certificate(tls))) from exc
    client = Client(sock, framing=framing, max_frame=max_frame, timeout=timeout, tls=tls)
    if confirm and sock.version() == "TLSv1.3":
        try:
            client._confirm(deadline)
        except BaseException:
            sock.close()
            raise
    return client

