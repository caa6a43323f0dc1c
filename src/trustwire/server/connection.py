"""Server-side connections: TLS events in, framed messages to the handler, replies out.

Two handler shapes share everything but delivery:

* a *responder* (``@trustwire.responder``), a plain function
  ``(message, peer) -> reply | None`` called inline as messages are decoded,
  with every reply of one read encrypted as one write: no task, no queue, no
  future per connection or message; the fast path ``upper`` and ``echo`` use;
* a *stream handler*, ``async def handler(conn)``, one task per connection,
  reading with ``async for message in conn`` and writing with
  ``await conn.send(...)``.

Backpressure: when the kernel will not take more of our replies (the
transport's buffer passes its high-water mark), the connection stops reading
the peer, so a client that sends without reading cannot grow our memory. In
stream mode, more than ``max_queued`` undelivered messages also pause reading.

Every connection ends with one ``closed`` audit line (bytes each way, messages,
duration, reason), preceded by ``handshake_ok`` or ``handshake_failed`` and,
when the policy refuses the identity, ``access_denied``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from trustwire.errors import ConnectionBroken, ConnectionClosed, ProtocolError, TrustwireError
from trustwire.identity import PeerIdentity
from trustwire.tls.diagnose import Diagnosis
from trustwire.tls.protocol import TLS_HANDSHAKING, TLS_OPEN, TLSProtocol
from trustwire.wire import NEED_DATA, Closed, Message, RemoteError, make_codec

if TYPE_CHECKING:
    from trustwire.server.listener import Listener
    from trustwire.server.server import Server

__all__ = ["Connection", "Responder", "StreamHandler", "responder"]

Responder = Callable[[bytes, PeerIdentity | None], bytes | None]
StreamHandler = Callable[["Connection"], Awaitable[None]]
R = TypeVar("R", bound=Responder)


def responder(func: R) -> R:
    """Mark ``func(message, peer) -> reply | None`` as a fast, inline request handler.

    It must not block: it runs on the event loop for every message.
    """
    func.__trustwire_responder__ = True  # type: ignore[attr-defined]
    return func


class _ServerConnection:
    """What every accepted TLS connection shares: policy, audit, timeouts, closing."""

    carries_messages = True
    """False for byte streams (tunnels): their audit lines have no message count."""

    __slots__ = (
        "_reason", "_seen", "_write_paused", "last_active", "messages", "opened", "peer",
        "server", "started", "tls",
    )

    def __init__(self, server: Listener) -> None:
        self.server: Any = server
        self.started = time.monotonic()
        self.last_active = self.started
        """When the sweep last saw bytes move (not stamped per message: that costs a clock
        read on the hot path; the sweep compares byte counters instead)."""
        self._seen = 0
        self.tls: TLSProtocol = None  # type: ignore[assignment]  # set right after construction
        self.peer: PeerIdentity | None = None
        self.messages = 0
        self.opened = False
        self._write_paused = False
        self._reason = "closed by peer"

    # -- TLS callbacks --------------------------------------------------------------------------

    def tls_established(self, tls: TLSProtocol) -> None:
        server = self.server
        self.peer = tls.peer
        elapsed = time.monotonic() - self.started
        server.observe_handshake(elapsed)
        if self.peer is not None:
            decision = server.policy.check(self.peer)
            if not decision.allowed:
                server.stats["access_denied"] += 1
                server.audit_event("access_denied", self, reason=decision.log_reason)
                self._reason = "access denied"
                self.refuse(f"access denied: {decision.reason}")
                return
        self.opened = True
        server.stats["handshakes_ok"] += 1
        if server.audit is not None:
            server.audit_event("handshake_ok", self, tls_version=tls.version(), cipher=tls.cipher(),
                               handshake_ms=round(elapsed * 1000, 2))
        if server.closing:
            self.begin_shutdown()
        else:
            self.on_open()

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        if after_handshake:
            self._reason = f"TLS error: {diagnosis.why}"
            return
        self.server.stats["handshakes_failed"] += 1
        self.server.handshake_failures[diagnosis.reason] += 1
        self.server.audit_event("handshake_failed", self, reason=diagnosis.reason,
                                diagnosis=diagnosis.sentence())

    def tls_eof(self, clean: bool) -> None:
        self.on_data_end(clean)

    def tls_closed(self, exc: BaseException | None) -> None:
        self.server.forget(self)
        stats = self.server.stats
        stats["bytes_in"] += self.tls.bytes_in
        stats["bytes_out"] += self.tls.bytes_out
        stats["messages"] += self.messages
        if self.opened and self.server.audit is not None:  # no line to build without a log
            self.server.audit_event(
                "closed", self, reason=self._reason, bytes_in=self.tls.bytes_in,
                bytes_out=self.tls.bytes_out,
                messages=self.messages if self.carries_messages else None,
                duration_ms=round((time.monotonic() - self.started) * 1000, 1),
            )
        self.on_closed()

    def tls_pause_writing(self) -> None:
        self._write_paused = True
        self.tls.pause_reading()

    def tls_resume_writing(self) -> None:
        self._write_paused = False
        self.on_resume_writing()

    # -- shared behaviour -----------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        """The peer's address as ``host:port`` (``[v6]:port``)."""
        return self.tls.peername

    def refuse(self, reason: str) -> None:
        """Close; message connections first tell the peer why."""
        self.tls.close()

    def idle_check(self, now: float, handshake_timeout: float, idle_timeout: float) -> None:
        tls = self.tls
        if tls.state is TLS_HANDSHAKING:
            if now - self.started > handshake_timeout:
                server = self.server
                server.stats["handshakes_failed"] += 1
                server.handshake_failures["timeout"] += 1
                server.audit_event("handshake_failed", self, reason="timeout",
                                   diagnosis=self.timeout_diagnosis(handshake_timeout))
                self.abort()
        elif idle_timeout and tls.state is TLS_OPEN:
            seen = tls.bytes_in + tls.bytes_out
            if seen != self._seen:
                self._seen = seen
                self.last_active = now
            elif now - self.last_active > idle_timeout:
                self._reason = "idle timeout"
                self.refuse(f"idle for {idle_timeout:g} seconds")

    # -- hooks for the two shapes ---------------------------------------------------------------

    def timeout_diagnosis(self, handshake_timeout: float) -> str:
        """What the audit log says when the peer did not finish its handshake in time."""
        return f"no TLS handshake within {handshake_timeout:g}s"

    def abort(self) -> None:
        self.tls.abort()

    def live_bytes(self) -> tuple[int, int, int]:
        """Bytes in, bytes out and messages so far (metrics add live connections' share)."""
        return self.tls.bytes_in, self.tls.bytes_out, self.messages

    def revoke(self, reason: str) -> None:
        """The identity was revoked or is no longer allowed: close (after the message in flight)."""
        self._reason = reason
        self.refuse(f"access revoked: {reason}")

    def on_open(self) -> None: ...
    def on_data_end(self, clean: bool) -> None: ...
    def on_closed(self) -> None: ...
    def on_resume_writing(self) -> None: ...
    def begin_shutdown(self) -> None: ...


