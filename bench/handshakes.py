"""CPU per mTLS handshake (full or resumed) through trustwire's real server, without the kernel.

The server side is the real thing: ``Server.make_protocol()`` (its session, the
admission gate inside OpenSSL's verification and ticket callbacks, the audit-free
listener); the client is Python's ``ssl`` over memory BIOs. Bytes are handed across
in memory, so what is measured is OpenSSL's handshake work plus trustwire's Python
per handshake, both ends in one process. ``full`` runs a new handshake each time;
``resumed`` offers the TLS 1.3 ticket of a first connection every time.

Rates on the shared machine are noisy; instruction counts are not. ``--callgrind``
runs this script twice under valgrind (20 and 120 handshakes) and prints the
difference per handshake, the figure docs/performance.md compares before and after:

    python bench/handshakes.py full 2000
    python bench/handshakes.py resumed 2000 --callgrind
"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import sys
import tempfile
import time

from memio import StubTransport, identities  # bench/ is on sys.path when a script there runs

from trustwire.net.transport import TLSTransport
from trustwire.server.server import Server
from trustwire.services.upper import upper
from trustwire.tls.context import ClientTLS, ServerTLS


class ToClient(StubTransport):
    """The server's transport: what it writes lands in the client's incoming BIO."""

    def __init__(self, incoming: ssl.MemoryBIO) -> None:
        self.incoming = incoming

    def write(self, data: bytes) -> None:
        self.incoming.write(data)



def _feed(server: TLSTransport, data: bytes) -> None:
    view = server.get_buffer(len(data))
    view[:len(data)] = data
    server.buffer_updated(len(data))


def handshake(listener: Server, client_ctx: ssl.SSLContext,
              session: ssl.SSLSession | None) -> ssl.SSLObject:
    """One connection: handshake, one framed request and its answer (so the TLS 1.3
    ticket arrives), then a close."""
    server = listener.make_protocol()
    assert isinstance(server, TLSTransport)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(incoming, outgoing, server_hostname="localhost",
                                 session=session)
    server.connection_made(ToClient(incoming))  # type: ignore[arg-type]
    for _ in range(10):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            _feed(server, outgoing.read())
    else:
        raise SystemExit("the in-memory handshake did not finish")
    client.write(b"\x00\x00\x00\x02hi")
    _feed(server, outgoing.read())
    answer = client.read(64)
    if answer != b"\x00\x00\x00\x02HI":
        raise SystemExit(f"unexpected answer {answer!r}")
    server.connection_lost(None)
    return client


def run(shape: str, count: int) -> float:
    with identities("handshakes CA") as home:
        listener = Server(upper, tls=ServerTLS.from_identity(home, "server"))
        client_ctx = ClientTLS.from_identity(home, "client").context()
    loop = asyncio.new_event_loop()  # timers are scheduled on it; it never runs
    asyncio.set_event_loop(loop)
    session = handshake(listener, client_ctx, None).session if shape == "resumed" else None
    start = time.process_time()
    for _ in range(count):
        client = handshake(listener, client_ctx, session)
        if shape == "resumed" and not client.session_reused:
            raise SystemExit("the ticket was not honoured")
    elapsed = time.process_time() - start
    if listener.stats.handshakes_ok != count + (shape == "resumed"):
        raise SystemExit(f"{listener.stats.handshakes_ok} handshakes admitted, not {count}")
    return elapsed


def callgrind(shape: str) -> None:
    counts = []
    for n in (20, 120):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
                 sys.executable, __file__, shape, str(n)],
                capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise SystemExit(f"no instruction count from valgrind: {out.stderr[-400:]}")
        counts.append(int(found.group(1)))
    per = (counts[1] - counts[0]) / 100
    print(f"{per / 1e6:.2f} M instructions per {shape} mTLS handshake (both ends, callgrind, "
          "120 minus 20 handshakes)")


def main() -> None:
    shape = sys.argv[1] if len(sys.argv) > 1 else "full"
    count = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 1000
    if shape not in ("full", "resumed"):
        raise SystemExit("the shape is full or resumed")
    if "--callgrind" in sys.argv:
        callgrind(shape)
        return
    elapsed = run(shape, count)
    print(f"{elapsed / count * 1e6:.0f} us CPU per {shape} mTLS handshake (both ends, no "
          f"kernel), {count} handshakes")


if __name__ == "__main__":
    main()
