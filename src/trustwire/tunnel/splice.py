"""The splice: one session over two transports, a TLS side and a plain side.

Theory of operation
-------------------
Both tunnel modes are a :class:`Splice`: the session's TLS transport on one
side and a plain TCP (or Unix socket) transport on the other, pumping bytes
with TCP's semantics:

* Bulk: the plain side reads into the thread's shared buffer; TLS plaintext
  arrives in batches of up to 256 KiB and goes to the plain side in one write.
  No per-byte Python work.
* Backpressure, both ways: when one side's kernel buffer is full (its
  transport's ``pause_writing``), the other side stops reading, so a slow
  side bounds memory to the transports' high-water marks.
* Half-close, both ways: EOF from the plain side becomes close_notify on the
  TLS side, and close_notify from the TLS side becomes a TCP FIN, while the
  other direction keeps flowing. When both directions are done, both close.
* Truncation: a TCP FIN on the TLS side *without* close_notify is not an end
  of data but a cut stream (an attacker, or a crash, may have dropped the
  rest): once what arrived before it has reached the other end (our write
  buffer and the kernel's send queue are empty, or :data:`TRUNCATION_FLUSH`
  seconds passed), the plain side is reset, so the other end sees a failure
  after the data, and the log says "truncated".
* Resets: a side lost with an error is passed on as a TCP reset.
* Refusals and cuts (the admission decision said no): the plain side is
  aborted and the TLS side closed at once; there is no message boundary to
  wait for.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trustwire.errors import ConfigError
from trustwire.net.addresses import format_hostport
from trustwire.net.session import Session
from trustwire.net.transport import (
    TLS_CLOSED,
    TLS_HANDSHAKING,
    TLS_OPEN,
    reset_transport,
    shared_read_buffer,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from trustwire.net.listener import Listener

__all__ = ["CONNECT_TIMEOUT", "Plain", "Splice", "Target", "failure_reason"]

CONNECT_TIMEOUT = 10.0
"""Seconds to reach the target before giving up on this connection."""
TRUNCATION_FLUSH = 5.0
"""Seconds the data before a truncation gets to reach the other end before the reset."""


def unsent_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes still in the kernel's send queue of ``transport``'s socket (unsent or not yet
    acknowledged); 0 when that cannot be asked."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", out)[0])


@dataclass(frozen=True)
class Target:
    """Where a tunnel connects: ``HOST:PORT`` or a Unix socket path."""

    host: str | None = None
    port: int | None = None
    path: Path | None = None

    def describe(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return format_hostport(self.host or "", self.port or 0)

    async def connect(self, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        """Connect a transport made by ``factory`` (it learns of it in connection_made).

        Raises:
            OSError: the target is unreachable.
        """
        loop = asyncio.get_running_loop()
        if self.path is not None:
            await loop.create_unix_connection(factory, str(self.path))
            return
        if self.host is None or self.port is None:
            raise ConfigError("a target needs HOST:PORT or a Unix socket path")
        await loop.create_connection(factory, self.host, self.port)


def failure_reason(exc: BaseException) -> str:
    """A connection failure in a few words."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g}s"
    return str(exc) or type(exc).__name__


