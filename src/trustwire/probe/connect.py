"""The one way the probe opens a connection to its target, before any TLS.

Every handshake (:mod:`trustwire.probe.attempt`) and every hand-built exchange goes
through :func:`open_connection`, so whatever must happen before the ClientHello (a
STARTTLS dialogue, say) happens in one place for all of them.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from trustwire.probe.target import ProbeTarget

__all__ = ["ConnectFailed", "open_connection", "sni_for"]


@dataclass
class ConnectFailed(Exception):
    """The target could not be reached (or would not start TLS): ``reason`` says why."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def open_connection(target: ProbeTarget, timeout: float) -> socket.socket:
    """A TCP connection to ``target`` that is ready for a ClientHello.

    Raises:
        ConnectFailed: with one sentence saying why.
    """
    try:
        return socket.create_connection((target.host, target.port), timeout=timeout)
    except socket.gaierror as exc:
        raise ConnectFailed(f"cannot resolve {target.host}: {exc.strerror}") from None
    except OSError as exc:
        raise ConnectFailed(exc.strerror or str(exc)) from None


def sni_for(target: ProbeTarget) -> str | None:
    """The SNI to send: the server name, unless it is an IP address (RFC 6066 forbids those)."""
    name = target.server_name
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return name
    return None
