"""The TLS transport: TLS over a raw asyncio transport, driven by ``ssl.SSLObject`` and memory BIOs.

Theory of operation
-------------------
asyncio's SSL transport (uvloop's too) handles the handshake internally: a
failed handshake never reaches the protocol, so nobody can say *why* it
failed or write an audit line, and CPython's version keeps a 256 KiB read
buffer per connection. trustwire drives OpenSSL itself::

    kernel --read--> shared read buffer --> incoming MemoryBIO --> SSLObject.read
        --> shared plaintext buffer --> app.tls_data(view)
    app.write(data) --> SSLObject.write --> outgoing MemoryBIO --> transport.write

The two large buffers are shared by every connection of a thread (a read is
fully processed before the next one starts), so an idle connection costs
only its OpenSSL state and a few small Python objects. OpenSSL runs with
``SSL_MODE_RELEASE_BUFFERS`` (CPython sets it), so idle connections hold no
record buffers either.

The application object (:class:`TLSApp`) gets plain callbacks; the view
passed to ``tls_data`` is only valid during the call (copy what you keep).
This is the one IO seam everything above sits on: the server's sessions, both
tunnel modes and the async client; a native data path can replace the methods
of this class without anything above noticing.

Edge cases
----------
* EOF or reset before the handshake completes: ``tls_failed`` with a
  ``closed`` diagnosis; the transport is closed.
* A handshake error: the alert OpenSSL queued is sent before closing, so the
  peer learns why; ``tls_failed`` gets the diagnosis.
* An alert after the handshake (TLS 1.3 clients learn that the server
  refused their certificate only on their first read): ``tls_failed`` with
  ``after_handshake=True`` and the diagnosis.
* TCP EOF without close_notify: ``tls_eof(clean=False)``; with close_notify:
  ``tls_eof(clean=True)``. Either way the write side stays usable (TLS 1.3
  half-close) until the app closes.
* ``write(b"")`` does nothing; ``close()`` and ``abort()`` are idempotent;
  writing after close raises ``ConnectionClosed``.
* After ``close()``, ``abort()`` or ``reset()`` nothing more is delivered: bytes
  that still arrive are dropped, so a peer cut off cannot get another message
  processed while the close completes.
* Cancellation mid-handshake is the owner's job: it calls ``abort()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import Protocol

from cryptography import x509

from trustwire.errors import ConnectionClosed, Diagnosis
from trustwire.identity import PeerIdentity
from trustwire.net.addresses import peer_of
from trustwire.tls.diagnose import diagnose, diagnose_eof

__all__ = [
    "READ_SIZE", "TLS_CLOSED", "TLS_HANDSHAKING", "TLS_OPEN", "TLSApp", "TLSState", "TLSTransport",
    "reset_transport", "shared_read_buffer",
]

READ_SIZE = 256 * 1024
"""Bytes read from the kernel per call. Measured by bench/read_size.py (bulk through a
tunnel, median of 3): 16 KiB 392 MiB/s, 64 KiB 704 MiB/s, 256 KiB 860 MiB/s."""

BIO_CHUNK = 64 * 1024
"""Ciphertext is fed to OpenSSL (and plaintext encrypted) in slices of this size, so
each connection's memory BIOs, which never shrink, stay near 64 KiB however large
the reads and writes are."""

PLAIN_SIZE = 256 * 1024
"""Plaintext delivered to the app per call: large, so bulk paths write in big chunks."""


def reset_transport(transport: asyncio.BaseTransport) -> None:
    """Abort with RST (SO_LINGER 0) instead of FIN: how a tunnel passes a reset on."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


class TLSState(enum.Enum):
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSED = "closed"


# Reading an Enum member through its class costs ~190 ns in CPython 3.11 (EnumType has a
# __getattr__) against ~20 ns for a module global; hot paths compare with these.
TLS_HANDSHAKING, TLS_OPEN, TLS_CLOSED = TLSState.HANDSHAKING, TLSState.OPEN, TLSState.CLOSED


