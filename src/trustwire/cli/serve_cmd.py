"""``trustwire serve`` and ``trustwire send``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trustwire.cli.common import AppState, echo_json, info
from trustwire.cli.options import IdentityFlags, LimitFlags, OpsFlags, PolicyFlags, hostport
from trustwire.cli.running import observer_for, run_from_cli
from trustwire.client.blocking import connect
from trustwire.errors import ConnectionClosed
from trustwire.net.addresses import format_addresses
from trustwire.net.listener import Listener
from trustwire.ops.reload import Reloader
from trustwire.server.server import Server
from trustwire.services import load_service
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["send", "serve"]


@click.command()
@click.option("--service", default="upper", show_default=True,
              help="upper, echo, or MODULE:CALLABLE (an async handler or a @responder).")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Address to listen on.")
@IdentityFlags.options(server=True)
@PolicyFlags.options()
@click.option("--framing", type=click.Choice(["length", "line"]), default="length",
              show_default=True, help="length: 4-byte length prefix; line: newline-terminated.")
@click.option("--max-frame", type=click.IntRange(min=1, max=2**31), default=DEFAULT_MAX_FRAME,
              show_default=True, help="Largest message in bytes.")
@LimitFlags.options()
@OpsFlags.options()
@click.pass_obj
def serve(state: AppState, /, service: str, listen: str, identity_flags: IdentityFlags,
          policy_flags: PolicyFlags, framing: str, max_frame: int, limit_flags: LimitFlags,
          ops_flags: OpsFlags) -> None:
    """Serve a message service over mutual TLS."""
    host, port = hostport(listen, "--listen")
    handler = load_service(service)
    tls = identity_flags.server_tls(state.home)
    policy_now = policy_flags.combined()
    limits = limit_flags.limits(max_frame=max_frame)
    name = getattr(handler, "__name__", "service")

    source = policy_flags.source(tls, identity_flags, state.home)

    def make(open_audit: bool) -> tuple[Listener, Reloader | None]:
        server = Server(handler, tls=source, limits=limits, framing=framing,
                        observer=observer_for(ops_flags, open_audit),
                        keep_revoked_sessions=ops_flags.keep_revoked_sessions)
        return server, server.reloader

    label = name if ops_flags.workers == 1 else f"{name} with {ops_flags.workers} workers"

    def announce(addresses: list[tuple[str, int]]) -> None:
        info(f"trustwire: serving {label} on {format_addresses(addresses)} "
                   f"({tls.profile.value} TLS, "
                   f"{'client certificates required' if tls.client_auth else 'no client certificates'}"
                   f"; policy: {policy_now.describe()})")

    run_from_cli(make, host, port, ops=ops_flags, role="serve", grace=limits.shutdown_grace,
                 announce=announce)


@click.command()
@click.argument("address", metavar="HOST:PORT")
@click.argument("messages", nargs=-1, metavar="MESSAGE...")
@IdentityFlags.options(server=False)
@click.option("--server-name", metavar="NAME", help="Name to verify the server certificate against.")
@click.option("--framing", type=click.Choice(["length", "line"]), default="length", show_default=True)
@click.option("--max-frame", type=click.IntRange(min=1, max=2**31), default=DEFAULT_MAX_FRAME,
              show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds for connecting, the handshake and each reply.")
@click.option("--file", "files", multiple=True, type=click.Path(path_type=Path, dir_okay=False,
                                                                 exists=True),
              help="Send the contents of FILE as one message (repeatable).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the replies as one JSON list of strings (after the last one).")
@click.pass_obj
def send(state: AppState, /, address: str, messages: tuple[str, ...],
         identity_flags: IdentityFlags, server_name: str | None, framing: str, max_frame: int,
         timeout: float, files: tuple[Path, ...], as_json: bool) -> None:
    """Send MESSAGE(s) over mutual TLS and print each reply on its own line.

    Without MESSAGE or --file, each line of standard input is a message.
    """
    host, port = hostport(address, "HOST:PORT")
    tls = identity_flags.client_tls(state.home, server_name)
    payloads = [m.encode() for m in messages] + [f.read_bytes() for f in files]
    if not payloads:
        payloads = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    out = sys.stdout.buffer
    replies: list[str] = []
    with connect(host, port, tls=tls, framing=framing, max_frame=max_frame,
                 timeout=timeout) as client:
        for payload in payloads:
            try:
                reply = client.request(payload)
            except ConnectionClosed:
                raise ConnectionClosed("the server closed the connection without replying") from None
            if as_json:
                replies.append(reply.decode("utf-8", "backslashreplace"))
                continue
            out.write(reply + b"\n")
            out.flush()
    if as_json:
        echo_json(replies)
