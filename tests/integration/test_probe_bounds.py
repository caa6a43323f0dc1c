"""The probe against servers that try to keep it busy forever: every attempt ends on its
deadline or its size limit, and the memory it takes stays small."""

from __future__ import annotations

import time

import pytest

from tests.hostile import Hostile, message_flood, record_flood
from trustwire.probe import messages
from trustwire.probe.attempt import OVERFLOWED, attempt, client_context
from trustwire.probe.hello import FLIGHT_BYTES, HelloSpec, client_hello
from trustwire.probe.messages import LOG_MESSAGES
from trustwire.probe.raw import exchange_hello
from trustwire.probe.target import ProbeTarget


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
