"""The straightforward stdlib-asyncio mTLS upper-case service a user would write.

Kept as the benchmark's reference point: asyncio streams, ``ssl=`` on
``start_server``, ``readexactly`` for the 4-byte length and the payload.

Usage: python bench/reference_server.py PORT CERT KEY CA [WORKERS]
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import sys


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            header = await reader.readexactly(4)
            body = await reader.readexactly(int.from_bytes(header, "big"))
            writer.write(header + body.upper())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve(sock: socket.socket, context: ssl.SSLContext) -> None:
    server = await asyncio.start_server(handle, sock=sock, ssl=context, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    port, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    children = []
    for _ in range(workers - 1):  # the shared listening socket spreads connections over forks
        pid = os.fork()
        if pid == 0:
            asyncio.run(serve(sock, context))
            os._exit(0)
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(c, signal.SIGTERM) for c in children]
                  or sys.exit(0))
    print("ready", flush=True)
    asyncio.run(serve(sock, context))


if __name__ == "__main__":
    main()
