"""Hand-built ClientHellos against a real OpenSSL server: it answers them as it would a real client."""

from __future__ import annotations

import pytest

from tests.conftest import Pki, require_tool
from tests.peers import free_port, openssl_s_server
from trustwire.probe.hello import HelloSpec, client_hello, sslv2_client_hello
from trustwire.probe.raw import exchange_hello
from trustwire.probe.target import ProbeTarget

pytestmark = pytest.mark.interop


def test_openssl_answers_a_hand_built_hello(pki: Pki) -> None:
    server = pki.home.identity("server")
    port = free_port()
    with openssl_s_server(require_tool("openssl"), cert=server.cert, key=server.key, ca=server.ca,
                          port=port, verify=False, extra=["-naccept", "3"]):
        target = ProbeTarget.parse(f"127.0.0.1:{port}", "localhost")
        modern = exchange_hello(target, client_hello(HelloSpec(
            ciphers=(0xC02B, 0xC02F, 0x0005), server_name="localhost")), timeout=5)
        hello = modern.flight.server_hello
        assert hello is not None and hello.version == 0x0303
        assert hello.cipher in (0xC02B, 0xC02F)  # never RC4 (0x0005): OpenSSL 3 has none
        assert 0xFF01 in hello.extensions and 23 in hello.extensions  # secure reneg, EMS
        assert modern.flight.hello_done and not modern.timed_out
        ssl3 = exchange_hello(target, client_hello(HelloSpec(version=0x0300, ciphers=(0x000A, 0x002F))),
                              timeout=5)
        assert ssl3.flight.server_hello is None
        assert ssl3.flight.alert is not None or ssl3.closed  # refused, with an alert or a close
        v2 = exchange_hello(target, sslv2_client_hello((0x010080, 0x0700C0)), timeout=5)
        assert v2.flight.sslv2_hello is None and v2.flight.server_hello is None
