"""``trustwire serve`` and ``trustwire send``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

from trustwire.cli.common import AppState
from trustwire.cli.tls_options import (
    build_client_tls,
    build_policy,
    build_server_tls,
    identity_options,
    parse_hostport,
    policy_options,
)
from trustwire.client.blocking import connect
from trustwire.errors import ConnectionClosed, TrustwireError
from trustwire.observe.audit import AuditLog
from trustwire.server.listener import Limits
from trustwire.server.server import Server, run
from trustwire.server.workers import bind_reuseport, supervise
from trustwire.services import load_service
from trustwire.tls.context import ServerTLS
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["send", "serve"]


def _listen_error(host: str, port: int, exc: OSError) -> TrustwireError:
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return TrustwireError(f"cannot listen on {host or '*'}:{port}: {reason}",
                          hint="pick another port, or stop what is using it")


def _announce(what: str, addresses: list[tuple[str, int]], tls: ServerTLS, policy_text: str) -> None:
    where = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)
    auth = "client certificates required" if tls.client_auth else "no client certificates"
    click.echo(f"trustwire: serving {what} on {where} ({tls.profile.value} TLS, {auth}; "
               f"policy: {policy_text})", err=True)


async def _serve_until_signal(make: Any, host: str, port: int, sock: socket.socket | None,
                              announce: Any) -> None:
    server: Server = make()
    try:
        addresses = await server.start(host, port, sock=sock)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    if announce is not None:
        announce(addresses)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    if server.audit is not None:
        server.audit.close()


@click.command()
@click.option("--service", default="upper", show_default=True,
              help="upper, echo, or MODULE:CALLABLE (an async handler or a @responder).")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Address to listen on.")
@identity_options(server=True)
@policy_options
@click.option("--framing", type=click.Choice(["length", "line"]), default="length",
              show_default=True, help="length: 4-byte length prefix; line: newline-terminated.")
@click.option("--max-frame", type=click.IntRange(min=1, max=2**31), default=DEFAULT_MAX_FRAME,
              show_default=True, help="Largest message in bytes.")
@click.option("--max-connections", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--handshake-timeout", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, help="Seconds a client has to finish the handshake.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds without traffic before closing (0: never).")
@click.option("--shutdown-grace", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds in-flight messages get on SIGTERM.")
@click.option("--workers", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="Processes sharing the port (SO_REUSEPORT); dead ones are replaced.")
@click.option("--audit-log", metavar="FILE|-", help="Append one JSON line per connection event.")
@click.pass_obj
def serve(state: AppState, /, **kwargs: Any) -> None:
    """Serve a message service over mutual TLS."""
    host, port = parse_hostport(kwargs.pop("listen"), option="--listen")
    handler = load_service(kwargs.pop("service"))
    tls = build_server_tls(state, kwargs)
    policy = build_policy(kwargs)
    limits = Limits(
        max_connections=kwargs.pop("max_connections"), handshake_timeout=kwargs.pop("handshake_timeout"),
        idle_timeout=kwargs.pop("idle_timeout"), max_frame=kwargs.pop("max_frame"),
        shutdown_grace=kwargs.pop("shutdown_grace"),
    )
    framing, workers, audit_target = kwargs.pop("framing"), kwargs.pop("workers"), kwargs.pop("audit_log")
    name = getattr(handler, "__name__", "service")

    def make() -> Server:
        audit = AuditLog.open(audit_target) if audit_target else None
        return Server(handler, tls=tls, policy=policy, limits=limits, framing=framing, audit=audit)

    make()  # validate everything (certificates, key, CA, CRL, handler) before binding
    if workers == 1:
        run(_serve_until_signal(make, host, port, None,
                                lambda addrs: _announce(name, addrs, tls, policy.describe())))
        return
    try:
        reserved = bind_reuseport(host, port, listen=False)
    except OSError as exc:
        raise _listen_error(host, port, exc) from exc
    _announce(f"{name} with {workers} workers", [reserved.getsockname()[:2]], tls, policy.describe())

    def worker(sock: socket.socket) -> int:
        run(_serve_until_signal(make, host, port, sock, None))
        return 0

    supervise(workers, reserved, worker, grace=limits.shutdown_grace,
              log=lambda text: click.echo(f"trustwire: {text}", err=True))


@click.command()
@click.argument("address", metavar="HOST:PORT")
@click.argument("messages", nargs=-1, metavar="MESSAGE...")
@identity_options(server=False)
@click.option("--server-name", metavar="NAME", help="Name to verify the server certificate against.")
@click.option("--framing", type=click.Choice(["length", "line"]), default="length", show_default=True)
@click.option("--max-frame", type=click.IntRange(min=1, max=2**31), default=DEFAULT_MAX_FRAME,
              show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds for connecting, the handshake and each reply.")
@click.option("--file", "files", multiple=True, type=click.Path(path_type=Path, dir_okay=False,
                                                                 exists=True),
              help="Send the contents of FILE as one message (repeatable).")
@click.pass_obj
def send(state: AppState, /, address: str, messages: tuple[str, ...], **kwargs: Any) -> None:
    """Send MESSAGE(s) over mutual TLS and print each reply on its own line.

    Without MESSAGE or --file, each line of standard input is a message.
    """
    host, port = parse_hostport(address, option="HOST:PORT")
    tls = build_client_tls(state, kwargs, kwargs.pop("server_name"))
    payloads = [m.encode() for m in messages] + [f.read_bytes() for f in kwargs.pop("files")]
    if not payloads:
        payloads = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    out = sys.stdout.buffer
    with connect(host, port, tls=tls, framing=kwargs.pop("framing"),
                 max_frame=kwargs.pop("max_frame"), timeout=kwargs.pop("timeout")) as client:
        for payload in payloads:
            try:
                reply = client.request(payload)
            except ConnectionClosed:
                raise ConnectionClosed("the server closed the connection without replying") from None
            out.write(reply + b"\n")
            out.flush()
