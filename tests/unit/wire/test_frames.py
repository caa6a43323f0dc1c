"""Length-prefixed and line framing without sockets."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustwire.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError
from trustwire.wire import (
    NEED_DATA,
    Closed,
    Event,
    LengthCodec,
    LineCodec,
    Message,
    RemoteError,
    make_codec,
)


def drain(codec: LengthCodec | LineCodec) -> list[Event]:
    events: list[Event] = []
    while (event := codec.next_event()) is not NEED_DATA:
        assert not isinstance(event, type(NEED_DATA))
        events.append(event)
        if isinstance(event, (Closed, RemoteError)):
            break
    return events


def feed(codec: LengthCodec | LineCodec, chunks: list[bytes], eof: bool = True) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        assert chunk, "an empty chunk would mean end of stream"
        codec.receive_data(chunk)
        events += drain(codec)
    if eof:
        codec.receive_data(b"")
        events += drain(codec)
    return events


def messages(events: list[Event]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Message)]


# -- length framing ---------------------------------------------------------------------------

def test_roundtrip_whole_and_byte_by_byte() -> None:
    sender = LengthCodec()
    wire = b"".join(sender.send(Message(data=m)) for m in (b"hello", b"", b"world" * 100))
    assert wire[:4] == b"\x00\x00\x00\x05"
    whole = feed(LengthCodec(), [wire])
    assert messages(whole) == [b"hello", b"", b"world" * 100]
    assert isinstance(whole[-1], Closed)
    bytewise = feed(LengthCodec(), [wire[i:i + 1] for i in range(len(wire))])
    assert bytewise == whole


def test_every_split_point_of_two_frames() -> None:
    wire = LengthCodec().send(Message(data=b"abc")) + LengthCodec().send(Message(data=b"defgh"))
    for cut in range(len(wire) + 1):
        chunks = [c for c in (wire[:cut], wire[cut:]) if c]
        assert messages(feed(LengthCodec(), chunks)) == [b"abc", b"defgh"]


def test_many_frames_in_one_read() -> None:
    codec = LengthCodec()
    wire = b"".join(codec.send(Message(data=str(i).encode())) for i in range(1000))
    assert messages(feed(LengthCodec(), [wire])) == [str(i).encode() for i in range(1000)]


def test_oversize_header_is_refused_before_any_payload() -> None:
    codec = LengthCodec(max_size=1024)
    codec.receive_data(b"\xff\xff\xff\xfe")  # announces 4 GiB - 2
    with pytest.raises(FrameTooLarge) as info:
        codec.next_event()
    assert info.value.size == 0xFFFFFFFE and info.value.limit == 1024
    assert "exceeds the 1024-byte limit" in str(info.value)


def test_exact_limit_is_accepted() -> None:
    codec = LengthCodec(max_size=10)
    assert messages(feed(codec, [codec.send(Message(data=b"x" * 10))])) == [b"x" * 10]
    with pytest.raises(LocalProtocolError, match="exceeds"):
        codec.send(Message(data=b"x" * 11))


def test_eof_inside_a_frame_is_an_error() -> None:
    codec = LengthCodec()
    codec.receive_data(b"\x00\x00\x00\x10abc")
    assert codec.next_event() is NEED_DATA
    codec.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a message"):
        codec.next_event()


def test_eof_inside_a_header_is_an_error() -> None:
    with pytest.raises(RemoteProtocolError):
        feed(LengthCodec(), [b"\x00\x00"])


def test_error_frame_roundtrip_and_truncation() -> None:
    sender = LengthCodec()
    wire = sender.send(Message(data=b"first")) + sender.send(RemoteError(reason="access denied: CN=eve"))
    events = feed(LengthCodec(max_size=16), [wire])  # the error frame ignores max_size
    assert events == [Message(data=b"first"), RemoteError(reason="access denied: CN=eve"), Closed()]
    long = LengthCodec().send(RemoteError(reason="x" * 5000))
    assert len(long) == 8 + 1024


def test_malformed_error_frame() -> None:
    codec = LengthCodec()
    codec.receive_data(b"\xff\xff\xff\xff\x00\x10\x00\x00")
    with pytest.raises(RemoteProtocolError, match="malformed error frame"):
        codec.next_event()


def test_buffer_is_reclaimed_as_frames_are_consumed() -> None:
    codec = LengthCodec()
    for _ in range(10_000):
        codec.receive_data(codec.send(Message(data=b"x" * 100)))
        assert isinstance(codec.next_event(), Message)
    assert codec.buffered == 0


def test_make_codec() -> None:
    assert isinstance(make_codec("length"), LengthCodec)
    assert isinstance(make_codec("line", 5), LineCodec)
    with pytest.raises(ValueError, match="unknown framing"):
        make_codec("xml")


# -- line framing -----------------------------------------------------------------------------

def test_lines_with_lf_and_crlf_and_final_partial() -> None:
    events = feed(LineCodec(100), [b"hello\r\nwor", b"ld\n\nlast"])
    assert messages(events) == [b"hello", b"world", b"", b"last"]
    assert isinstance(events[-1], Closed)


def test_long_line_refused_without_newline() -> None:
    codec = LineCodec(8)
    codec.receive_data(b"123456789")
    with pytest.raises(FrameTooLarge):
        codec.next_event()


def test_long_line_refused_even_with_newline() -> None:
    codec = LineCodec(4)
    codec.receive_data(b"12345\n")
    with pytest.raises(FrameTooLarge):
        codec.next_event()


def test_line_send_refuses_embedded_newline() -> None:
    with pytest.raises(LocalProtocolError, match="newline"):
        LineCodec(100).send(Message(data=b"a\nb"))
    assert LineCodec(100).send(RemoteError(reason="bad\nthing")) == b"error: bad thing\n"


def test_error_line_followed_by_eof_becomes_remote_error() -> None:
    events = feed(LineCodec(100), [b"HELLO\nerror: access denied: CN=eve\n"])
    assert events == [Message(data=b"HELLO"), Message(data=b"error: access denied: CN=eve"),
                      RemoteError(reason="access denied: CN=eve")]
    # an "error: " line in the middle of a conversation is just a message
    middle = feed(LineCodec(100), [b"error: x\nmore\n"])
    assert messages(middle) == [b"error: x", b"more"] and isinstance(middle[-1], Closed)


def test_line_scan_is_incremental() -> None:
    codec = LineCodec(1 << 20)
    for _ in range(1000):
        codec.receive_data(b"x" * 100)
        assert codec.next_event() is NEED_DATA
    codec.receive_data(b"\n")
    event = codec.next_event()
    assert isinstance(event, Message) and len(event.data) == 100_000


# -- properties ---------------------------------------------------------------------------------

message_lists = st.lists(st.binary(max_size=300), max_size=20)


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]  # b"" means EOF


@settings(max_examples=300)
@given(msgs=message_lists, data=st.data())
def test_any_split_of_any_message_sequence_decodes_the_same(msgs: list[bytes], data: st.DataObject) -> None:
    wire = b"".join(LengthCodec().send(Message(data=m)) for m in msgs)
    chunks = data.draw(split(wire))
    events = feed(LengthCodec(), chunks)
    assert messages(events) == msgs
    assert isinstance(events[-1], Closed)


line_lists = st.lists(st.binary(max_size=200).filter(lambda b: b"\n" not in b and not b.endswith(b"\r")
                                                      and not b.startswith(b"error: ")), max_size=20).filter(
    # a stream starting like a length header is refused (test_line_stream_starting_like_length_framing)
    lambda ms: not ms or not (ms[0].startswith(b"\x00") or ms[0].startswith(b"\xff\xff\xff\xff")))


@settings(max_examples=300)
@given(msgs=line_lists, data=st.data())
def test_any_split_of_lines_decodes_the_same(msgs: list[bytes], data: st.DataObject) -> None:
    codec = LineCodec(1000)
    wire = b"".join(codec.send(Message(data=m)) for m in msgs)
    events = feed(LineCodec(1000), data.draw(split(wire)))
    assert messages(events) == msgs


@settings(max_examples=200)
@given(size=st.integers(0, 2**32 - 2), limit=st.integers(1, 2**20), tail=st.binary(max_size=50))
def test_oversize_is_always_refused(size: int, limit: int, tail: bytes) -> None:
    codec = LengthCodec(limit)
    codec.receive_data(size.to_bytes(4, "big") + tail)
    if size > limit:
        with pytest.raises(FrameTooLarge):
            codec.next_event()
    else:
        codec.next_event()  # never raises for in-limit sizes
    assert codec.buffered <= 4 + len(tail)


@settings(max_examples=200)
@given(garbage=st.binary(max_size=500), data=st.data())
def test_random_bytes_never_crash_the_length_decoder(garbage: bytes, data: st.DataObject) -> None:
    codec = LengthCodec(256)
    with contextlib.suppress(FrameTooLarge, RemoteProtocolError):
        feed(codec, data.draw(split(garbage)))


@pytest.mark.parametrize("start", [b"\x00\x00\x00\x05hello", b"\xff\xff\xff\xff\x00\x00\x00\x01x"])
def test_line_stream_starting_like_length_framing(start: bytes) -> None:
    codec = LineCodec(100)
    codec.receive_data(start[:1] if start[0] == 0xFF else start)
    if start[0] == 0xFF:
        assert codec.next_event() is NEED_DATA  # one 0xFF byte could still be text
        codec.receive_data(start[1:])
    with pytest.raises(RemoteProtocolError, match="may use length framing") as info:
        codec.next_event()
    assert info.value.hint is not None and "--framing" in info.value.hint
    later = LineCodec(100)
    assert messages(feed(later, [b"first\n\x00second\n"])) == [b"first", b"\x00second"]


def test_text_read_as_a_length_says_line_framing() -> None:
    codec = LengthCodec(1024)
    codec.receive_data(b"HELLO\n")
    with pytest.raises(FrameTooLarge, match=r"are text \('HELL'\).*may use line framing") as info:
        codec.next_event()
    assert info.value.size == int.from_bytes(b"HELL", "big") and info.value.header == b"HELL"


def test_a_short_line_is_refused_before_its_header_completes() -> None:
    """``b"a\\n"`` from a line client is two bytes of a header that never completes: the
    first byte alone announces over 1.6 GB, so it is refused at once, not at a timeout."""
    codec = LengthCodec(1024)
    codec.receive_data(b"a\n")
    with pytest.raises(FrameTooLarge, match=r"are text \('a\\n'\).*may use line framing") as info:
        codec.next_event()
    assert info.value.header == b"a\n" and info.value.size == 0x610A0000
    waiting = LengthCodec(1024)
    for start in (b"\x00\x00", b"\xff"):  # a real short header, an error frame's start
        waiting.receive_data(start)
        assert waiting.next_event() is NEED_DATA
        waiting = LengthCodec(1024)