class TLSApp(Protocol):
    """What a :class:`TLSTransport` tells its application."""

    def tls_connected(self, tls: TLSTransport) -> None: ...
    def tls_established(self, tls: TLSTransport) -> None: ...
    def tls_data(self, data: memoryview) -> None: ...
    def tls_eof(self, clean: bool) -> None: ...
    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None: ...
    def tls_closed(self, exc: BaseException | None) -> None: ...
    def tls_pause_writing(self) -> None: ...
    def tls_resume_writing(self) -> None: ...


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.read = memoryview(bytearray(READ_SIZE))
        self.plain = memoryview(bytearray(PLAIN_SIZE))


_buffers = _Buffers()


def shared_read_buffer() -> memoryview:
    """This thread's kernel read buffer, for plain protocols beside TLS ones (a tunnel's
    other side): a read is fully handled before the next one, so they can share it."""
    return _buffers.read


class TLSTransport(asyncio.BufferedProtocol):
    """One TLS connection over a TCP transport.

    Args:
        context: server or client SSLContext.
        app: receives the callbacks.
        server_side: True for the accepting end.
        server_hostname: SNI and name to verify (client only).
    """

    __slots__ = (
        "_app",
        "_closing",
        "_done",
        "_eof_waits",
        "_got_eof",
        "_high_water",
        "_incoming",
        "_outgoing",
        "_own_cert",
        "_plain",
        "_presents",
        "_read_paused",
        "_readbuf",
        "_ssl",
        "_sslobj",
        "bytes_in",
        "bytes_out",
        "on_read",
        "peer",
        "peer_host",
        "peername",
        "server_side",
        "state",
        "transport",
    )

    def __init__(self, context: ssl.SSLContext, app: TLSApp, *, server_side: bool,
                 server_hostname: str | None = None, write_high_water: int | None = None,
                 own_cert: x509.Certificate | None = None, presents_cert: bool = False) -> None:
        self._app = app
        self._own_cert = own_cert
        self._presents = presents_cert
        self._high_water = write_high_water
        # This thread's shared buffers, held directly: a thread-local lookup per read
        # costs more than the two pointers.
        self._readbuf = _buffers.read
        self._plain = _buffers.plain
        self.peername: str | None = None
        """The peer as ``host:port`` (``[v6]:port``)."""
        self.peer_host: str | None = None
        self.server_side = server_side
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                        server_hostname=server_hostname)
        # The C object under ssl.SSLObject: its read/write/pending skip a Python-level
        # wrapper frame on every record (measured: a few percent of a small round trip).
        self._ssl = getattr(self._sslobj, "_sslobj", self._sslobj)
        self.state = TLS_HANDSHAKING
        self.transport: asyncio.Transport | None = None
        self.peer: PeerIdentity | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self._read_paused = False
        self._closing = False
        self._done = False
        self._eof_waits = False
        self._got_eof = False
        self.on_read: Callable[[], None] | None = None
        """Called after every read is processed (the async client watches for tickets)."""

    # -- facts ----------------------------------------------------------------------------------

    @property
    def role(self) -> str:
        return "server" if self.server_side else "client"

    def version(self) -> str | None:
        return self._sslobj.version()

    def cipher(self) -> str | None:
        info = self._sslobj.cipher()
        return info[0] if info else None

    @property
    def resumed(self) -> bool:
        """True when this connection resumed a session (a ticket) instead of a full handshake."""
        return bool(self._sslobj.session_reused)

    def session_ticket_received(self) -> bool:
        """True once a TLS 1.3 server has sent a session ticket: proof it accepted us."""
        session = self._sslobj.session
        return bool(session is not None and session.has_ticket)


    # -- asyncio protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = transport  # type: ignore[assignment]
        if self._high_water is not None:
            transport.set_write_buffer_limits(high=self._high_water)  # type: ignore[attr-defined]
        found = peer_of(transport)
        if found is not None:
            self.peer_host, self.peername = found
        self._app.tls_connected(self)
        if self._done:
            return  # the app refused the connection (a limit)
        if not self.server_side:
            self._drive()  # the ClientHello

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._readbuf

    def buffer_updated(self, nbytes: int) -> None:
        data = self._readbuf[:nbytes]
        if self.state is TLS_OPEN and not self._read_paused:
            if nbytes <= BIO_CHUNK:  # the common case, without _read_plaintext's slicing
                self._incoming.write(data)
                total = self._decrypt(0)
                if total > 0:
                    self._deliver(self._plain[:total])
                if self._outgoing.pending and self.state is TLS_OPEN:
                    self._flush()  # tickets, key updates
            else:
                self._read_plaintext(data)
        else:
            self._incoming.write(data)
            self._drive()
        if self.on_read is not None:
            self.on_read()

    def eof_received(self) -> bool:
        if self.state is TLS_HANDSHAKING:
            self._handshake_failed(EOFError("EOF during handshake"), diagnose_eof(self.role))
            return False
        # Not telling the BIO: OpenSSL would turn a missing close_notify into an error,
        # and the app decides what a truncated stream means (tls_eof(clean=False)). What
        # arrived before the FIN is delivered first: records can still wait in the BIO
        # when reading was paused (a tunnel connecting its target) and resumed just now.
        if self.state is TLS_OPEN and not self._got_eof and not self._done:
            if self._incoming.pending and not self._read_paused:
                self._read_plaintext()
            if self._read_paused and self._incoming.pending and self.state is TLS_OPEN:
                self._eof_waits = True  # delivered once the BIO is drained (_resume_drive)
            elif self.state is TLS_OPEN and not self._got_eof:
                self._got_eof = True
                self._app.tls_eof(False)
        return self.state is TLS_OPEN and not self._done  # keep the write side open (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.state
        self.state = TLS_CLOSED
        if was is TLS_HANDSHAKING and not self._closing:
            self._app.tls_failed(exc or EOFError("connection lost"), diagnose_eof(self.role), False)
        self._app.tls_closed(exc)
        self.transport = None

    def pause_writing(self) -> None:
        self._app.tls_pause_writing()

    def resume_writing(self) -> None:
        self._app.tls_resume_writing()

    # -- driving OpenSSL ------------------------------------------------------------------------

    def _drive(self) -> None:
        if self.state is TLS_HANDSHAKING:
            try:
                self._sslobj.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except (ssl.SSLError, OSError) as exc:
                self._flush()  # the alert OpenSSL queued tells the peer why
                self._handshake_failed(exc, None)
                return
            self._flush()
            self.state = TLS_OPEN
            der = self._sslobj.getpeercert(binary_form=True)
            self.peer = PeerIdentity.from_der(der) if der else None
            self._app.tls_established(self)
        if self.state is TLS_OPEN and not self._read_paused:
            self._read_plaintext()

    def _read_plaintext(self, data: memoryview | None = None) -> None:
        """Decrypt what the BIO holds, plus ``data`` fed in BIO_CHUNK slices; deliver it."""
        total = 0
        if data is None:
            total = self._decrypt(0)
        else:
            incoming = self._incoming
            for start in range(0, len(data), BIO_CHUNK):
                if self.state is not TLS_OPEN or self._read_paused:
                    incoming.write(data[start:])  # kept for resume_reading (rare: one read)
                    break
                incoming.write(data[start:start + BIO_CHUNK])
                total = self._decrypt(total)
                if total < 0:
                    return
        if total > 0:
            self._deliver(self._plain[:total])
        if self.state is TLS_OPEN and self._outgoing.pending:
            self._flush()  # tickets, key updates

    def _decrypt(self, total: int) -> int:
        """Decrypt into the shared plaintext buffer after ``total`` bytes, delivering it
        whenever it fills. Returns the bytes now waiting there, or -1 once the
        connection ended (close_notify or error)."""
        plain = self._plain
        size = PLAIN_SIZE
        read = self._ssl.read
        while self.state is TLS_OPEN and not self._read_paused:
            try:
                n: int = read(size - total, plain[total:] if total else plain)  # type: ignore[assignment]
            except ssl.SSLWantReadError:
                return total
            except ssl.SSLZeroReturnError:
                # The peer's close_notify after we sent ours: CPython raises instead of
                # returning 0 once both shutdown flags are set. A clean close all the same.
                n = 0
            except (ssl.SSLError, OSError) as exc:
                if total:
                    self._deliver(plain[:total])
                self._flush()
                self._failed_after_handshake(exc)
                return -1
            if not n:  # close_notify
                if total:
                    self._deliver(plain[:total])
                self._flush()
                if not self._got_eof and self.state is TLS_OPEN:
                    self._got_eof = True
                    self._app.tls_eof(True)
                return -1
            total += n
            if total == size:
                self._deliver(plain)
                total = 0
            elif not self._incoming.pending:
                # All ciphertext consumed, and a short read means the record was too
                # (SSL_read returns at most one record; without read-ahead OpenSSL holds
                # no further records): skip the read that would only raise SSLWantReadError.
                return total
        return total

    def _deliver(self, view: memoryview) -> None:
        self.bytes_in += len(view)
        self._app.tls_data(view)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self.transport is not None:
            self.transport.write(data)

    def _handshake_failed(self, exc: BaseException, diagnosis: Diagnosis | None) -> None:
        if self.state is TLS_CLOSED:
            return
        self.state = TLS_CLOSED
        self._closing = True
        if diagnosis is None:
            diagnosis = self._diagnose(exc)
        self._app.tls_failed(exc, diagnosis, False)
        if self.transport is not None:
            self.transport.close()

    def _diagnose(self, exc: BaseException) -> Diagnosis:
        return diagnose(exc, role=self.role, own_cert=self._own_cert, presented=self._presents)

    def _failed_after_handshake(self, exc: BaseException) -> None:
        self.state = TLS_CLOSED
        self._closing = True
        self._app.tls_failed(exc, self._diagnose(exc), True)
        if self.transport is not None:
            self.transport.close()

    # -- used by the application ----------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send ``data``.

        Raises:
            ConnectionClosed: after close() or once the connection failed.
        """
        if self.state is not TLS_OPEN or self._closing:
            raise ConnectionClosed("the TLS connection is closed")
        if not data:
            return
        size = len(data)
        self.bytes_out += size
        if size <= BIO_CHUNK:
            self._ssl.write(data)
            if self.transport is not None:
                self.transport.write(self._outgoing.read())
            return
        # Encrypt in slices so the outgoing BIO stays small; send them with one writev.
        view = memoryview(data)
        write, read = self._ssl.write, self._outgoing.read
        parts = []
        for start in range(0, size, BIO_CHUNK):
            write(view[start:start + BIO_CHUNK])
            parts.append(read())
        if self.transport is not None:
            self.transport.writelines(parts)

    def write_eof(self) -> None:
        """Send close_notify (our write side is done) but keep reading: TLS half-close."""
        if self.state is not TLS_OPEN or self._closing:
            return
        self._closing = True
        # close_notify is queued even when unwrap() reports it wants the peer's reply,
        # which is not needed to finish our side.
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError, OSError):
            self._sslobj.unwrap()
        self._flush()

    @property
    def write_closed(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send close_notify (if not sent) and close the transport once pending data is written.

        Nothing more is read or delivered from here on."""
        if self.state is TLS_OPEN and not self._closing:
            self.write_eof()
        self._stop_delivering()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now, discarding unsent data."""
        self._stop_delivering()
        if self.transport is not None:
            self.transport.abort()

    def reset(self) -> None:
        """Drop the connection with a TCP reset, so the peer sees the failure as one."""
        self._stop_delivering()
        if self.transport is not None:
            reset_transport(self.transport)

    def _stop_delivering(self) -> None:
        self._closing = True
        self._done = True
        self._read_paused = True  # buffer_updated then only feeds the BIO; nothing is read

    @property
    def closed(self) -> bool:
        """True once close(), abort() or reset() was called, or the connection ended."""
        return self._done or self.state is TLS_CLOSED

    def pause_reading(self) -> None:
        """Stop delivering data (backpressure); unread bytes stay in the kernel."""
        if not self._read_paused:
            self._read_paused = True
            if self.transport is not None and not self.transport.is_closing():
                self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and not self._done:
            self._read_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
                # Records already in the BIO would otherwise wait for the next packet.
                asyncio.get_running_loop().call_soon(self._resume_drive)

    def _resume_drive(self) -> None:
        if self.state is TLS_OPEN and not self._read_paused:
            self._read_plaintext()
            # What is left now is a partial record: the stream was cut inside it.
            if self._eof_waits and not self._read_paused and self.state is TLS_OPEN \
                    and not self._got_eof:
                self._eof_waits = False
                self._got_eof = True
                self._app.tls_eof(False)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0
