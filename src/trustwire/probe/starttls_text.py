"""The STARTTLS dialogues of the text protocols: SMTP, FTP, IMAP, POP3. Pure, sans-IO."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustwire.probe.starttls_dialogue import (
    GREETING,
    LineNegotiation,
    Send,
    StartTLS,
    Step,
    quote,
)
from trustwire.wire.events import NEED_DATA

__all__ = ["Ftp", "Imap", "Pop3", "Smtp"]


_REPLY = re.compile(r"([0-9]{3})([ -]|$)(.*)")


@dataclass(frozen=True, slots=True)
class _Reply:
    code: int
    lines: tuple[str, ...]
    """The text after the code on each line."""

    def __str__(self) -> str:
        return f"{self.code} {self.lines[-1]}".strip()


class _CodedReplies(LineNegotiation):
    """SMTP (RFC 5321 4.2.1) and FTP (RFC 959 4.2) replies: ``ddd-text`` lines continue,
    a ``ddd text`` line with the first line's code ends the reply. FTP allows free text in
    between; so do we."""

    def __init__(self) -> None:
        super().__init__()
        self._code: str | None = None
        self._lines: list[str] = []

    def _line(self, line: str) -> Step:
        match = _REPLY.match(line)
        if self._code is None:
            if match is None:
                return self._not_this_protocol(line)
            self._code = match[1]
        if match is not None and match[1] == self._code and match[2] != "-":
            reply = _Reply(int(self._code), (*self._lines, match[3]))
            self._code, self._lines = None, []
            return self._reply(reply)
        self._lines.append(match[3] if match is not None and match[1] == self._code else line)
        return NEED_DATA

    def _reply(self, reply: _Reply) -> Step:
        raise NotImplementedError


class Smtp(_CodedReplies):
    """RFC 3207: 220 greeting, EHLO, STARTTLS listed in the 250 reply, STARTTLS, 220."""

    protocol = "SMTP"
    implicit_port = 465

    def __init__(self, client_name: str) -> None:
        super().__init__()
        self._client_name = client_name

    def _reply(self, reply: _Reply) -> Step:
        if self.awaiting == GREETING:
            if reply.code != 220:
                return self._turned_away(quote(str(reply)))
            self.awaiting = "the reply to EHLO"
            return Send(data=f"EHLO {self._client_name}\r\n".encode())
        if self.awaiting == "the reply to EHLO":
            if reply.code != 250:
                return self._unsupported(f"STARTTLS (it refused EHLO: {quote(str(reply))})")
            keywords = {text.split(" ", 1)[0].upper() for text in reply.lines[1:]}
            if "STARTTLS" not in keywords:
                return self._unsupported("STARTTLS (EHLO reply lacks it)",
                                         hint="enable STARTTLS on the server (postfix: "
                                              "smtpd_tls_security_level = may), or probe its "
                                              "implicit-TLS port (usually 465) without --starttls")
            self.awaiting = "the reply to STARTTLS"
            return Send(data=b"STARTTLS\r\n")
        if reply.code != 220:
            return self._unsupported(f"STARTTLS (it answered {quote(str(reply))})")
        return StartTLS()


class Ftp(_CodedReplies):
    """RFC 4217: 220 greeting (after any 120 "wait"), AUTH TLS, 234."""

    protocol = "FTP"
    implicit_port = 990

    def _reply(self, reply: _Reply) -> Step:
        if self.awaiting == GREETING:
            if reply.code == 120:  # RFC 959: "service ready in nnn minutes", a 220 follows
                return NEED_DATA
            if reply.code != 220:
                return self._turned_away(quote(str(reply)))
            self.awaiting = "the reply to AUTH TLS"
            return Send(data=b"AUTH TLS\r\n")
        if reply.code != 234:
            return self._unsupported(f"AUTH TLS (it answered {quote(str(reply))})")
        return StartTLS()


class Imap(LineNegotiation):
    """RFC 3501 6.2.1 / RFC 9051: ``* OK`` greeting, ``a1 STARTTLS``, ``a1 OK``. Untagged
    lines in between (a CAPABILITY, say) are skipped."""

    protocol = "IMAP"
    implicit_port = 993

    def _line(self, line: str) -> Step:
        words = line.split(" ", 2)
        status = words[1].upper() if len(words) > 1 else ""
        if self.awaiting == GREETING:
            if words[0] != "*" or status not in ("OK", "PREAUTH", "BYE"):
                return self._not_this_protocol(line)
            if status == "BYE":
                return self._turned_away(quote(line))
            if status == "PREAUTH":  # STARTTLS is only valid before authentication
                return self._unsupported("STARTTLS (it pre-authenticated the session, after "
                                         "which STARTTLS is not allowed)")
            self.awaiting = "the reply to STARTTLS"
            return Send(data=b"a1 STARTTLS\r\n")
        if words[0] == "*":
            return NEED_DATA
        if words[0] != "a1" or status not in ("OK", "NO", "BAD"):
            return self._not_this_protocol(line)
        if status != "OK":
            return self._unsupported(f"STARTTLS (it answered {quote(line)})")
        return StartTLS()


class Pop3(LineNegotiation):
    """RFC 2595 4: ``+OK`` greeting, ``STLS``, ``+OK``."""

    protocol = "POP3"
    implicit_port = 995

    def _line(self, line: str) -> Step:
        status = line.split(" ", 1)[0].upper()
        if status not in ("+OK", "-ERR"):
            return self._not_this_protocol(line)
        if self.awaiting == GREETING:
            if status != "+OK":
                return self._turned_away(quote(line))
            self.awaiting = "the reply to STLS"
            return Send(data=b"STLS\r\n")
        if status != "+OK":
            return self._unsupported(f"STLS (it answered {quote(line)})")
        return StartTLS()
