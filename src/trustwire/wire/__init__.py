"""Sans-IO codecs: framing and the PROXY protocol v2 header. Bytes in, events out; no sockets."""

from __future__ import annotations

from trustwire.wire.events import NEED_DATA, Closed, Event, Message, NeedData, RemoteError
from trustwire.wire.frames import DEFAULT_MAX_FRAME, LengthCodec
from trustwire.wire.lines import LineCodec

__all__ = [
    "DEFAULT_MAX_FRAME",
    "NEED_DATA",
    "Closed",
    "Codec",
    "Event",
    "LengthCodec",
    "LineCodec",
    "Message",
    "NeedData",
    "RemoteError",
    "make_codec",
]

Codec = LengthCodec | LineCodec


def make_codec(framing: str, max_size: int = DEFAULT_MAX_FRAME) -> Codec:
    """A fresh codec for ``framing`` (``length`` or ``line``)."""
    if framing == "length":
        return LengthCodec(max_size)
    if framing == "line":
        return LineCodec(max_size)
    raise ValueError(f"unknown framing {framing!r}: use length or line")
