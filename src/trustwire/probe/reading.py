"""One bounded read of an HTTP answer, shared by the HTTP check and the mTLS request.

Everything is read under one deadline and a byte cap: a server that dribbles its answer a
byte at a time costs one timeout, not one per byte (what a per-read socket timeout gives).
"""

from __future__ import annotations

import socket
import time
from typing import Literal

from trustwire.probe.http_answer import response_complete

__all__ = ["MAX_ANSWER", "Ending", "read_response"]

MAX_ANSWER = 65536
"""Most bytes read of an answer: the headers the probe judges fit many times over."""

Ending = Literal["closed", "full", "timeout"]
"""Why reading stopped: the server closed, the answer was complete or the cap reached, or
the deadline passed."""


def read_response(sock: socket.socket, deadline: float) -> tuple[bytes, Ending]:
    """Read from ``sock`` until the HTTP answer is complete, the server closes, it reaches
    :data:`MAX_ANSWER` bytes or ``deadline`` (``time.monotonic()``) passes.

    Raises:
        OSError: the connection failed (``ssl.SSLError`` over TLS).
    """
    data = b""
    while not response_complete(data) and len(data) < MAX_ANSWER:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(MAX_ANSWER - len(data))
        except TimeoutError:
            return data, "timeout"
        if not chunk:
            return data, "closed"
        data += chunk
    return data, "full"
