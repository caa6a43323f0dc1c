"""A loopback proxy that passes the first connections to a real server and then goes silent.

What a server that stops answering mid-probe looks like (a rate limiter, a crashed worker
behind a load balancer that still accepts): later connections are accepted and never get
a byte. Everything it holds is closed when the context ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

_POLL = 0.1


def _pump(src: socket.socket, dst: socket.socket, stop: threading.Event) -> None:
    src.settimeout(_POLL)
    while not stop.is_set():
        try:
            data = src.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        try:
            dst.sendall(data)
        except OSError:
            break
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def tarpit_after(upstream: int, served: int) -> Iterator[int]:
    """Listen on a free loopback port (yielded): the first ``served`` connections are proxied
    to 127.0.0.1:``upstream``, every later one is held open in silence."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(_POLL)
    stop = threading.Event()
    held: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def accept() -> None:
        count = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            count += 1
            if count > served:
                continue  # accepted, never answered
            up = socket.create_connection(("127.0.0.1", upstream), timeout=5)
            held.append(up)
            for src, dst in ((conn, up), (up, conn)):
                pump = threading.Thread(target=_pump, args=(src, dst, stop), daemon=True)
                pump.start()
                threads.append(pump)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(timeout=5)
        for thread in threads:
            thread.join(timeout=5)
        for sock in (*held, listener):
            with contextlib.suppress(OSError):
                sock.close()
