"""Message sessions: TLS plaintext in, framed messages to the handler, replies out.

Two handler shapes share everything but delivery:

* a *responder* (``@trustwire.responder``), a plain function
  ``(message, peer) -> reply | None`` called inline as messages are decoded,
  with every reply of one read encrypted as one write: no task, no queue, no
  future per connection or message; the fast path ``upper`` and ``echo`` use;
* a *stream handler*, ``async def handler(conn)``, one task per connection,
  reading with ``async for message in conn`` and writing with
  ``await conn.send(...)``.

Both feed a :class:`trustwire.wire.channel.Channel` and act on its state. The
peer's error frame ends the conversation (what follows it is not processed).
A session that is refused or cut (:class:`trustwire.net.session.Session`) is
told why in an error frame and closed at once: no further message, complete
or half-received, is processed, and a stream handler's ``recv`` and ``send``
raise :class:`ConnectionClosed`. A last line without a newline counts as a
message only when the peer closed cleanly (close_notify): after a truncation
it is dropped, since the cut may have fallen inside it.

Backpressure: when the kernel will not take more of our replies (the
transport's buffer passes its high-water mark), the session stops reading the
peer, so a client that sends without reading cannot grow our memory. In stream
mode, more than ``max_queued`` undelivered messages also pause reading.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from trustwire.errors import ConnectionBroken, ConnectionClosed, ProtocolError, TrustwireError
from trustwire.identity import PeerIdentity
from trustwire.net.session import Session
from trustwire.net.transport import TLS_OPEN
from trustwire.wire.channel import OPEN, Channel

if TYPE_CHECKING:
    from trustwire.server.server import Server

__all__ = ["Connection", "MessageSession", "ReplySession", "Responder", "StreamHandler",
           "responder"]

Responder = Callable[[bytes, PeerIdentity | None], bytes | None]
StreamHandler = Callable[["Connection"], Awaitable[None]]
R = TypeVar("R", bound=Responder)


def responder(func: R) -> R:
    """Mark ``func(message, peer) -> reply | None`` as a fast, inline request handler.

    It must not block: it runs on the event loop for every message.
    """
    func.__trustwire_responder__ = True  # type: ignore[attr-defined]
    return func


class MessageSession(Session):
    """A session that carries framed messages (both handler shapes)."""

    __slots__ = ("_shutting_down", "channel")

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.channel = Channel(server.framing, server.limits.max_frame)
        self._shutting_down = False

    def refuse(self, reason: str) -> None:
        """Tell the peer why (error frame or ``error:`` line), then close."""
        last_words = self.channel.send_error(reason)
        if last_words:
            with contextlib.suppress(ConnectionClosed, OSError):
                self.tls.write(last_words)
        self.tls.close()

    def protocol_error(self, exc: ProtocolError) -> None:
        self.listener.stats.protocol_errors += 1
        self._reason = f"protocol error: {exc.message}"
        self.refuse(exc.message)

    def peer_left(self, clean: bool) -> None:
        """The peer ended the conversation (EOF, or its error frame): close our side."""
        if self.channel.peer_error is not None:
            self._reason = f"closed by peer: {self.channel.peer_error}"
        elif not self._shutting_down:
            self._reason = "closed by peer" if clean else "closed by peer (no close_notify)"
        self.channel.close()
        self.tls.close()

    def final_messages(self, clean: bool) -> list[bytes]:
        """What the end of the stream completes: a last unterminated line, after a clean
        close only (a truncation may have cut it short)."""
        if not clean:
            return []
        try:
            return self.channel.receive_eof()
        except ProtocolError:
            return []  # ended inside a frame: nothing to deliver


class ReplySession(MessageSession):
    """A session served by a responder, inline."""

    __slots__ = ("_responder",)

    def __init__(self, server: Server, func: Responder) -> None:
        super().__init__(server)
        self._responder = func

    def tls_data(self, data: memoryview) -> None:
        channel = self.channel
        replies: list[bytes] = []
        try:
            self.messages += channel.respond(data, self._responder, self.peer, replies)
        except ProtocolError as exc:  # the peer's framing, or an oversize reply
            self._write(replies)
            self.protocol_error(exc)
            return
        except Exception as exc:
            self._write(replies)
            self._reason = f"handler error: {type(exc).__name__}: {exc}"
            self.refuse("internal error in the service")
            return
        if replies and self.tls.state is TLS_OPEN:
            try:  # noqa: SIM105 - contextlib.suppress costs 9% of a round trip here
                self.tls.write(replies[0] if len(replies) == 1 else b"".join(replies))
            except ConnectionClosed:
                pass
        if channel.state is not OPEN:
            self.peer_left(True)  # its error frame: it is closing
        elif self._shutting_down and channel.buffered == 0:
            self.tls.close()

    def _answer(self, messages: list[bytes]) -> None:
        """Reply to messages already decoded (the stream's last line, at its end)."""
        self.messages += len(messages)
        replies: list[bytes] = []
        try:
            for message in messages:
                reply = self._responder(message, self.peer)
                if reply is not None:
                    replies.append(self.channel.codec.encode(reply))
        except Exception as exc:
            self._write(replies)
            self._reason = f"handler error: {type(exc).__name__}: {exc}"
            self.refuse("internal error in the service")
            return
        self._write(replies)

    def _write(self, replies: list[bytes]) -> None:
        if replies and self.tls.state is TLS_OPEN:
            try:  # noqa: SIM105 - contextlib.suppress costs 9% of a round trip here
                self.tls.write(replies[0] if len(replies) == 1 else b"".join(replies))
            except ConnectionClosed:
                pass

    def on_data_end(self, clean: bool) -> None:
        last = self.final_messages(clean)
        if last:
            self._answer(last)
        self.peer_left(clean)

    def on_resume_writing(self) -> None:
        if not self._shutting_down:
            self.tls.resume_reading()

    def begin_shutdown(self) -> None:
        """Finish the message being received, if any, then close."""
        self._shutting_down = True
        self._reason = "server shutdown"
        if self.channel.buffered == 0 or self.tls.state is not TLS_OPEN:
            self.tls.close()


class Connection(MessageSession):
    """A connection as a stream handler sees it.

    ``async for message in conn`` yields whole messages until the peer closes;
    ``await conn.send(data)`` waits when the peer is slow to read.
    ``conn.peer`` is the verified identity (None without client certificates).
    """

    __slots__ = ("_drained", "_ended", "_error", "_handler", "_inbox", "_task", "_waiter")

    def __init__(self, server: Server, handler: StreamHandler) -> None:
        super().__init__(server)
        self._handler = handler
        self._inbox: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self._error: TrustwireError | None = None

    # -- handler API ----------------------------------------------------------------------------

    async def recv(self) -> bytes:
        """The next message.

        Raises:
            ConnectionClosed: the peer closed, the server is shutting down, or the session
                was refused or cut (its identity is no longer admitted), and no message is
                left to deliver.
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
        if len(self._inbox) < self.listener.limits.max_queued // 4:
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
            ConnectionClosed: the connection is closed (or was cut).
            LocalProtocolError: the message is too large or not line-safe.
        """
        self.tls.write(self.channel.send(data))
        while self._write_paused and self.tls.state is TLS_OPEN:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None

    def close(self) -> None:
        """Close gracefully (close_notify, then TCP close after pending data)."""
        self._reason = "closed by server"
        self.channel.close()
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
            if self._reason == "closed by peer":
                self._reason = "cancelled at shutdown"
            self.tls.abort()
            raise
        except Exception as exc:
            self._reason = f"handler error: {type(exc).__name__}: {exc}"
            self.refuse("internal error in the service")
            return
        self.channel.close()
        self.tls.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def tls_data(self, data: memoryview) -> None:
        channel = self.channel
        try:
            messages = channel.receive(data)
        except ProtocolError as exc:
            self._error = ConnectionBroken(exc.message)
            self.protocol_error(exc)
            self._wake()
            return
        if messages:
            self.messages += len(messages)
            self._inbox.extend(messages)
            if len(self._inbox) >= self.listener.limits.max_queued:
                self.tls.pause_reading()
        if channel.state is not OPEN:
            self._ended = True
            self.peer_left(True)
        self._wake()

    def on_data_end(self, clean: bool) -> None:
        self._inbox.extend(self.final_messages(clean))
        self._ended = True
        if self.channel.peer_error is None and not self._shutting_down:
            self._reason = "closed by peer" if clean else "closed by peer (no close_notify)"
        self._wake()

    def refuse(self, reason: str) -> None:
        """Refused or cut: nothing more is delivered to the handler, and it may not send."""
        self._inbox.clear()
        self._ended = True
        if self._error is None:
            self._error = ConnectionClosed(f"the session was closed: {reason}")
        super().refuse(reason)
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def on_closed(self) -> None:
        self._ended = True
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def on_resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if len(self._inbox) < self.listener.limits.max_queued:
            self.tls.resume_reading()

    def begin_shutdown(self) -> None:
        """Deliver what was received, then end iteration; the handler returns and we close."""
        self._shutting_down = True
        self._ended = True
        self._reason = "server shutdown"
        self._wake()

    def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.tls.abort()
