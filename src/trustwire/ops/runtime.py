"""Running a listener the way operators expect: signals, reloads, status, graceful stop.

:func:`run_listener` is what ``trustwire serve``, both ``trustwire tunnel``
modes and a library ``Server.serve()`` run: start listening, then until
SIGTERM or SIGINT (or the task is cancelled):

* SIGHUP, and any watched file changing, runs the one :class:`Reloader`;
* ``/metrics``, ``/healthz`` and ``/status`` are served if asked for;
* on stop, new connections are refused, sessions finish within the grace
  period, and the rest are cut: Ctrl-C drains instead of printing a traceback.

Signals can only be handled on the main thread; elsewhere (a server in a
test's thread) the caller stops the listener itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from trustwire.errors import TrustwireError
from trustwire.net.addresses import format_hostport
from trustwire.net.listener import Listener
from trustwire.ops.endpoint import StatusEndpoint
from trustwire.ops.reload import Reloader, Watcher

__all__ = ["Operations", "listen_error", "raise_fd_limit", "run_listener"]

_log = logging.getLogger("trustwire")


@dataclass(frozen=True, kw_only=True)
class Operations:
    """How a running listener is operated."""

    reload_interval: float = 5.0
    """Seconds between checks of the certificate, key, CA, CRL and policy files
    (0: reload on SIGHUP only)."""
    metrics: tuple[str, int] | None = None
    """Where to serve /metrics, /healthz and /status (None: nowhere)."""
    role: str = "serve"
    """The metrics' role label."""
    handle_signals: bool = True
    """SIGTERM/SIGINT stop gracefully and SIGHUP reloads (main thread only)."""


def listen_error(host: str | None, port: int, exc: OSError) -> TrustwireError:
    """A bind failure in one sentence."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM) and 0 < port < 1024:
        return TrustwireError(
            f"cannot listen on {format_hostport(host or '*', port)}: ports below 1024 need root "
            "or CAP_NET_BIND_SERVICE",
            hint="use a port of 1024 or more, or grant the capability (systemd: "
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE)")
    return TrustwireError(f"cannot listen on {format_hostport(host or '*', port)}: {reason}",
                          hint="pick another port, or stop what is using it")


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit (as nginx's
    worker_rlimit_nofile does): with the common default of 1024, a few hundred
    idle sockets would stop the listener accepting anyone. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


async def run_listener(
    listener: Listener, host: str | None, port: int, *, operations: Operations,
    reloader: Reloader | None = None, sock: socket.socket | None = None,
    announce: Callable[[list[tuple[str, int]]], None] | None = None,
    say: Callable[[str], None] | None = None, metrics_port_offset: int = 0,
) -> None:
    """Serve ``listener`` until SIGTERM/SIGINT or cancellation, then close it gracefully.

    Raises:
        TrustwireError: the address (or the metrics address) cannot be bound.
    """
    raise_fd_limit()
    listener.say = say or _log.warning  # a library server's notices go to logging
    try:
        addresses = await listener.start(host, port, sock=sock)
    except OSError as exc:
        raise listen_error(host, port, exc) from exc
    endpoint = None
    try:
        if operations.metrics is not None:
            endpoint = StatusEndpoint(listener, operations.role)
            metrics_host, metrics_port = operations.metrics
            try:
                at = await endpoint.start(metrics_host, metrics_port + metrics_port_offset)
            except OSError as exc:
                raise listen_error(metrics_host, metrics_port + metrics_port_offset, exc) from exc
            if say is not None:
                say(f"metrics and status on http://{at[0]}:{at[1]}/")
        if not listener.inside_handshake:
            listener.say("warning: this Python's ssl module cannot take OpenSSL callbacks, so "
                         "refusals come right after the handshake instead of as TLS alerts")
        for notice in listener.material.notices:
            listener.say(f"warning: {notice}")
        watcher = None
        if reloader is not None and operations.reload_interval > 0:
            watcher = Watcher(reloader, operations.reload_interval)
            watcher.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        if operations.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            if reloader is not None:
                def on_hangup() -> None:
                    (watcher or reloader).reload("SIGHUP")

                loop.add_signal_handler(signal.SIGHUP, on_hangup)
                handled.append(signal.SIGHUP)
        if announce is not None:  # only now: a SIGTERM right after it must drain, not kill
            announce(addresses)
        try:
            await stop.wait()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            if watcher is not None:
                watcher.stop()
    finally:
        if endpoint is not None:
            endpoint.close()
        await listener.close()
        if listener.observer is not None:
            listener.observer.close()
