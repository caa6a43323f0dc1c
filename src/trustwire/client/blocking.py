"""The blocking client: the tutorial's socket code, made safe.

::

    with trustwire.connect("localhost", 8443, tls=ClientTLS.from_identity(home, "alice")) as c:
        print("Response from server:", c.request(b"Hello, server!").decode())

Whole messages, never partial reads; timeouts on connect, handshake and every
read; errors that say what happened. With TLS 1.3 the server checks our
certificate *after* our handshake returns, so ``connect`` waits briefly for
the server's verdict (:func:`trustwire.wire.channel.tls13_verdict`): its
session ticket or first data means accepted; an alert, an error frame or a
close means refused, raised as :class:`HandshakeError` (:class:`AccessDenied`
for the access policy) with the diagnosis, not as a bare EOF. The wait is
bounded by :func:`trustwire.wire.channel.verdict_wait` (50 ms on loopback):
a server that sends no ticket gives no verdict, and a late refusal still
surfaces on the first ``recv``.
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
    refusal,
    split_server_name,
)
from trustwire.errors import (
    ConnectionBroken,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    Timeout,
)
from trustwire.identity import PeerIdentity
from trustwire.tls.context import ClientTLS
from trustwire.tls.diagnose import diagnose, diagnose_eof, diagnose_timeout
from trustwire.wire.channel import OPEN, Channel, Verdict, peer_error, tls13_verdict, verdict_wait
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["Client", "connect"]

_READ = 256 * 1024


class Client:
    """A connected, verified client. Use :func:`connect` to make one."""

    def __init__(self, sock: ssl.SSLSocket, *, framing: str, max_frame: int, timeout: float,
                 tls: ClientTLS | ssl.SSLContext) -> None:
        self._sock = sock
        self._channel = Channel(framing, max_frame)
        self._framing = framing
        self._pending: list[bytes] = []
        self._timeout = timeout
        self._tls = tls
        self._closed = False
        self._received = False
        der = sock.getpeercert(binary_form=True)
        self.peer: PeerIdentity | None = PeerIdentity.from_der(der) if der else None
        """The server's verified identity."""
        self.version: str | None = sock.version()
        """Negotiated TLS version, e.g. ``TLSv1.3``."""

    def _diagnose(self, exc: ssl.SSLError) -> HandshakeError:
        return refusal(diagnose(exc, role="client", own_cert=own_certificate(self._tls),
                                presented=presents_certificate(self._tls)))

    def _feed(self, data: bytes) -> None:
        """Decode what arrived; the peer's error frame raises its meaning."""
        channel = self._channel
        try:
            if data:
                self._received = True
                self._pending.extend(channel.receive(data))
            else:
                self._pending.extend(channel.receive_eof())
        except ProtocolError as exc:
            raise ConnectionBroken(f"the server broke the framing: {exc.message}",
                                   hint=exc.hint) from exc

    def _confirm(self, wait: float) -> None:
        """TLS 1.3: wait at most ``wait`` seconds for the server's verdict on our certificate."""
        sock = self._sock
        deadline = time.monotonic() + wait
        sock.setblocking(False)
        try:
            while True:
                ended = False
                try:
                    data = sock.recv(_READ)
                except ssl.SSLWantReadError:
                    data = None
                except ssl.SSLError as exc:
                    raise self._diagnose(exc) from exc
                except OSError as exc:
                    raise HandshakeError(diagnose_eof("client")) from exc
                if data is not None:
                    ended = not data
                    self._feed(data)
                session = sock.session
                verdict = tls13_verdict(
                    ticket=bool(session is not None and session.has_ticket),
                    messages=bool(self._pending),
                    refused=self._channel.peer_error is not None, ended=ended)
                if verdict is Verdict.REFUSED:
                    if self._channel.peer_error is not None:
                        raise peer_error(self._channel.peer_error)
                    raise HandshakeError(diagnose_eof("client"))
                if verdict is Verdict.ACCEPTED:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return  # no ticket: a refusal, if any, surfaces on the first recv
                select.select([sock], [], [], remaining)
        finally:
            sock.settimeout(self._timeout)

    def send(self, message: bytes) -> None:
        """Send one whole message.

        Raises:
            ConnectionClosed, ConnectionBroken
            LocalProtocolError: the message is too large, or not line-safe.
        """
        if self._closed:
            raise ConnectionClosed("this client is closed")
        data = self._channel.send(message)
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
            AccessDenied: the server's policy refused (or revoked) our identity.
            HandshakeError: the server refused us with a TLS alert (TLS 1.3, late).
            Timeout: nothing within the timeout.
            ConnectionBroken: the framing was broken, or the connection failed.
        """
        if self._closed:
            raise ConnectionClosed("this client is closed")
        channel = self._channel
        while not self._pending:
            if channel.peer_error is not None:
                raise peer_error(channel.peer_error)
            if channel.state is not OPEN:
                raise ConnectionClosed("the server closed the connection")
            try:
                data = self._sock.recv(_READ)
            except TimeoutError as exc:
                hint = None if self._received else (
                    f"the server may use the other framing (this client sends {self._framing}; "
                    "try --framing " + ("line" if self._framing == "length" else "length")
                    + "), or need more than --timeout")
                raise Timeout(f"no reply within {self._timeout:g} seconds", hint=hint) from exc
            except ssl.SSLError as exc:
                error = self._diagnose(exc)
                if not self._received and error.diagnosis.reason != "tls-error":
                    raise error from exc  # a late TLS 1.3 refusal
                raise ConnectionBroken(f"TLS error: {error.diagnosis.why}") from exc
            except OSError as exc:
                raise ConnectionBroken(f"the connection broke: {exc}") from exc
            self._feed(data)
        return self._pending.pop(0)

    def request(self, message: bytes) -> bytes:
        """Send a message and return the server's reply."""
        self.send(message)
        return self.recv()

    def close(self) -> None:
        """Send close_notify and close the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._channel.close()
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
        confirm: with TLS 1.3, wait briefly for the server to accept our certificate
            (its session ticket). Without it a refusal surfaces on the first ``recv``.

    Raises:
        ConnectionBroken: cannot resolve or connect.
        HandshakeError: either side refused; ``.diagnosis`` says why and how to fix it
            (AccessDenied when the server's access policy refused our identity).
        Timeout: no handshake within ``timeout``.
    """
    context = client_context(tls)
    server_name = split_server_name(tls, host)
    started = time.monotonic()
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
        raise refusal(diagnose(exc, role="client", own_cert=own_certificate(tls),
                               presented=presents_certificate(tls))) from exc
    client = Client(sock, framing=framing, max_frame=max_frame, timeout=timeout, tls=tls)
    if confirm and sock.version() == "TLSv1.3":
        try:
            client._confirm(verdict_wait(time.monotonic() - started, timeout))
        except BaseException:
            sock.close()
            raise
    return client
