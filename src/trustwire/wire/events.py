"""Events the sans-IO codecs produce and accept (frozen, keyword-only, as in h11)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["NEED_DATA", "Closed", "Event", "Message", "NeedData", "RemoteError", "StreamBuffer"]


class NeedData:
    """Sentinel type: the codec needs more bytes before it can produce an event."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One whole application message."""

    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class RemoteError:
    """The peer said why it is closing (for example "access denied: ...")."""

    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Closed:
    """The peer closed its side cleanly at a message boundary."""


Event = Message | RemoteError | Closed


class StreamBuffer:
    """The receiving half both codecs share: bytes accumulate until the peer's end."""

    __slots__ = ("_buffer", "_eof")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._eof = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; ``b""`` signals end of stream."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("receive_data after end of stream")
        self._buffer += data
