"""The one way the probe opens a connection to its target, before any TLS.

Every handshake (:mod:`trustwire.probe.attempt`) and every hand-built exchange goes
through :func:`open_connection`, so whatever must happen before the ClientHello (a
STARTTLS dialogue, say) happens in one place for all of them.

The STARTTLS dialogue is :mod:`trustwire.probe.starttls`'s; :func:`_negotiate` is its
thin IO adapter. One deadline (the probe's timeout) bounds the whole dialogue, and every
write is a whole command, so the dialogue costs its round trips and nothing more.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from trustwire.probe.starttls import Failed, Send, StartTLS, negotiation
from trustwire.probe.target import ProbeTarget

__all__ = ["ConnectFailed", "StarttlsFailed", "open_connection", "sni_for"]


@dataclass
class ConnectFailed(Exception):
    """The target could not be reached (or would not start TLS): ``reason`` says why."""

    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass
class StarttlsFailed(ConnectFailed):
    """The TCP connection opened but the STARTTLS dialogue did not end in TLS."""

    hint: str
    unsupported: bool = False
    """The server speaks the protocol but does not offer TLS."""


def open_connection(target: ProbeTarget, timeout: float) -> socket.socket:
    """A TCP connection to ``target`` that is ready for a ClientHello: after the
    STARTTLS dialogue when ``target.starttls`` is set.

    Raises:
        ConnectFailed: with one sentence saying why (:class:`StarttlsFailed` when the
            dialogue failed).
    """
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except socket.gaierror as exc:
        raise ConnectFailed(f"cannot resolve {target.host}: {exc.strerror}") from None
    except OSError as exc:
        raise ConnectFailed(exc.strerror or str(exc)) from None
    if target.starttls is not None:
        try:
            _negotiate(sock, target.starttls, timeout)
        except BaseException:
            sock.close()
            raise
    return sock


def _negotiate(sock: socket.socket, protocol: str, timeout: float) -> None:
    """Run the dialogue on ``sock`` until the server is ready for a ClientHello.

    The loop ends: each :class:`Send` moves the dialogue on, each read waits at most until
    the deadline, and the server may send at most ``MAX_DIALOGUE`` bytes.
    """
    dialogue = negotiation(protocol)
    deadline = time.monotonic() + timeout
    while True:
        step = dialogue.next_step()
        failed: Failed | None = None
        try:
            if isinstance(step, StartTLS):
                sock.sendall(step.send)
                sock.settimeout(timeout)  # the handshake gets the whole timeout, as without STARTTLS
                return
            if isinstance(step, Send):
                sock.sendall(step.data)
                continue
            if isinstance(step, Failed):
                failed = step
            elif (left := deadline - time.monotonic()) <= 0:
                failed = dialogue.timed_out(timeout)
            else:
                sock.settimeout(left)
                dialogue.receive_data(sock.recv(4096))
        except TimeoutError:
            failed = dialogue.timed_out(timeout)
        except OSError as exc:
            failed = dialogue.broken(exc.strerror or str(exc))
        if failed is not None:
            raise StarttlsFailed(failed.reason, hint=failed.hint,
                                 unsupported=failed.unsupported) from None


def sni_for(target: ProbeTarget) -> str | None:
    """The SNI to send: the server name, unless it is an IP address (RFC 6066 forbids those)."""
    name = target.server_name
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return name
    return None
