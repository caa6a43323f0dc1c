"""``trustwire serve`` and ``trustwire send``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from trustwire.cli.common import AppState
from trustwire.cli.running import build_limits, build_ops, limit_options, run_listener
from trustwire.cli.tls_options import (
    build_client_tls,
    build_policy,
    build_server_tls,
    format_addresses,
    identity_options,
    parse_hostport,
    policy_options,
    require_client_auth_for,
)
from trustwire.client.blocking import connect
from trustwire.errors import ConnectionClosed
from trustwire.observe.audit import AuditLog
from trustwire.server.listener import Listener
from trustwire.server.server import Server
from trustwire.services import load_service
from trustwire.tls.context import ServerTLS
from trustwire.tls.reload import Material, build_material
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["send", "serve"]


def _announce(what: str, addresses: list[tuple[str, int]], tls: ServerTLS, policy_text: str) -> None:
    click.echo(f"trustwire: serving {what} on {format_addresses(addresses)} ({tls.profile.value} TLS, "
               f"{'client certificates required' if tls.client_auth else 'no client certificates'}; "
               f"policy: {policy_text})", err=True)


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
@limit_options
@click.pass_obj
def serve(state: AppState, /, **kwargs: Any) -> None:
    """Serve a message service over mutual TLS."""
    host, port = parse_hostport(kwargs.pop("listen"), option="--listen")
    handler = load_service(kwargs.pop("service"))
    tls = build_server_tls(state, kwargs)
    policy, policy_files = build_policy(kwargs)
    require_client_auth_for(tls, policy())
    limits = build_limits(kwargs, max_frame=kwargs.pop("max_frame"))
    framing = kwargs.pop("framing")
    ops = build_ops(kwargs)
    name = getattr(handler, "__name__", "service")

    def make(material: Material) -> Listener:
        audit = AuditLog.open(ops.audit_log) if ops.audit_log else None
        server = Server(handler, tls=material.context, policy=material.policy, limits=limits,
                        framing=framing, audit=audit)
        server.apply(material)
        return server

    label = name if ops.workers == 1 else f"{name} with {ops.workers} workers"
    run_listener(make, lambda: build_material(tls, policy, policy_files), host, port, ops=ops,
                 grace=limits.shutdown_grace, role="serve",
                 announce=lambda addrs: _announce(label, addrs, tls, policy().describe()))


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