class _MessageConnection(_ServerConnection):
    """A connection that carries framed messages (both handler shapes)."""

    __slots__ = ("codec",)

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.codec = make_codec(server.framing, server.limits.max_frame)

    def refuse(self, reason: str) -> None:
        """Tell the peer why (error frame or ``error:`` line), then close."""
        with contextlib.suppress(ConnectionClosed, OSError):
            self.tls.write(self.codec.send(RemoteError(reason=reason)))
        self.tls.close()

    def protocol_error(self, exc: ProtocolError) -> None:
        self.server.stats["protocol_errors"] += 1
        self._reason = f"protocol error: {exc.message}"
        self.refuse(exc.message)


class ReplyConnection(_MessageConnection):
    """A connection served by a responder, inline."""

    __slots__ = ("_closing", "_responder", "_revoked")

    def __init__(self, server: Server, func: Responder) -> None:
        super().__init__(server)
        self._responder = func
        self._closing = False
        self._revoked: str | None = None

    def tls_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        replies: list[bytes] = []
        try:
            while (event := codec.next_event()) is not NEED_DATA:
                if type(event) is Message:
                    self.messages += 1
                    reply = self._responder(event.data, self.peer)
                    if reply is not None:
                        replies.append(codec.encode(reply))
                else:
                    break
        except ProtocolError as exc:
            self._write(replies)
            self.protocol_error(exc)
            return
        except Exception as exc:
            self._write(replies)
            self._reason = f"handler error: {type(exc).__name__}: {exc}"
            self.refuse("internal error in the service")
            return
        self._write(replies)
        if self._closing and codec.buffered == 0:
            if self._revoked is not None:
                self.refuse(f"access revoked: {self._revoked}")
            else:
                self.tls.close()

    def revoke(self, reason: str) -> None:
        self._reason = reason
        if self.codec.buffered == 0 or self.tls.state is not TLS_OPEN:
            self.refuse(f"access revoked: {reason}")
        else:  # a message is half-received: answer it, then close
            self._closing = True
            self._revoked = reason

    def _write(self, replies: list[bytes]) -> None:
        if replies and self.tls.state is TLS_OPEN:
            try:  # noqa: SIM105 - contextlib.suppress costs 9% of a round trip here
                self.tls.write(replies[0] if len(replies) == 1 else b"".join(replies))
            except ConnectionClosed:
                pass

    def on_data_end(self, clean: bool) -> None:
        self._reason = "closed by peer" if clean else "closed by peer (no close_notify)"
        self.tls.close()

    def on_resume_writing(self) -> None:
        if not self._closing:
            self.tls.resume_reading()

    def begin_shutdown(self) -> None:
        """Finish the message being received, if any, then close."""
        self._closing = True
        self._reason = "server shutdown"
        if self.codec.buffered == 0 or self.tls.state is not TLS_OPEN:
            self.tls.close()


