"""Length-prefixed framing, sans-IO: bytes in, events out, bytes to send.

Wire format (DESIGN.md): each message is a 4-byte unsigned big-endian length,
then that many bytes. A length above the receiver's limit is refused as soon
as the 4-byte header arrives, before a byte of payload is buffered.

One header value is reserved: ``0xFFFFFFFF`` starts an *error frame*, a
4-byte length (at most :data:`MAX_ERROR_REASON`) and a UTF-8 reason, sent
just before a close so the peer learns why (policy denial, oversize message).
A peer that does not know it sees an oversize header and closes: safe.

Theory of operation: received bytes go into one ``bytearray``; a read offset
walks over complete frames, and consumed bytes are dropped only when the
offset passes half the buffer, so a burst of many small frames costs one
copy per frame (the payload ``bytes``), not one per buffer shift.
"""

from __future__ import annotations

import struct

from trustwire.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from trustwire.wire.events import (
    NEED_DATA,
    Closed,
    Event,
    Message,
    NeedData,
    RemoteError,
    StreamBuffer,
)

__all__ = ["DEFAULT_MAX_FRAME", "ERROR_MARKER", "MAX_ERROR_REASON", "LengthCodec"]

DEFAULT_MAX_FRAME = 1 << 20
"""1 MiB: DESIGN.md's default --max-frame."""

ERROR_MARKER = 0xFFFFFFFF
MAX_ERROR_REASON = 1024
"""Bytes of reason an error frame may carry; longer ones are truncated on send."""

_HEADER = 4
_unpack_header = struct.Struct(">I").unpack_from  # no slice copy, unlike int.from_bytes(buf[a:b])


class LengthCodec(StreamBuffer):
    """Decode and encode length-prefixed messages.

    Args:
        max_size: largest message accepted or sent, in bytes.

    Use::

        codec.receive_data(chunk)        # b"" means the peer closed
        while (event := codec.next_event()) is not NEED_DATA:
            handle(event)
    """

    __slots__ = ("_offset", "max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        if not 0 < max_size < ERROR_MARKER:
            raise ValueError("max_size must be between 1 and 2**32 - 2")
        super().__init__()
        self.max_size = max_size
        self._offset = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events."""
        return len(self._buffer) - self._offset

    def next_event(self) -> Event | NeedData:
        """The next complete event, or NEED_DATA.

        Raises:
            FrameTooLarge: a header announced more than ``max_size`` bytes.
            RemoteProtocolError: the stream ended inside a frame, or an error
                frame was malformed.
        """
        buf = self._buffer
        start = self._offset
        available = len(buf) - start
        if available >= _HEADER:
            size = _unpack_header(buf, start)[0]
            if size == ERROR_MARKER:
                return self._error_frame(start, available)
            if size > self.max_size:
                header = bytes(buf[start:start + _HEADER])
                text = header.isascii() and all(32 <= c < 127 or c in (9, 10, 13) for c in header)
                raise FrameTooLarge(size, self.max_size, header=header if text else None)
            end = start + _HEADER + size
            if len(buf) >= end:
                data = bytes(buf[start + _HEADER:end])
                self._consume(end)
                return Message(data=data)
        elif available and buf[start] != 0xFF and buf[start] << 24 > self.max_size:
            self._oversize_partial(start, available)
        if self._eof:
            if available:
                raise RemoteProtocolError(
                    f"the peer closed the connection in the middle of a message "
                    f"({available} bytes of it arrived)",
                )
            return Closed()
        return NEED_DATA

    def _oversize_partial(self, start: int, available: int) -> None:
        """Refuse a header that is too large before its 4 bytes are in: a non-zero first
        byte (not the error marker's 0xFF) announces at least ``byte << 24`` bytes. A line
        client's ``a`` and newline are two bytes of a header that would never complete, so
        the server says "may use line framing" at once instead of both sides waiting out
        their timeouts. Only runs while fewer than 4 bytes are buffered: no hot-path cost.

        Raises:
            FrameTooLarge: always (with the bytes, when they are text).
        """
        partial = bytes(self._buffer[start:start + available])
        text = partial.isascii() and all(32 <= c < 127 or c in (9, 10, 13) for c in partial)
        raise FrameTooLarge(int.from_bytes(partial.ljust(_HEADER, b"\0"), "big"), self.max_size,
                            header=partial if text else None)

    def _error_frame(self, start: int, available: int) -> Event | NeedData:
        buf = self._buffer
        if available < 2 * _HEADER:
            return NEED_DATA if not self._eof else self._truncated()
        length = int.from_bytes(buf[start + _HEADER:start + 2 * _HEADER], "big")
        if length > MAX_ERROR_REASON:
            raise RemoteProtocolError("the peer sent a malformed error frame")
        end = start + 2 * _HEADER + length
        if len(buf) < end:
            return NEED_DATA if not self._eof else self._truncated()
        reason = bytes(buf[start + 2 * _HEADER:end]).decode("utf-8", "replace")
        self._consume(end)
        return RemoteError(reason=reason)

    @staticmethod
    def _truncated() -> Event:
        raise RemoteProtocolError("the peer closed the connection in the middle of an error frame")

    def _consume(self, end: int) -> None:
        if end == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        elif end > len(self._buffer) // 2:
            del self._buffer[:end]
            self._offset = 0
        else:
            self._offset = end

    def header(self, size: int) -> bytes:
        """The 4-byte header for a message of ``size`` bytes (for scatter writes).

        Raises:
            LocalProtocolError: when ``size`` exceeds ``max_size``.
        """
        if size > self.max_size:
            raise LocalProtocolError(
                f"message of {size} bytes exceeds the {self.max_size}-byte limit",
                hint="raise --max-frame on both sides if such messages are expected",
            )
        return size.to_bytes(_HEADER, "big")

    def encode(self, data: bytes) -> bytes:
        """Frame one message (the hot-path form of ``send(Message(data=...))``).

        Raises:
            LocalProtocolError: for an oversize message.
        """
        size = len(data)
        if size > self.max_size:
            self.header(size)  # raises with the full message
        return size.to_bytes(_HEADER, "big") + data

    def send(self, event: Event) -> bytes:
        """Bytes that put ``event`` on the wire.

        Raises:
            LocalProtocolError: for an oversize message.
        """
        if isinstance(event, Message):
            return self.encode(event.data)
        if isinstance(event, RemoteError):
            reason = event.reason.encode("utf-8")[:MAX_ERROR_REASON]
            return ERROR_MARKER.to_bytes(_HEADER, "big") + len(reason).to_bytes(_HEADER, "big") + reason
        return b""
