"""The message channel through a channel pair, without sockets (as h11 tests its connection)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustwire.errors import (
    AccessDenied,
    ConnectionBroken,
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
)
from trustwire.wire.channel import (
    BROKEN,
    CLOSED,
    CLOSING,
    OPEN,
    PEER_CLOSED,
    VERDICT_CAP,
    VERDICT_FLOOR,
    Channel,
    Verdict,
    peer_error,
    tls13_verdict,
    verdict_wait,
)


class Pair:
    """Two channels; ``a -> b`` pipes what ``a`` sends into ``b``."""

    def __init__(self, framing: str = "length", max_frame: int = 1000) -> None:
        self.client = Channel(framing, max_frame)
        self.server = Channel(framing, max_frame)

    def to_server(self, *messages: bytes) -> list[bytes]:
        return self.server.receive(b"".join(self.client.send(m) for m in messages))

    def to_client(self, *messages: bytes) -> list[bytes]:
        return self.client.receive(b"".join(self.server.send(m) for m in messages))


@pytest.mark.parametrize("framing", ["length", "line"])
def test_messages_both_ways(framing: str) -> None:
    pair = Pair(framing)
    assert pair.to_server(b"hello", b"world") == [b"hello", b"world"]
    assert pair.to_client(b"HELLO") == [b"HELLO"]
    assert pair.client.state is OPEN and pair.server.state is OPEN


@pytest.mark.parametrize("framing", ["length", "line"])
def test_byte_by_byte_and_whole_agree(framing: str) -> None:
    pair = Pair(framing)
    wire = b"".join(pair.client.send(m) for m in (b"a", b"bc", b""))
    got = [m for byte in wire for m in pair.server.receive(bytes([byte]))]
    assert got == [b"a", b"bc", b""]


def _feed(pair: Pair, wire: bytes, chunk: int) -> None:
    for i in range(0, len(wire), chunk):
        pair.server.receive(wire[i:i + chunk])
    pair.server.receive_eof()


@given(st.lists(st.binary(max_size=50).filter(lambda m: b"\n" not in m), max_size=8),
       st.integers(min_value=1, max_value=17))
def test_any_messages_any_chunking(messages: list[bytes], chunk: int) -> None:
    for framing in ("length", "line"):
        pair = Pair(framing)
        wire = b"".join(pair.client.send(m) for m in messages)
        if framing == "line" and (wire[:1] == b"\x00" or wire[:4] == b"\xff" * 4):
            with pytest.raises(RemoteProtocolError, match="may use length framing"):
                _feed(pair, wire, chunk)
            continue  # a line stream that starts like a length header is refused, by design
        got = [m for i in range(0, len(wire), chunk) for m in pair.server.receive(wire[i:i + chunk])]
        if framing == "line":
            got += pair.server.receive_eof()
        assert got == [m.rstrip(b"\r") for m in messages] if framing == "line" else got == messages


def test_the_peers_error_frame_ends_the_conversation_and_what_follows_is_dropped() -> None:
    """A client that says goodbye and keeps talking is not listened to (it used to stall)."""
    pair = Pair()
    wire = pair.client.send(b"first") + pair.client.send_error("giving up") + Channel().send(b"more")
    assert pair.client.state is CLOSING
    assert pair.server.receive(wire) == [b"first"]
    assert pair.server.state is BROKEN and pair.server.peer_error == "giving up"
    assert pair.server.receive(Channel().send(b"later")) == []


def test_after_we_close_nothing_more_is_delivered_or_sent() -> None:
    """A session being cut must not get one more message processed, complete or not."""
    pair = Pair()
    last_words = pair.server.send_error("access revoked: the certificate of CN=alice has been revoked")
    assert pair.server.state is CLOSING
    assert pair.server.receive(pair.client.send(b"one more")) == []
    with pytest.raises(ConnectionClosed):
        pair.server.send(b"reply")
    assert pair.server.send_error("again") == b""
    assert pair.client.receive(last_words) == []
    error = peer_error(pair.client.peer_error or "")
    assert isinstance(error, AccessDenied) and error.diagnosis.reason == "access-revoked"
    assert "CN=alice has been revoked" in str(error)


def test_a_peer_that_broke_the_framing_is_still_told_why() -> None:
    pair = Pair(max_frame=10)
    with pytest.raises(RemoteProtocolError, match="exceeds the 10-byte limit"):
        pair.server.receive(b"\x00\x00\x10\x00")
    assert pair.server.state is BROKEN
    assert pair.server.send_error("message too large") != b""
    assert pair.server.state is CLOSED and pair.server.send_error("again") == b""


def test_a_clean_end_at_a_boundary_leaves_our_side_open() -> None:
    pair = Pair()
    assert pair.to_server(b"q") == [b"q"]
    assert pair.server.receive_eof() == []
    assert pair.server.state is PEER_CLOSED
    assert pair.client.receive(pair.server.send(b"answer")) == [b"answer"]  # half-close
    pair.server.close()
    assert pair.server.state is CLOSED


def test_the_end_inside_a_frame_breaks_the_channel() -> None:
    pair = Pair()
    pair.server.receive(pair.client.send(b"abcdef")[:5])
    with pytest.raises(RemoteProtocolError, match="in the middle of a message"):
        pair.server.receive_eof()
    assert pair.server.state is BROKEN


def test_line_framing_keeps_a_last_line_without_newline() -> None:
    pair = Pair("line")
    assert pair.server.receive(b"first\nlast") == [b"first"]
    assert pair.server.receive_eof() == [b"last"]
    assert pair.server.state is PEER_CLOSED


def test_line_framing_error_line_at_the_end_is_the_peers_reason() -> None:
    pair = Pair("line")
    messages = pair.client.receive(b"HELLO\n" + pair.server.send_error("access denied: CN=eve is "
                                                                       "not allowed"))
    assert messages == [b"HELLO", b"error: access denied: CN=eve is not allowed"]
    assert pair.client.receive_eof() == []
    assert pair.client.state is BROKEN
    error = peer_error(pair.client.peer_error or "")
    assert isinstance(error, AccessDenied) and error.diagnosis.reason == "policy-denied"


def test_sending_what_the_framing_cannot_carry_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="newline"):
        Channel("line").send(b"a\nb")
    with pytest.raises(LocalProtocolError, match="exceeds"):
        Channel(max_frame=3).send(b"four")
    with pytest.raises(ValueError, match="unknown framing"):
        Channel("xml")


def test_other_last_words_are_a_broken_connection() -> None:
    error = peer_error("internal error in the service")
    assert isinstance(error, ConnectionBroken)
    assert str(error) == "the server closed the connection: internal error in the service"


@pytest.mark.parametrize(("seen", "verdict"), [
    ({}, Verdict.UNDECIDED),
    ({"ticket": True}, Verdict.ACCEPTED),
    ({"messages": True}, Verdict.ACCEPTED),
    ({"refused": True, "ticket": True}, Verdict.REFUSED),
    ({"ended": True}, Verdict.REFUSED),
    ({"ended": True, "messages": True}, Verdict.ACCEPTED),
])
def test_tls13_verdict(seen: dict[str, bool], verdict: Verdict) -> None:
    args = {"ticket": False, "messages": False, "refused": False, "ended": False, **seen}
    assert tls13_verdict(**args) is verdict


def test_verdict_wait_is_short_on_fast_links_and_bounded_on_slow_ones() -> None:
    assert verdict_wait(0.002, 10) == VERDICT_FLOOR  # loopback: well under a second
    assert verdict_wait(0.1, 10) == pytest.approx(0.4)
    assert verdict_wait(5.0, 10) == VERDICT_CAP
    assert verdict_wait(5.0, 0.2) == 0.2  # never beyond the caller's timeout


def test_respond_answers_as_it_decodes_and_stops_at_the_peers_error_frame() -> None:
    pair = Pair()
    wire = b"".join(pair.client.send(m) for m in (b"a", b"b")) + pair.client.send_error("bye")
    replies: list[bytes] = []
    answered = pair.server.respond(wire + Channel().send(b"ignored"),
                                   lambda m, peer: m.upper() if m != b"b" else None, None, replies)
    assert answered == 2 and replies == [pair.server.codec.encode(b"A")]
    assert pair.server.state is BROKEN and pair.server.peer_error == "bye"
    assert pair.server.respond(Channel().send(b"later"), lambda m, p: m, None, replies) == 0


def test_respond_keeps_the_answers_before_a_failing_handler() -> None:
    pair = Pair()
    replies: list[bytes] = []

    def fails_on_two(message: bytes, peer: object) -> bytes:
        if message == b"2":
            raise RuntimeError("boom")
        return message

    with pytest.raises(RuntimeError):
        pair.server.respond(b"".join(pair.client.send(m) for m in (b"1", b"2")), fails_on_two,
                            None, replies)
    assert replies == [pair.server.codec.encode(b"1")]
