"""Running listeners from the CLI: one process or supervised workers, with reloads and metrics.

Everything a listener is built from (certificates, key, CA, CRL, policy file)
goes through :func:`trustwire.tls.reload.build_material`, which validates
before anything is used: at start (a bad file stops the command before it
binds) and on every reload (SIGHUP, or a watched file changing; a bad reload
keeps the old material and says why on stderr, in the audit log and in
``/status``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from trustwire.cli.tls_options import is_loopback, parse_hostport
from trustwire.errors import TrustwireError
from trustwire.observe.endpoint import StatusEndpoint
from trustwire.server.listener import Limits, Listener
from trustwire.server.server import run
from trustwire.server.workers import bind_reuseport, supervise
from trustwire.tls.reload import Material, ReloadError, Watcher

__all__ = ["Ops", "build_limits", "build_ops", "limit_options", "run_listener"]


def limit_options(func: Any) -> Any:
    """Limits, workers, audit log and the operations options."""
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
        click.option("--metrics", metavar="HOST:PORT",
                     help="Serve /metrics (Prometheus), /healthz and /status here (loopback only "
                          "unless --unsafe-metrics-listen; with --workers, PORT, PORT+1, ...)."),
        click.option("--unsafe-metrics-listen", is_flag=True,
                     help="Allow --metrics on a non-loopback address (it lists live identities)."),
        click.option("--reload-interval", type=click.FloatRange(min=0), default=5.0,
                     show_default=True,
                     help="Seconds between checks of the certificate, key, CA, CRL and policy "
                          "files (0: reload on SIGHUP only)."),
        click.option("--keep-revoked-sessions", is_flag=True,
                     help="After a reload, keep established connections whose certificate is "
                          "now revoked or no longer allowed (default: cut them)."),
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


@dataclass(frozen=True)
class Ops:
    """Operations settings from the CLI."""

    workers: int
    audit_log: str | None
    metrics: tuple[str, int] | None
    reload_interval: float
    keep_revoked_sessions: bool


def build_ops(kwargs: dict[str, Any]) -> Ops:
    metrics = kwargs.pop("metrics")
    unsafe = kwargs.pop("unsafe_metrics_listen")
    address = None
    if metrics is not None:
        address = parse_hostport(metrics, option="--metrics")
        if not is_loopback(address[0]) and not unsafe:
            raise click.UsageError(f"--metrics {address[0] or '*'} is not a loopback address: "
                                   "/status names live identities; add --unsafe-metrics-listen "
                                   "if that is intended")
    return Ops(workers=kwargs.pop("workers"), audit_log=kwargs.pop("audit_log"), metrics=address,
               reload_interval=kwargs.pop("reload_interval"),
               keep_revoked_sessions=kwargs.pop("keep_revoked_sessions"))


def _listen_error(host: str, port: int, exc: OSError) -> TrustwireError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return TrustwireError(f"cannot listen on {host or '*'}:{port}: {reason}",
                          hint="pick another port, or stop what is using it")


def _say(text: str) -> None:
    click.echo(f"trustwire: {text}", err=True)


async def _until_signal(make: Callable[[Material], Listener], build: Callable[[], Material],
                        host: str, port: int, sock: socket.socket | None, ops: Ops, role: str,
                        index: int, announce: Callable[[list[tuple[str, int]]], None] | None) -> None:
    listener = make(build())
    try:
        addresses = await listener.start(host, port, sock=sock)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    endpoint = None
    if ops.metrics is not None:
        endpoint = StatusEndpoint(listener, role)
        try:
            metrics_at = await endpoint.start(ops.metrics[0], ops.metrics[1] + index)
        except OSError as exc:
            raise _listen_error(ops.metrics[0], ops.metrics[1] + index, exc) from exc
        _say(f"metrics and status on http://{metrics_at[0]}:{metrics_at[1]}/")
    if announce is not None:
        announce(addresses)

    def reload(reason: str) -> bool:
        try:
            material = build()
        except ReloadError as exc:
            listener.stats["reloads_failed"] += 1
            listener.last_reload_error = exc.message
            listener.audit_event("reload_failed", None, reason=reason, error=exc.message)
            _say(f"reload ({reason}) failed, keeping the previous certificates: {exc.message}")
            return False
        listener.stats["reloads_ok"] += 1
        listener.last_reload_error = None
        cut = listener.apply(material, keep_sessions=ops.keep_revoked_sessions)
        listener.audit_event("reloaded", None, reason=reason, sessions_cut=cut)
        _say(f"reloaded ({reason}); {cut} session(s) cut")
        return True

    def files() -> tuple[Any, ...]:
        return listener.material.files if listener.material is not None else ()

    watcher = Watcher(files, reload, ops.reload_interval) if ops.reload_interval > 0 else None
    if watcher is not None:
        watcher.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_hangup() -> None:
        reload("SIGHUP")
        if watcher is not None:
            watcher.mark()

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await stop.wait()
    if watcher is not None:
        watcher.stop()
    if endpoint is not None:
        endpoint.close()
    await listener.close()
    if listener.audit is not None:
        listener.audit.close()


def run_listener(make: Callable[[Material], Listener], build: Callable[[], Material],
                 host: str, port: int, *, ops: Ops, grace: float, role: str,
                 announce: Callable[[list[tuple[str, int]]], None]) -> None:
    """Serve until SIGTERM/SIGINT, in this process or in ``ops.workers`` supervised ones.

    Raises:
        TrustwireError: invalid certificates, key, CA, CRL or policy (before binding).
    """
    make(build())  # validate everything before binding; a ReloadError is a TrustwireError
    if ops.workers == 1:
        run(_until_signal(make, build, host, port, None, ops, role, 0, announce))
        return
    try:
        reserved = bind_reuseport(host, port, listen=False)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    address = reserved.getsockname()[:2]

    def worker(sock: socket.socket, index: int) -> int:
        run(_until_signal(make, build, host, port, sock, ops, role, index, None))
        return 0

    supervise(ops.workers, reserved, worker, grace=grace, log=_say,
              ready=lambda: announce([address]))
