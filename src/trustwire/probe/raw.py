"""Hand-built exchanges over a plain socket: send records, read what the server answers.

The IO half of :mod:`trustwire.probe.hello`. A :class:`RawConnection` is opened with
:func:`trustwire.probe.connect.open_connection` (so STARTTLS and the like apply), and every
read is bounded by a deadline: a server that says nothing costs one timeout, never more.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from types import TracebackType

from trustwire.probe.connect import open_connection
from trustwire.probe.hello import ServerFlight
from trustwire.probe.target import ProbeTarget

__all__ = ["RawConnection", "exchange_hello"]


class RawConnection:
    """One TCP connection that speaks hand-built TLS records.

    Raises :class:`~trustwire.probe.connect.ConnectFailed` when it cannot open.
    """

    def __init__(self, target: ProbeTarget, timeout: float) -> None:
        self.timeout = timeout
        self.sock: socket.socket = open_connection(target, timeout)
        self.flight = ServerFlight()
        self.closed = False
        """The server closed (or reset) the connection."""
        self.reset = False
        """It was a reset (or another socket error), not an orderly close."""
        self.timed_out = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """False when the server has already gone."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            return False
        return True

    def read_until(self, done: Callable[[ServerFlight], bool], timeout: float | None = None) -> ServerFlight:
        """Read into :attr:`flight` until ``done(flight)``, a close, or the deadline."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.closed and not done(self.flight) and self.flight.malformed is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                self.timed_out = True
                break
            except OSError:
                self.closed = self.reset = True
                break
            if not data:
                self.closed = True
                break
            self.flight.feed(data)
        return self.flight

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def exchange_hello(target: ProbeTarget, hello: bytes, timeout: float) -> RawConnection:
    """Send ``hello``, read the server's first flight; the connection is returned closed.

    Raises :class:`~trustwire.probe.connect.ConnectFailed`.
    """
    with RawConnection(target, timeout) as conn:
        if conn.send(hello):
            conn.read_until(lambda flight: flight.hello_done)
    return conn