class Plain(asyncio.BufferedProtocol):
    """The plain side of a splice; tells its owner everything."""

    __slots__ = ("_readbuf", "owner", "transport")

    def __init__(self, owner: Splice) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self._readbuf = shared_read_buffer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's implement the API
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

    def write(self, data: bytes | memoryview) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def reset(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            reset_transport(self.transport)


class Splice(Session):
    """A TLS side (``tls``) and a plain side (``plain``), spliced."""

    __slots__ = ("_early", "_ending", "_plain_done", "_tls_done", "_truncated", "plain")
    carries_messages = False
    plain_role = "target"
    """Who is on the plain side, in close reasons."""

    def __init__(self, listener: Listener, *, server_side: bool = True,
                 server_hostname: str | None = None, presents_cert: bool = False) -> None:
        super().__init__(listener, server_side=server_side, server_hostname=server_hostname,
                         presents_cert=presents_cert)
        self.plain: Plain | None = None
        self._tls_done = False
        self._plain_done = False
        self._early: bytes | None = None
        """Plain bytes that arrived before the TLS side was open (at most one read)."""
        self._ending = False
        """We decided to end this tunnel; later events must not rewrite the reason."""
        self._truncated = False
        """The TLS side was cut: the plain side gets a reset once its data is out."""

    # -- TLS side -------------------------------------------------------------------------------

    def tls_data(self, data: memoryview) -> None:
        plain = self.plain
        if plain is not None and plain.transport is not None:
            plain.transport.write(bytes(data))  # a copy: the view is a shared buffer

    def on_data_end(self, clean: bool) -> None:
        plain = self.plain
        if not clean:
            # A FIN without close_notify: the stream may have been cut short. Pass it on
            # as a failure, never as a clean end of data, after the data that came first.
            self._ending = self._truncated = True
            self._reason = (f"truncated: the {self.tls_role} closed without close_notify; "
                            f"the {self.plain_role} connection was reset")
            self.tls.close()
            self._reset_when_sent(time.monotonic() + TRUNCATION_FLUSH)
            return
        self._tls_done = True
        if (plain is not None and plain.transport is not None
                and not plain.transport.is_closing() and plain.transport.can_write_eof()):
            plain.transport.write_eof()
        if self._plain_done:
            self._finish()

    def tls_pause_writing(self) -> None:
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.pause_reading()

    def tls_resume_writing(self) -> None:
        transport = self.plain.transport if self.plain is not None else None
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _reset_when_sent(self, deadline: float) -> None:
        plain = self.plain
        transport = plain.transport if plain is not None else None
        if plain is None or transport is None or transport.is_closing():
            return
        if (transport.get_write_buffer_size() == 0 and unsent_bytes(transport) == 0) \
                or time.monotonic() > deadline:
            plain.reset()
            return
        asyncio.get_running_loop().call_later(0.01, self._reset_when_sent, deadline)

    def on_closed(self) -> None:
        plain = self.plain
        if self._truncated:
            return  # the plain side gets its reset once its data is out
        if plain is not None and plain.transport is not None and not plain.transport.is_closing():
            plain.transport.close()

    def tls_closed(self, exc: BaseException | None) -> None:
        if exc is not None and self.plain is not None and not self._ending:
            self._reason = f"{self.tls_role} connection failed: {failure_reason(exc)}"
            self.plain.reset()
        super().tls_closed(exc)

    @property
    def tls_role(self) -> str:
        return "client" if self.tls.server_side else "target"

    # -- plain side -----------------------------------------------------------------------------

    def plain_made(self, plain: Plain) -> None:
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
            if self.plain.transport is not None:
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
            self._reason = f"{self.plain_role} connection failed: {failure_reason(exc)}"
            tls.reset()
        else:
            if not self._plain_done:
                self._reason = f"{self.plain_role} closed the connection"
            tls.close()

    def _finish(self) -> None:
        self._ending = True
        self._reason = "both sides finished"
        if self.plain is not None and self.plain.transport is not None:
            self.plain.transport.close()
        self.tls.close()

    # -- listener hooks -------------------------------------------------------------------------

    def refuse(self, reason: str) -> None:
        """Cut at once (a byte stream has no boundary to wait for): the plain side is
        aborted, the TLS side gets close_notify."""
        self._ending = True
        if self.plain is not None:
            self.plain.abort()
        self.tls.close()

    def abort(self) -> None:
        self._ending = True
        if self.plain is not None:
            self.plain.abort()
        self.tls.abort()

    def begin_shutdown(self) -> None:
        """A byte stream has no message boundary to stop at: let it run until the grace ends."""

    def live_bytes(self) -> tuple[int, int, int]:
        return self.tls.bytes_in, self.tls.bytes_out, 0
