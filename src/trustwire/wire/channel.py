"""A message channel, sans-IO: one side of a framed conversation, as h11 has one connection.

Both clients and both server shapes feed it the plaintext they receive and
send what it returns; it owns the codec, the conversation's state, and what
the peer's last words mean. No sockets, clocks or TLS objects.

State table (checked on entry to every method)::

    state        receive        receive_eof        send           send_error / close
    OPEN         decode         -> PEER_CLOSED     encode         -> CLOSING
    PEER_CLOSED  ignored        ignored            encode         -> CLOSED
    CLOSING      ignored        -> CLOSED          ConnClosed     no-op
    CLOSED       ignored        ignored            ConnClosed     no-op
    BROKEN       ignored        ignored            ConnClosed     -> CLOSED (send_error: once)

* OPEN: both directions carry messages.
* PEER_CLOSED: the peer ended cleanly at a message boundary; we may still send
  (half-close), e.g. the replies to what it sent before.
* CLOSING: we are done (said goodbye, or why in an error frame): nothing more
  the peer sends is delivered, so a peer being cut off cannot get one more
  message processed.
* BROKEN: the peer broke the framing (``receive`` raised) or said why it is
  closing (an error frame: ``peer_error`` holds its words, and what followed is
  dropped: a peer that says goodbye and keeps talking is not listened to).

The TLS 1.3 verdict rule also lives here (:func:`tls13_verdict`): with TLS 1.3
a client's handshake completes before the server has judged the client's
certificate, so a client learns of a refusal only from what comes next.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from trustwire.errors import (
    AccessDenied,
    ConnectionBroken,
    ConnectionClosed,
    Diagnosis,
    ProtocolError,
    RemoteProtocolError,
    TrustwireError,
)
from trustwire.identity import PeerIdentity
from trustwire.tls.diagnose import policy_denied
from trustwire.wire.events import NEED_DATA, Message, RemoteError
from trustwire.wire.frames import DEFAULT_MAX_FRAME, LengthCodec
from trustwire.wire.lines import LineCodec

__all__ = [
    "BROKEN", "CLOSED", "CLOSING", "DENIED_PREFIX", "OPEN", "PEER_CLOSED", "REVOKED_PREFIX",
    "VERDICT_CAP", "VERDICT_FLOOR", "Channel", "ChannelState", "Verdict", "peer_error",
    "tls13_verdict", "verdict_wait",
]

DENIED_PREFIX = "access denied: "
"""Error-frame text of a server that refused the identity after the handshake."""
REVOKED_PREFIX = "access revoked: "
"""Error-frame text of a server that cut an open session (revocation, policy reload)."""


class ChannelState(enum.Enum):
    OPEN = "open"
    PEER_CLOSED = "peer-closed"
    CLOSING = "closing"
    CLOSED = "closed"
    BROKEN = "broken"


# Module globals: comparing with these costs ~20 ns, an Enum class attribute ~190 ns.
OPEN, PEER_CLOSED, CLOSING = ChannelState.OPEN, ChannelState.PEER_CLOSED, ChannelState.CLOSING
CLOSED, BROKEN = ChannelState.CLOSED, ChannelState.BROKEN


class Channel:
    """One side of a framed conversation.

    Args:
        framing: ``length`` or ``line``.
        max_frame: the largest message accepted or sent.
    """

    __slots__ = ("codec", "peer_error", "state")

    def __init__(self, framing: str = "length", max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if framing not in ("length", "line"):
            raise ValueError(f"unknown framing {framing!r}: use length or line")
        self.codec: LengthCodec | LineCodec = (
            LengthCodec(max_frame) if framing == "length" else LineCodec(max_frame))
        self.state = OPEN
        self.peer_error: str | None = None
        """What the peer said in its error frame (or ``error:`` line), once BROKEN by one."""

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete message held (0 at a message boundary)."""
        return self.codec.buffered

    def receive(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Feed bytes from the peer; returns the whole messages they completed.

        Raises:
            RemoteProtocolError: the peer broke the framing (the channel is BROKEN).
        """
        if self.state is not OPEN:
            return []
        codec = self.codec
        codec.receive_data(data)
        messages: list[bytes] = []
        try:  # the loop of _decode, inlined: this runs once per read on every server
            while (event := codec.next_event()) is not NEED_DATA:
                if type(event) is Message:
                    messages.append(event.data)
                    continue
                if type(event) is RemoteError:
                    self.peer_error = event.reason
                    self.state = BROKEN
                break
        except ProtocolError:
            self.state = BROKEN
            raise
        return messages

    def respond(self, data: bytes | bytearray | memoryview,
                func: Callable[[bytes, PeerIdentity | None], bytes | None],
                peer: PeerIdentity | None, replies: list[bytes]) -> int:
        """:meth:`receive` for a responder: ``func(message, peer)`` answers each message
        as it is decoded, and the framed answers are appended to ``replies`` (the caller
        writes them in one go). The server's fast path: one call per read.

        Returns:
            How many messages were answered.

        Raises:
            RemoteProtocolError: the peer broke the framing (the channel is BROKEN).
            Whatever ``func`` raises (``replies`` holds the answers before it).
        """
        if self.state is not OPEN:
            return 0
        codec = self.codec
        codec.receive_data(data)
        encode = codec.encode
        answered = 0
        try:
            while (event := codec.next_event()) is not NEED_DATA:
                if type(event) is Message:
                    answered += 1
                    reply = func(event.data, peer)
                    if reply is not None:
                        replies.append(encode(reply))
                    continue
                if type(event) is RemoteError:
                    self.peer_error = event.reason
                    self.state = BROKEN
                break
        except RemoteProtocolError:
            self.state = BROKEN
            raise
        return answered

    def receive_eof(self) -> list[bytes]:
        """The peer ended its side; returns the messages that completes (a line framing's
        last line without a newline is one).

        Raises:
            RemoteProtocolError: the stream ended inside a message (the channel is BROKEN).
        """
        state = self.state
        if state is CLOSING:
            self.state = CLOSED
            return []
        if state is not OPEN:
            return []
        self.codec.receive_data(b"")
        messages = self._decode()
        if self.state is OPEN:
            self.state = PEER_CLOSED  # the codec said Closed: a clean end at a boundary
        return messages

    def _decode(self) -> list[bytes]:
        """Every event the codec holds: messages collected, the peer's error frame noted."""
        codec = self.codec
        messages: list[bytes] = []
        try:
            while (event := codec.next_event()) is not NEED_DATA:
                if type(event) is Message:
                    messages.append(event.data)
                    continue
                if type(event) is RemoteError:
                    self.peer_error = event.reason
                    self.state = BROKEN
                break  # RemoteError, or Closed (only at the end of the stream)
        except ProtocolError:
            self.state = BROKEN
            raise
        return messages

    def send(self, message: bytes) -> bytes:
        """The bytes that carry ``message``.

        Raises:
            ConnectionClosed: we already closed, or the channel is broken.
            LocalProtocolError: too large, or a newline in line framing.
        """
        state = self.state
        if state is not OPEN and state is not PEER_CLOSED:
            raise ConnectionClosed("the connection is closed")
        return self.codec.encode(message)

    def send_error(self, reason: str) -> bytes:
        """The bytes that tell the peer why we close (error frame or ``error:`` line);
        b"" once we closed. A peer that broke the framing is still told why."""
        state = self.state
        if state is CLOSING or state is CLOSED:
            return b""
        self.close()
        return self.codec.send(RemoteError(reason=reason))

    def close(self) -> None:
        """We are done: nothing more is sent, and nothing more is delivered."""
        state = self.state
        if state is OPEN:
            self.state = CLOSING
        elif state is PEER_CLOSED or state is BROKEN:
            self.state = CLOSED


def peer_error(reason: str, *, peer: str = "server") -> TrustwireError:
    """What the peer's last words mean, as the error to raise.

    ``access denied: ...`` and ``access revoked: ...`` are refusals of our identity
    (:class:`AccessDenied`); anything else ends the connection (ConnectionBroken).
    """
    if reason.startswith(DENIED_PREFIX):
        return AccessDenied(policy_denied(peer, reason[len(DENIED_PREFIX):]), reason=reason)
    if reason.startswith(REVOKED_PREFIX):
        why = reason[len(REVOKED_PREFIX):]
        return AccessDenied(Diagnosis(
            reason="access-revoked", side=peer, what="this session", why=why,
            fix=f"reconnect with an identity the {peer} still admits"), reason=reason)
    return ConnectionBroken(f"the {peer} closed the connection: {reason}")


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    UNDECIDED = "undecided"


def tls13_verdict(*, ticket: bool, messages: bool, refused: bool, ended: bool) -> Verdict:
    """Did a TLS 1.3 server accept our certificate, from what arrived after our handshake?

    Args:
        ticket: a session ticket arrived (servers send one only to clients they accept).
        messages: application data arrived (the same).
        refused: an alert or a refusal (error frame) arrived.
        ended: the server closed without a word.
    """
    if refused:
        return Verdict.REFUSED
    if ticket or messages:
        return Verdict.ACCEPTED
    if ended:
        return Verdict.REFUSED
    return Verdict.UNDECIDED


VERDICT_FLOOR = 0.05
"""Seconds a client waits at least for the verdict: a refusal is the server's answer
to our Finished, one round trip, which on loopback or a LAN takes well under this."""
VERDICT_FACTOR = 4.0
"""... and at most this many handshake durations (a handshake is 1-2 round trips)."""
VERDICT_CAP = 1.0
"""... and never longer than this: a server that sends no ticket gives no verdict, and a
late refusal still surfaces on the first read (as a HandshakeError)."""


def verdict_wait(handshake_seconds: float, timeout: float) -> float:
    """How long to wait for a TLS 1.3 server's verdict after a handshake that took
    ``handshake_seconds``, within the caller's ``timeout``."""
    return min(timeout, VERDICT_CAP, max(VERDICT_FLOOR, VERDICT_FACTOR * handshake_seconds))