class Connection(_MessageConnection):
    """A connection as a stream handler sees it.

    ``async for message in conn`` yields whole messages until the peer closes;
    ``await conn.send(data)`` waits when the peer is slow to read.
    ``conn.peer`` is the verified identity (None without client certificates).
    """

    __slots__ = (
        "_closing",
        "_drained",
        "_ended",
        "_error",
        "_handler",
        "_inbox",
        "_revoked",
        "_task",
        "_waiter",
    )

    def __init__(self, server: Server, handler: StreamHandler) -> None:
        super().__init__(server)
        self._handler = handler
        self._inbox: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self._closing = False
        self._error: TrustwireError | None = None
        self._revoked: str | None = None

    # -- handler API ----------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next message.

        Raises:
            ConnectionClosed: the peer closed (or the server is shutting down) and no
                message is left.
            ConnectionBroken: the connection failed.
        """
        while not self._inbox:
            if self._error is not None:
                raise self._error
            if self._ended or self.tls.state is not TLS_OPEN:
                raise ConnectionClosed("the connection is closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._inbox.popleft()
        if len(self._inbox) < self.server.limits.max_queued // 4:
            self.tls.resume_reading()
        return message

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, data: bytes) -> None:
        """Send one message; waits while the peer is not reading.

        Raises:
            ConnectionClosed: the connection is closed.
            LocalProtocolError: the message is too large or not line-safe.
        """
        self.tls.write(self.codec.encode(data))
        while self._write_paused and self.tls.state is TLS_OPEN:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None

    def close(self) -> None:
        """Close gracefully (close_notify, then TCP close after pending data)."""
        self._reason = "closed by server"
        self.tls.close()

    # -- plumbing -------------------------------------------------------------------------------

    def on_open(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._handler(self)
        except (ConnectionClosed, ConnectionBroken):
            pass
        except asyncio.CancelledError:
            self._reason = "cancelled at shutdown"
            self.tls.abort()
            raise
        except Exception as exc:
            self._reason = f"handler error: {type(exc).__name__}: {exc}"
            self.refuse("internal error in the service")
            return
        if self._revoked is not None:
            self.refuse(f"access revoked: {self._revoked}")
        else:
            self.tls.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def tls_data(self, data: memoryview) -> None:
        codec = self.codec
        codec.receive_data(data)
        try:
            while (event := codec.next_event()) is not NEED_DATA:
                if type(event) is Message:
                    self.messages += 1
                    self._inbox.append(event.data)
                elif isinstance(event, (Closed, RemoteError)):
                    break
        except ProtocolError as exc:
            self._error = ConnectionBroken(exc.message)
            self.protocol_error(exc)
        if len(self._inbox) >= self.server.limits.max_queued:
            self.tls.pause_reading()
        self._wake()

    def on_data_end(self, clean: bool) -> None:
        self._ended = True
        self._reason = "closed by peer" if clean else "closed by peer (no close_notify)"
        self._wake()

    def on_closed(self) -> None:
        self._ended = True
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def on_resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if len(self._inbox) < self.server.limits.max_queued:
            self.tls.resume_reading()

    def begin_shutdown(self) -> None:
        """Deliver what was received, then end iteration; the handler returns and we close."""
        self._closing = True
        self._ended = True
        self._reason = "server shutdown"
        self._wake()

    def revoke(self, reason: str) -> None:
        """Finish the messages already received, then close with the reason."""
        self.begin_shutdown()
        self._reason = reason
        self._revoked = reason

    def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.tls.abort()
