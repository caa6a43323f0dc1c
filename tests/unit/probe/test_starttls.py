"""The sans-IO STARTTLS dialogues: scripted servers, any fragmentation, refusals, garbage."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from tests.unit.probe.test_checks import NOW, good
from trustwire.errors import ConfigError
from trustwire.probe.checks import evaluate, verdict
from trustwire.probe.profiles import PROFILES
from trustwire.probe.report import render_human, to_json
from trustwire.probe.starttls import (
    MAX_DIALOGUE,
    PROTOCOLS,
    Failed,
    Negotiation,
    Send,
    StartTLS,
    Step,
    negotiation,
)
from trustwire.probe.starttls_binary import (
    LDAP_STARTTLS_OID,
    ldap_starttls_request,
    mysql_ssl_request,
    postgres_ssl_request,
)
from trustwire.probe.target import ProbeTarget
from trustwire.wire.events import NeedData

Splitter = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def drive(dialogue: Negotiation, replies: list[bytes], split: Splitter = whole,
          ) -> tuple[list[bytes], Step]:
    """Play a server that sends ``replies`` in order, each once the dialogue waits for data,
    in the pieces ``split`` cuts; then closes. Returns what the client sent and how it ended."""
    sent: list[bytes] = []
    pending = [split(reply) for reply in replies]
    current: list[bytes] = []
    for _ in range(10_000):
        step = dialogue.next_step()
        if isinstance(step, Send):
            sent.append(step.data)
            continue
        if not isinstance(step, NeedData):
            return sent, step
        if not current and pending:
            current = list(pending.pop(0))
        dialogue.receive_data(current.pop(0) if current else b"")
    raise AssertionError("the dialogue did not end")


@st.composite
def splitters(draw: st.DrawFn) -> Splitter:
    cuts = draw(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))

    def split(data: bytes) -> list[bytes]:
        pieces, at, i = [], 0, 0
        while at < len(data):
            size = cuts[i % len(cuts)]
            pieces.append(data[at:at + size])
            at, i = at + size, i + 1
        return pieces or [data]

    return split


def mysql_handshake(capabilities: int, version: bytes = b"8.0.36", sequence: int = 0) -> bytes:
    payload = (b"\x0a" + version + b"\0" + struct.pack("<I", 7) + b"a" * 8 + b"\0"
               + struct.pack("<H", capabilities & 0xFFFF) + b"\xff" + struct.pack("<H", 2)
               + struct.pack("<H", capabilities >> 16) + b"\x15" + b"\0" * 10 + b"b" * 12 + b"\0"
               + b"mysql_native_password\0")
    return len(payload).to_bytes(3, "little") + bytes([sequence]) + payload


def ldap_response(code: int, diagnostic: bytes = b"", message_id: int = 1, long_form: bool = False,
                  ) -> bytes:
    def tlv(tag: int, value: bytes) -> bytes:
        if long_form:  # X.690 allows a long-form length for any size; AD sends them
            return bytes([tag, 0x84]) + len(value).to_bytes(4, "big") + value
        return bytes([tag, len(value)]) + value

    op = tlv(0x0A, bytes([code])) + tlv(0x04, b"") + tlv(0x04, diagnostic)
    return tlv(0x30, tlv(0x02, bytes([message_id])) + tlv(0x78, op))


SMTP_OK = [b"220-mail.example ESMTP\r\n220 ready\r\n",
           b"250-mail.example hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
           b"220 2.0.0 go ahead\r\n"]
HAPPY: dict[str, tuple[list[bytes], list[bytes], bytes]] = {
    # protocol: (server replies, client sends, bytes sent with StartTLS)
    "smtp": (SMTP_OK, [b"EHLO trustwire.invalid\r\n", b"STARTTLS\r\n"], b""),
    "imap": ([b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
              b"* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK Begin TLS negotiation now\r\n"],
             [b"a1 STARTTLS\r\n"], b""),
    "pop3": ([b"+OK POP3 ready\r\n", b"+OK Begin TLS\r\n"], [b"STLS\r\n"], b""),
    "ftp": ([b"120 wait a moment\r\n", b"220-Welcome\r\nfree text\r\n220 FTP ready\r\n",
             b"234 AUTH TLS OK.\r\n"], [b"AUTH TLS\r\n"], b""),
    "ldap": ([ldap_response(0)], [ldap_starttls_request()], b""),
    "postgres": ([b"S"], [postgres_ssl_request()], b""),
    "mysql": ([mysql_handshake(0xFFFF | 0x80000, sequence=0)], [], mysql_ssl_request(1)),
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@given(split=splitters())
def test_happy_dialogue_starts_tls_however_the_bytes_arrive(protocol: str, split: Splitter) -> None:
    replies, expected_sends, with_tls = HAPPY[protocol]
    if protocol == "ftp":  # the 120 and the 220 may arrive together
        replies = [replies[0] + replies[1], replies[2]]
    sent, end = drive(negotiation(protocol), replies, split)
    assert sent == expected_sends
    assert end == StartTLS(send=with_tls)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plaintext_after_the_go_ahead_fails(protocol: str) -> None:
    replies, _, _ = HAPPY[protocol]
    _, end = drive(negotiation(protocol), [*replies[:-1], replies[-1] + b"250 injected\r\n"])
    assert isinstance(end, Failed) and "after agreeing to start TLS" in end.reason


@pytest.mark.parametrize("protocol", PROTOCOLS)
@given(replies=st.lists(st.binary(max_size=300), max_size=6), split=splitters())
def test_garbage_never_raises_and_always_ends(protocol: str, replies: list[bytes],
                                              split: Splitter) -> None:
    _, end = drive(negotiation(protocol), replies, split)
    assert isinstance(end, StartTLS | Failed)
    if isinstance(end, Failed):
        assert end.reason and end.hint and "\n" not in end.reason


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_close_before_the_reply_names_what_was_missing(protocol: str) -> None:
    replies, _, _ = HAPPY[protocol]
    _, end = drive(negotiation(protocol), replies[:-1])
    assert isinstance(end, Failed) and "closed the connection before" in end.reason


@given(keywords=st.lists(st.sampled_from(["PIPELINING", "SIZE 1000", "8BITMIME", "AUTH PLAIN",
                                          "STARTTLSX", "DSN", "starttls", "STARTTLS"]),
                         max_size=8))
def test_smtp_starts_tls_exactly_when_ehlo_lists_it(keywords: list[str]) -> None:
    lines = ["mail.example", *keywords]
    ehlo = "".join(f"250{'-' if i < len(lines) - 1 else ' '}{text}\r\n"
                   for i, text in enumerate(lines)).encode()
    sent, end = drive(negotiation("smtp"), [SMTP_OK[0], ehlo, b"220 go\r\n"])
    if any(k.upper() == "STARTTLS" for k in keywords):
        assert end == StartTLS() and sent[-1] == b"STARTTLS\r\n"
    else:
        assert isinstance(end, Failed) and end.unsupported
        assert end.reason == "the SMTP server does not offer STARTTLS (EHLO reply lacks it)"
        assert "465" in end.hint


@pytest.mark.parametrize(("protocol", "replies", "words"), [
    ("smtp", [b"554 no service here\r\n"], "turned the session away ('554 no service here')"),
    ("smtp", [SMTP_OK[0], b"502 5.5.2 EHLO not understood\r\n"], "does not offer STARTTLS (it refused EHLO"),
    ("smtp", [*SMTP_OK[:2], b"454 4.7.0 TLS not available\r\n"], "does not offer STARTTLS (it answered '454"),
    ("imap", [b"* OK ready\r\n", b"a1 BAD unknown command\r\n"], "does not offer STARTTLS (it answered 'a1 BAD"),
    ("imap", [b"* PREAUTH welcome\r\n"], "pre-authenticated"),
    ("imap", [b"* BYE go away\r\n"], "turned the session away"),
    ("pop3", [b"+OK ready\r\n", b"-ERR unknown command\r\n"], "does not offer STLS (it answered '-ERR"),
    ("ftp", [b"220 ready\r\n", b"502 Command not implemented\r\n"], "does not offer AUTH TLS (it answered '502"),
    ("ldap", [ldap_response(2, b"unsupported extended operation")],
     "does not offer StartTLS (resultCode 2 protocolError: 'unsupported extended operation')"),
    ("ldap", [ldap_response(52, message_id=0)], "notice of disconnection, resultCode 52 unavailable"),
    ("postgres", [b"N"], "the PostgreSQL server does not offer TLS (it answered N to the SSLRequest)"),
    ("postgres", [b"E\x00\x00\x00\x1aSFATAL\x00Mtoo old here\x00\x00"], "with an error: 'too old here'"),
    ("mysql", [mysql_handshake(0xFFFF & ~0x800, b"5.7.44")],
     "does not offer TLS (the handshake of '5.7.44' lacks the CLIENT_SSL capability)"),
    ("mysql", [b"\x17\x00\x00\x00\xff\x10\x04Too many connections"], "(error 1040: 'Too many connections')"),
    ("ssh", [], ""),
])
def test_refusals_say_what_the_server_did(protocol: str, replies: list[bytes], words: str) -> None:
    if protocol == "ssh":
        with pytest.raises(ValueError, match="use one of smtp, imap"):
            negotiation(protocol)
        return
    _, end = drive(negotiation(protocol), replies)
    assert isinstance(end, Failed), end
    assert words in end.reason


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "ftp"])
def test_another_protocol_is_named_as_such(protocol: str) -> None:
    _, end = drive(negotiation(protocol), [b"SSH-2.0-OpenSSH_9.2\r\n"])
    assert isinstance(end, Failed) and not end.unsupported
    assert end.reason.startswith(f"the server does not speak {protocol.upper()} (it sent 'SSH-2.0")


def test_an_implicit_tls_server_answering_the_sslrequest_is_not_postgres() -> None:
    _, end = drive(negotiation("postgres"), [b"\x15\x03\x01\x00\x02\x02\x32"])
    assert isinstance(end, Failed) and "does not speak PostgreSQL (it sent '15 03 01" in end.reason


def test_a_server_that_never_stops_is_cut_off() -> None:
    dialogue = negotiation("smtp")
    dialogue.receive_data(b"220-" + b"x" * (MAX_DIALOGUE + 10))
    end = dialogue.next_step()
    assert isinstance(end, Failed) and "more than 64 KiB" in end.reason


def test_timeout_and_broken_sentences_name_the_stage() -> None:
    dialogue = negotiation("imap")
    assert dialogue.timed_out(5).reason == "the IMAP server did not send its greeting within 5 seconds"
    assert "993" in dialogue.timed_out(5).hint
    assert negotiation("smtp").timed_out(1).reason.endswith("within 1 second")
    assert dialogue.next_step() == dialogue.timed_out(5)  # the end is final
    broken = negotiation("ldap")
    broken.next_step()
    assert broken.broken("Connection reset by peer").reason == (
        "the connection broke while waiting for the reply to the StartTLS request from the LDAP "
        "server (Connection reset by peer)")


def test_ldap_request_is_the_rfc_4511_encoding() -> None:
    # as openssl s_client -starttls ldap sends it
    assert ldap_starttls_request() == bytes.fromhex("301d02010177188016") + LDAP_STARTTLS_OID


@given(code=st.integers(min_value=0, max_value=127), long_form=st.booleans(), split=splitters())
def test_ldap_result_code_decides_in_any_length_form(code: int, long_form: bool,
                                                     split: Splitter) -> None:
    _, end = drive(negotiation("ldap"), [ldap_response(code, b"why", long_form=long_form)], split)
    if code == 0:
        assert end == StartTLS()
    else:
        assert isinstance(end, Failed) and f"resultCode {code}" in end.reason and "'why'" in end.reason


@given(capabilities=st.integers(min_value=0, max_value=0xFFFFFFFF),
       version=st.binary(max_size=40).filter(lambda b: b"\0" not in b),
       sequence=st.integers(min_value=0, max_value=255))
def test_mysql_starts_tls_exactly_when_client_ssl_is_offered(capabilities: int, version: bytes,
                                                              sequence: int) -> None:
    _, end = drive(negotiation("mysql"), [mysql_handshake(capabilities, version, sequence)])
    if capabilities & 0x800:
        assert isinstance(end, StartTLS)
        header, payload = end.send[:4], end.send[4:]
        assert header == b"\x20\x00\x00" + bytes([(sequence + 1) & 0xFF]) and len(payload) == 32
        flags = struct.unpack_from("<I", payload)[0]
        assert flags & 0x800 and flags & 0x200  # CLIENT_SSL, CLIENT_PROTOCOL_41
        assert payload[9:] == b"\0" * 23
    else:
        assert isinstance(end, Failed) and end.unsupported


def test_postgres_ssl_request_is_eight_bytes() -> None:
    assert postgres_ssl_request() == bytes.fromhex("0000000804d2162f")


def test_target_takes_starttls_only_for_host_port() -> None:
    target = ProbeTarget.parse("mail.example:25", starttls="smtp")
    assert target.starttls == "smtp" and target.server_name == "mail.example" and not target.https
    assert ProbeTarget.parse("[::1]:5432", "db.example", starttls="postgres").server_name == "db.example"
    with pytest.raises(ConfigError, match="not a URL"):
        ProbeTarget.parse("https://mail.example/", starttls="smtp")
    with pytest.raises(ConfigError, match="no STARTTLS dialogue"):
        ProbeTarget.parse("mail.example:25", starttls="xmpp")


def test_reports_name_the_starttls_protocol() -> None:
    obs = good()
    obs.target = dataclasses.replace(obs.target, starttls="smtp")
    checks = evaluate(obs, PROFILES["intermediate"], now=NOW)
    assert to_json(obs, PROFILES["intermediate"], checks, verdict(checks))["target"]["starttls"] == "smtp"
    console = Console(record=True, width=120)
    render_human(console, obs, PROFILES["intermediate"], checks, verdict(checks))
    assert "(server name web.example, STARTTLS smtp," in console.export_text()
    assert to_json(good(), PROFILES["intermediate"], checks, verdict(checks))["target"]["starttls"] is None
