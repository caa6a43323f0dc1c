"""CPU per 64-byte round trip in trustwire's own TLS code, without the kernel.

Two TLSTransport objects (client and server, real OpenSSL, real certificates) are
joined by in-memory transports that hand each write straight to the other side's
``get_buffer``/``buffer_updated``, exactly as uvloop would. What remains is
OpenSSL's record work plus trustwire's Python per message: the part of a round
trip trustwire controls. CPU time in one process is far steadier than rates
through the shared machine's kernel, so this is how hot-path changes are judged.

``echo`` pairs the client with a bare echo app (the TLS layer alone); ``serve`` puts
trustwire's real server connection behind it (framing, the upper service, stats).

Usage: python bench/hotpath.py [echo|serve] [ROUND_TRIPS] [SIZE]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from memio import StubTransport, identities  # bench/ is on sys.path when a script there runs

from trustwire.net.transport import TLSTransport
from trustwire.server.server import Server
from trustwire.services.upper import upper
from trustwire.tls.context import ClientTLS, ServerTLS


class MemoryTransport(StubTransport):
    """Delivers writes synchronously to the peer protocol (uvloop-like buffered reads)."""

    def __init__(self) -> None:
        self.peer: TLSTransport | None = None

    def write(self, data: bytes) -> None:
        assert self.peer is not None
        view = self.peer.get_buffer(len(data))
        view[:len(data)] = data
        self.peer.buffer_updated(len(data))



class Echo:
    """Server app: sends every message back."""

    def __init__(self) -> None:
        self.tls: TLSTransport | None = None

    def tls_connected(self, tls: TLSTransport) -> None:
        self.tls = tls

    def tls_established(self, tls: TLSTransport) -> None:
        self.tls = tls

    def tls_data(self, data: memoryview) -> None:
        assert self.tls is not None
        self.tls.write(bytes(data))

    def tls_eof(self, clean: bool) -> None: ...
    def tls_failed(self, exc: BaseException, diagnosis: Any, after_handshake: bool) -> None:
        raise SystemExit(f"handshake failed: {diagnosis}")
    def tls_closed(self, exc: BaseException | None) -> None: ...
    def tls_pause_writing(self) -> None: ...
    def tls_resume_writing(self) -> None: ...


class Counter(Echo):
    """Client app: counts replies."""

    def __init__(self) -> None:
        super().__init__()
        self.replies = 0

    def tls_data(self, data: memoryview) -> None:
        self.replies += 1


def main() -> None:
    shape = sys.argv[1] if len(sys.argv) > 1 else "echo"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    if shape not in ("echo", "serve"):
        raise SystemExit("the shape is echo or serve")
    with identities("hotpath CA") as home:
        server_ctx = ServerTLS.from_identity(home, "server").context()
        client_ctx = ClientTLS.from_identity(home, "client").context()
    loop = asyncio.new_event_loop()  # resume_reading schedules on the running loop; unused here
    asyncio.set_event_loop(loop)
    counter = Counter()
    if shape == "serve":
        server = Server(upper, tls=server_ctx).make_protocol()
        message = len(b"x" * size).to_bytes(4, "big") + b"x" * size
    else:
        server = TLSTransport(server_ctx, Echo(), server_side=True)
        message = b"x" * size
    assert isinstance(server, TLSTransport)
    client = TLSTransport(client_ctx, counter, server_side=False, server_hostname="localhost")
    to_server, to_client = MemoryTransport(), MemoryTransport()
    to_server.peer, to_client.peer = server, client
    server.connection_made(to_client)  # type: ignore[arg-type]
    client.connection_made(to_server)  # type: ignore[arg-type]
    if client.state.value != "open" or server.state.value != "open":
        raise SystemExit("the in-memory handshake did not finish")
    for _ in range(1000):
        client.write(message)
    start = time.process_time()
    for _ in range(count):
        client.write(message)
    elapsed = time.process_time() - start
    assert counter.replies == count + 1000, counter.replies
    print(f"{elapsed / count * 1e6:.2f} us CPU per {size}-byte round trip "
          f"(both ends, no kernel, {shape}), {count} round trips")


if __name__ == "__main__":
    main()
