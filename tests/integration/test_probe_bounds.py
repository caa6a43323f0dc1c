"""The probe against servers that try to keep it busy forever: every attempt ends on its
deadline or its size limit, and the memory it takes stays small."""

from __future__ import annotations

import datetime as dt
import ssl
import time
from typing import Any

import pytest

from tests.conftest import Pki
from tests.hostile import Hostile, answer_http, message_flood, record_flood, slow_http
from trustwire.probe import messages
from trustwire.probe.attempt import OVERFLOWED, Runner, attempt, client_context
from trustwire.probe.hello import FLIGHT_BYTES, HelloSpec, client_hello
from trustwire.probe.http import MAX_ANSWER, check_http
from trustwire.probe.messages import LOG_MESSAGES
from trustwire.probe.observations import Observations
from trustwire.probe.raw import exchange_hello
from trustwire.probe.target import ProbeOptions, ProbeTarget


def _target(port: int) -> ProbeTarget:
    return ProbeTarget.parse(f"127.0.0.1:{port}")


def test_a_stream_of_hello_requests_fills_the_log_and_ends_the_handshake() -> None:
    # 8 MiB of HelloRequests: without the limit, OpenSSL swallows them all (about 7 s and
    # 2 million log entries) and only then the timeout fires.
    with Hostile(message_flood(8 << 20)) as server:
        started = time.monotonic()
        result = attempt(_target(server.port), client_context(), timeout=3)
        took = time.monotonic() - started
    assert took < 1.5
    assert result.log.overflowed and len(result.log.received) == LOG_MESSAGES
    assert result.error == OVERFLOWED and not result.timed_out and not result.completed


def test_the_deadline_ends_a_handshake_openssl_never_returns_from(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A log big enough to take the whole flood: only the deadline, checked from inside
    # OpenSSL's message callback, can stop it (the socket timeout never fires: data keeps
    # coming).
    monkeypatch.setattr(messages, "LOG_MESSAGES", 1 << 30)
    monkeypatch.setattr(messages, "LOG_BYTES", 1 << 40)
    with Hostile(message_flood(16 << 20)) as server:
        started = time.monotonic()
        result = attempt(_target(server.port), client_context(), timeout=0.5)
        took = time.monotonic() - started
    assert took < 2
    assert result.timed_out and result.error == "timeout" and not result.log.overflowed


@pytest.mark.parametrize("flood", [record_flood, message_flood])
def test_a_hand_built_exchange_stops_at_the_flight_limit(flood: object) -> None:
    hello = client_hello(HelloSpec(ciphers=(0xC02F,)))
    with Hostile(flood(64 << 20)) as server:  # type: ignore[operator]
        started = time.monotonic()
        conn = exchange_hello(_target(server.port), hello, timeout=5)
        took = time.monotonic() - started
    assert took < 2.5 and not conn.timed_out
    assert conn.flight.malformed is not None and conn.flight.malformed.startswith("more than")
    assert conn.flight.received <= FLIGHT_BYTES + 65536  # one read past the limit at most


def _server_context(pki: Pki) -> ssl.SSLContext:
    server = pki.home.identity("server")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server.cert, server.key)
    return ctx


def _check_http(pki: Pki, port: int, **options: Any) -> tuple[Observations, float]:
    target = ProbeTarget.parse(f"https://127.0.0.1:{port}/", "localhost")
    runner = Runner(target, ProbeOptions(ca=pki.home.ca_cert_path, **options), None)
    obs = Observations(target=target, started=dt.datetime.now(dt.UTC))
    started = time.monotonic()
    try:
        check_http(runner, obs)
    finally:
        runner.close()
    return obs, time.monotonic() - started


def test_an_https_answer_that_never_ends_costs_one_timeout(pki: Pki) -> None:
    # A header byte every 0.2 s: with a per-read timeout (http.client's) this ran for as
    # long as the server kept sending (here 10 s; the reviewer's ran past 200 s).
    with Hostile(slow_http(_server_context(pki))) as server:
        obs, took = _check_http(pki, server.port, timeout=1)
    assert took < 2.5
    assert obs.http_status is None
    assert obs.http_error == "the server's HTTP answer did not end within the timeout"


def test_endless_https_headers_stop_at_64_kib(pki: Pki) -> None:
    with Hostile(slow_http(_server_context(pki), interval=0.001, chunk=b"a" * 4096,
                           limit=100)) as server:
        obs, took = _check_http(pki, server.port, timeout=5)
    assert took < 2.5
    assert obs.http_status is None
    assert obs.http_error == f"the server's HTTP headers are longer than {MAX_ANSWER // 1024} KiB"


def test_a_slow_plain_http_answer_costs_one_timeout_and_a_quick_one_is_read(pki: Pki) -> None:
    page = b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=63072000\r\n" \
           b"Content-Length: 2\r\n\r\nok"
    moved = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://localhost/\r\n" \
            b"Content-Length: 0\r\n\r\n"
    with (Hostile(answer_http(_server_context(pki), page)) as https,
          Hostile(slow_http(None)) as slow, Hostile(answer_http(None, moved)) as quick):
        obs, took = _check_http(pki, https.port, timeout=1, check_redirect=True,
                                http_port=slow.port)
        assert took < 2.5
        assert obs.http_status == 200 and obs.http_verified is True
        assert obs.http_headers["strict-transport-security"] == "max-age=63072000"
        assert obs.redirect == (None, f"http://127.0.0.1:{slow.port}: the server's HTTP "
                                      "answer did not end within the timeout")
        obs, _ = _check_http(pki, https.port, timeout=1, check_redirect=True,
                             http_port=quick.port)
        assert obs.redirect == (301, "https://localhost/")
