"""Line framing, sans-IO: messages end with ``\\n`` (for openssl s_client, ncat, humans).

A trailing ``\\r`` is dropped, so ``s_client -crlf`` works. A line longer than
the limit is refused as soon as that many bytes arrive without a newline. A
last line without ``\\n`` before the peer closes is still a message (people
type ``printf hello | ncat``). The scan for ``\\n`` resumes where the last one
stopped, so a long line arriving in small pieces costs linear time.

A stream that starts with a NUL byte, or with length framing's error marker
(four 0xFF bytes), is refused at once: those are the first bytes of a 4-byte
length header (any message under 16 MiB starts with 0x00), so the other side
speaks length framing, and waiting for a newline would only wait out a timeout.

There is no error frame in line mode: a server that closes for a reason sends
a last line ``error: <reason>``, which people can read. Every line is still
delivered as a message; when the stream ends right after such a line, the end
is reported as :class:`RemoteError` with that reason instead of Closed.
"""

from __future__ import annotations

from trustwire.errors import FRAMING_HINT, FrameTooLarge, LocalProtocolError, RemoteProtocolError
from trustwire.wire.events import (
    NEED_DATA,
    Closed,
    Event,
    Message,
    NeedData,
    RemoteError,
    StreamBuffer,
)

__all__ = ["ERROR_PREFIX", "LineCodec"]

ERROR_PREFIX = b"error: "


class LineCodec(StreamBuffer):
    """Decode and encode newline-terminated messages.

    Args:
        max_size: longest line accepted or sent, without its newline.
    """

    __slots__ = ("_scanned", "_started", "last_error", "max_size")

    def __init__(self, max_size: int) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        super().__init__()
        self.max_size = max_size
        self._scanned = 0
        self._started = False
        self.last_error: bytes | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_event(self) -> Event | NeedData:
        """The next line as a Message, Closed (or RemoteError) at the end, or NEED_DATA.

        Raises:
            FrameTooLarge: a line grew past ``max_size`` without a newline.
            RemoteProtocolError: the stream starts like length framing.
        """
        if not self._started:
            self._check_start()
        event = self._next_line()
        if isinstance(event, Message):
            self.last_error = event.data if event.data.startswith(ERROR_PREFIX) else None
        elif isinstance(event, Closed) and self.last_error is not None:
            return RemoteError(reason=self.last_error[len(ERROR_PREFIX):].decode("utf-8", "replace"))
        return event

    def _check_start(self) -> None:
        buf = self._buffer
        if not buf or (buf[0] == 0xFF and len(buf) < 4 and not self._eof):
            return
        self._started = True
        if buf[0] == 0x00 or buf[:4] == b"\xff\xff\xff\xff":
            raise RemoteProtocolError(
                "the data received starts with a binary length header, not a line of text: "
                "the other side may use length framing", hint=FRAMING_HINT)

    def _next_line(self) -> Event | NeedData:
        buf = self._buffer
        index = buf.find(b"\n", self._scanned)
        if index >= 0:
            end = index - 1 if index and buf[index - 1] == 0x0D else index
            if end > self.max_size:
                raise FrameTooLarge(end, self.max_size)
            data = bytes(buf[:end])
            del buf[:index + 1]
            self._scanned = 0
            return Message(data=data)
        if len(buf) > self.max_size:
            raise FrameTooLarge(len(buf), self.max_size)
        self._scanned = len(buf)
        if self._eof:
            if buf:
                data = bytes(buf.rstrip(b"\r"))
                buf.clear()
                return Message(data=data)
            return Closed()
        return NEED_DATA

    def encode(self, data: bytes) -> bytes:
        """One message as a line.

        Raises:
            LocalProtocolError: a message containing a newline, or too long.
        """
        if b"\n" in data:
            raise LocalProtocolError(
                "line framing cannot carry a newline inside a message",
                hint="use --framing length for binary or multi-line messages",
            )
        if len(data) > self.max_size:
            raise LocalProtocolError(
                f"message of {len(data)} bytes exceeds the {self.max_size}-byte limit",
            )
        return data + b"\n"

    def send(self, event: Event) -> bytes:
        """Bytes for ``event``.

        Raises:
            LocalProtocolError: a message containing a newline, or too long.
        """
        if isinstance(event, Message):
            return self.encode(event.data)
        if isinstance(event, RemoteError):
            return ERROR_PREFIX + event.reason.replace("\n", " ").encode("utf-8") + b"\n"
        return b""
