"""The shared half of the STARTTLS dialogues: the steps, and the :class:`Negotiation` base.

Pure, sans-IO; :mod:`trustwire.probe.starttls` explains the steps and picks a dialogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

from trustwire.wire.events import NEED_DATA, NeedData

__all__ = ["GREETING", "MAX_DIALOGUE", "Failed", "LineNegotiation", "Negotiation", "Send",
           "StartTLS", "Step", "quote"]

MAX_DIALOGUE = 65536
"""Bytes a server may send before TLS starts. Greetings and capability lists are a few
hundred bytes; a server that sends more is not negotiating."""

GREETING = "its greeting"
"""What every server-first dialogue waits for first (:attr:`Negotiation.awaiting`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Send:
    """Write ``data`` to the server, then call :meth:`Negotiation.next_step` again."""

    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class StartTLS:
    """Write ``send`` (when not empty), then begin the TLS handshake on this connection."""

    send: bytes = b""


@dataclass(frozen=True, kw_only=True, slots=True)
class Failed:
    """The server will not start TLS (or does not speak the protocol): no handshake."""

    reason: str
    """One sentence: what the server did."""
    hint: str
    """What to do about it."""
    unsupported: bool = False
    """The server speaks the protocol but does not offer TLS on this port."""


Step = Send | StartTLS | Failed | NeedData

_Final = TypeVar("_Final", StartTLS, Failed)


def quote(text: bytes | str, limit: int = 60) -> str:
    """Server text, safe to print: control characters replaced, cut at ``limit``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    clean = "".join(c if c.isprintable() else "?" for c in text.strip())
    return repr(clean if len(clean) <= limit else clean[:limit] + "...")


class Negotiation:
    """One STARTTLS dialogue, from the TCP connect to the first ClientHello byte.

    Subclasses set :attr:`protocol` and implement :meth:`_advance`, which consumes what it
    can of :attr:`_buffer` and returns the next step.
    """

    protocol: ClassVar[str]
    """As people write it: SMTP, PostgreSQL."""
    implicit_port: ClassVar[int | None] = None
    """The port where the same service speaks TLS from the first byte, if there is one."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._received = 0
        self._eof = False
        self._final: StartTLS | Failed | None = None
        self.awaiting = GREETING
        """The dialogue's state, in words: what it waits for (for "closed before ..." and
        "did not send ... in time")."""

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the server; ``b""`` means it closed the connection."""
        if not data:
            self._eof = True
            return
        self._received += len(data)
        self._buffer += data

    def next_step(self) -> Step:
        """What to do now. After :class:`StartTLS` or :class:`Failed`, that step again."""
        if self._final is not None:
            return self._final
        if self._received > MAX_DIALOGUE:
            return self._end(Failed(
                reason=f"the {self.protocol} server sent more than {MAX_DIALOGUE // 1024} KiB "
                       "without finishing the dialogue",
                hint=self._wrong_protocol_hint()))
        step = self._advance()
        if isinstance(step, StartTLS) and self._buffer:
            return self._end(Failed(
                reason=f"the {self.protocol} server sent {len(self._buffer)} more bytes after "
                       "agreeing to start TLS (plaintext a client must not keep)",
                hint="check for a proxy or middlebox that injects data in front of the server"))
        if isinstance(step, NeedData) and self._eof:
            return self._end(Failed(
                reason=f"the {self.protocol} server closed the connection before {self.awaiting}",
                hint=self._wrong_protocol_hint()))
        if isinstance(step, StartTLS):
            return self._end(step)
        if isinstance(step, Failed):
            return self._end(step)
        return step

    def timed_out(self, seconds: float) -> Failed:
        """The sentence for a server that stays silent for ``seconds``."""
        implicit = (f" (for port {self.implicit_port}: probe it without --starttls)"
                    if self.implicit_port else "")
        return self._end(Failed(
            reason=f"the {self.protocol} server did not send {self.awaiting} within "
                   f"{seconds:g} second{'' if seconds == 1 else 's'}",
            hint=f"is it an implicit-TLS port{implicit}? raise --timeout for slow links"))

    def broken(self, error: str) -> Failed:
        """The sentence for a connection that failed (reset, say) during the dialogue."""
        return self._end(Failed(
            reason=f"the connection broke while waiting for {self.awaiting} from the "
                   f"{self.protocol} server ({error})",
            hint=self._wrong_protocol_hint()))

    def _advance(self) -> Step:
        raise NotImplementedError

    def _end(self, step: _Final) -> _Final:
        self._final = step
        if isinstance(step, StartTLS):
            self.awaiting = "the TLS handshake"
        return step

    def _wrong_protocol_hint(self) -> str:
        return f"check that the port serves {self.protocol}, or pick the right --starttls protocol"

    def _not_this_protocol(self, what: bytes | str) -> Failed:
        return Failed(reason=f"the server does not speak {self.protocol} (it sent {quote(what)} "
                             f"where {self.awaiting} belongs)",
                      hint=self._wrong_protocol_hint())

    def _unsupported(self, detail: str, hint: str | None = None) -> Failed:
        implicit = (f", or probe its implicit-TLS port (usually {self.implicit_port}) without "
                    "--starttls" if self.implicit_port else "")
        return Failed(reason=f"the {self.protocol} server does not offer {detail}",
                      hint=hint or f"enable TLS on the server{implicit}", unsupported=True)

    def _turned_away(self, what: str) -> Failed:
        return Failed(reason=f"the {self.protocol} server turned the session away ({what})",
                      hint="check that the server accepts connections from this address")


class LineNegotiation(Negotiation):
    """A text protocol: CRLF (or LF) terminated lines, handled one at a time."""

    def _advance(self) -> Step:
        while (index := self._buffer.find(b"\n")) >= 0:
            raw = bytes(self._buffer[:index]).rstrip(b"\r")
            del self._buffer[:index + 1]
            step = self._line(raw.decode("utf-8", "replace"))
            if not isinstance(step, NeedData):
                return step
        return NEED_DATA

    def _line(self, line: str) -> Step:
        raise NotImplementedError
