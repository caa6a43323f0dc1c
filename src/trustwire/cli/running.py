"""Running listeners from the CLI: one process until a signal, or supervised workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import click

from trustwire.errors import TrustwireError
from trustwire.server.listener import Limits, Listener
from trustwire.server.server import run
from trustwire.server.workers import bind_reuseport, supervise

__all__ = ["build_limits", "limit_options", "run_listener"]


def limit_options(func: Any) -> Any:
    """--max-connections, timeouts, --shutdown-grace, --workers, --audit-log."""
    for option in reversed([
        click.option("--max-connections", type=click.IntRange(min=1), default=10_000,
                     show_default=True),
        click.option("--handshake-timeout", type=click.FloatRange(min=0.1), default=10.0,
                     show_default=True, help="Seconds a client has to finish the handshake."),
        click.option("--idle-timeout", type=click.FloatRange(min=0), default=300.0,
                     show_default=True, help="Seconds without traffic before closing (0: never)."),
        click.option("--shutdown-grace", type=click.FloatRange(min=0), default=10.0,
                     show_default=True, help="Seconds connections get to finish on SIGTERM."),
        click.option("--workers", type=click.IntRange(min=1, max=256), default=1,
                     show_default=True,
                     help="Processes sharing the port (SO_REUSEPORT); dead ones are replaced."),
        click.option("--audit-log", metavar="FILE|-",
                     help="Append one JSON line per connection event."),
    ]):
        func = option(func)
    return func


def build_limits(kwargs: dict[str, Any], **extra: Any) -> Limits:
    return Limits(
        max_connections=kwargs.pop("max_connections"),
        handshake_timeout=kwargs.pop("handshake_timeout"),
        idle_timeout=kwargs.pop("idle_timeout"), shutdown_grace=kwargs.pop("shutdown_grace"),
        **extra,
    )


def _listen_error(host: str, port: int, exc: OSError) -> TrustwireError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return TrustwireError(f"cannot listen on {host or '*'}:{port}: {reason}",
                          hint="pick another port, or stop what is using it")


async def _until_signal(make: Callable[[], Listener], host: str, port: int,
                        sock: socket.socket | None,
                        announce: Callable[[list[tuple[str, int]]], None] | None) -> None:
    listener = make()
    try:
        addresses = await listener.start(host, port, sock=sock)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    if announce is not None:
        announce(addresses)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await listener.close()
    if listener.audit is not None:
        listener.audit.close()


def run_listener(make: Callable[[], Listener], host: str, port: int, *, workers: int,
                 grace: float, announce: Callable[[list[tuple[str, int]]], None]) -> None:
    """Serve until SIGTERM/SIGINT, in this process or in ``workers`` supervised ones."""
    make()  # build once up front: certificates, keys, CA, CRL, handlers are checked before binding
    if workers == 1:
        run(_until_signal(make, host, port, None, announce))
        return
    try:
        reserved = bind_reuseport(host, port, listen=False)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    address = reserved.getsockname()[:2]

    def worker(sock: socket.socket) -> int:
        run(_until_signal(make, host, port, sock, None))
        return 0

    supervise(workers, reserved, worker, grace=grace,
              log=lambda text: click.echo(f"trustwire: {text}", err=True),
              ready=lambda: announce([address]))
