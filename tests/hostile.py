"""Hostile test responders: servers that try to make the probe run forever or eat memory.

:class:`Hostile` is a thread with a listening socket on 127.0.0.1 that hands each connection
to a handler in its own daemon thread. Every handler here is bounded twice over: by the
bytes it may send (``limit``) and by the responder's ``stop`` event, set when the ``with``
block ends, so a probe that does not stop still costs the test seconds, not the machine.

- :func:`message_flood`: after the ClientHello, records full of empty HelloRequest
  messages (OpenSSL skips them inside the handshake without returning to Python);
- :func:`record_flood`: a handshake message that claims 16 MiB, then handshake records
  of filler (a reader that waits for the message to end never stops);
- :func:`slow_http`: TLS (or not), then an HTTP answer whose header never ends, a byte at
  a time (or a flood of header bytes).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["Handler", "Hostile", "answer_http", "message_flood", "record_flood", "slow_http"]

Handler = Callable[[socket.socket, threading.Event], None]
"""Serves one connection; returns when done or when the event is set."""


def _record(content_type: int, body: bytes) -> bytes:
    return struct.pack(">BHH", content_type, 0x0303, len(body)) + body


def _read_hello(conn: socket.socket) -> None:
    conn.settimeout(5)
    with contextlib.suppress(OSError):
        conn.recv(65536)


def _send_until(conn: socket.socket, stop: threading.Event, first: bytes, rest: bytes,
                limit: int) -> None:
    sent = 0
    data = first
    with contextlib.suppress(OSError):
        while sent < limit and not stop.is_set():
            conn.sendall(data)
            sent += len(data)
            data = rest
        stop.wait(30)  # then silence, connection open: only the probe's own deadline ends it


def message_flood(limit: int = 64 << 20) -> Handler:
    """Up to ``limit`` bytes of handshake records, each holding 4096 empty HelloRequests."""
    flood = _record(22, b"\x00\x00\x00\x00" * 4096)

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _read_hello(conn)
        _send_until(conn, stop, flood, flood, limit)
    return handle


def record_flood(limit: int = 64 << 20) -> Handler:
    """A ServerHello header claiming 16 MiB, then up to ``limit`` bytes of filler records."""
    first = _record(22, b"\x02\xff\xff\xff" + b"A" * 16380)
    filler = _record(22, b"B" * 16384)

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _read_hello(conn)
        _send_until(conn, stop, first, filler, limit)
    return handle


def slow_http(context: ssl.SSLContext | None, *, interval: float = 0.2, chunk: bytes = b"a",
              limit: int = 50) -> Handler:
    """TLS with ``context`` (None: plain HTTP), then ``HTTP/1.1 200 OK`` and a header that
    grows by ``chunk`` every ``interval`` seconds and never ends (``limit`` chunks, then
    silence)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(5)
            sock = conn if context is None else context.wrap_socket(conn, server_side=True)
            sock.recv(4096)
            sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(limit):
                if stop.wait(interval):
                    return
                sock.sendall(chunk)
            stop.wait(30)
    return handle


def answer_http(context: ssl.SSLContext | None, answer: bytes) -> Handler:
    """The control: TLS with ``context`` (None: plain HTTP), then ``answer`` at once."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(5)
            sock = conn if context is None else context.wrap_socket(conn, server_side=True)
            sock.recv(4096)
            sock.sendall(answer)
    return handle


class Hostile:
    """``with Hostile(handler) as h:`` serves 127.0.0.1:``h.port`` until the block ends."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Hostile:
        self._accepting.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop.set()
        self._accepting.join(5)
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, self.stop)
        finally:
            conn.close()
