"""Pick the tunnel's read size by measurement: bulk MiB/s through a tunnel server.

A strict TLS sender (stdlib ssl, 1 MiB writes) pushes data through an in-process
TunnelServer to a sink that discards it; the same run tries each read size.
Usage: python bench/read_size.py [--mib N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.server import run
from trustwire.tls import protocol
from trustwire.tls.context import ClientTLS, ServerTLS
from trustwire.tunnel.proxy import Target, TunnelServer


def sink() -> int:
    server = socket.create_server(("127.0.0.1", 0))

    def drain(conn: socket.socket) -> None:
        buf = bytearray(1 << 20)
        try:
            while conn.recv_into(buf):
                pass
        except OSError:
            pass  # the sender ends without close_notify, so the tunnel resets us: expected

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def measure(home: Home, read_size: int, mib: int) -> float:
    protocol.READ_SIZE = read_size
    protocol.BIO_CHUNK = min(read_size, 64 * 1024)
    protocol._buffers = protocol._Buffers()
    target = sink()
    ready = threading.Event()
    box: list[object] = []

    async def main() -> None:
        tunnel = TunnelServer(target=Target(host="127.0.0.1", port=target),
                              tls=ServerTLS.from_identity(home, "server"))
        (_, port), *_ = await tunnel.start("127.0.0.1", 0)
        box.append(port)
        box.append(asyncio.get_running_loop())
        ready.set()
        while len(box) < 3:
            await asyncio.sleep(0.05)
        await tunnel.close(grace=1)

    thread = threading.Thread(target=lambda: run(main), daemon=True)
    thread.start()
    ready.wait(10)
    ctx = ClientTLS.from_identity(home, "client").context()
    chunk = os.urandom(1 << 20)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", box[0])),  # type: ignore[arg-type]
                         server_hostname="localhost") as s:
        start = time.perf_counter()
        for _ in range(mib):
            s.sendall(chunk)
        elapsed = time.perf_counter() - start
    box.append(True)
    thread.join(10)
    return mib / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "h")
        home.init_ca(name="bench")
        home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
        home.issue("client", kind=CertKind.CLIENT)
        results: dict[int, list[float]] = {}
        for _round in range(3):
            for size in (16 * 1024, 64 * 1024, 256 * 1024):
                results.setdefault(size, []).append(measure(home, size, args.mib))
        for size, values in results.items():
            values.sort()
            print(f"read size {size // 1024:>3} KiB: median {values[1]:7.0f} MiB/s "
                  f"(min {values[0]:.0f}, max {values[2]:.0f})")


if __name__ == "__main__":
    main()
