"""``trustwire tunnel server`` and ``trustwire tunnel client``."""

from __future__ import annotations

from pathlib import Path

import click

from trustwire.cli.common import AppState, info
from trustwire.cli.options import IdentityFlags, LimitFlags, OpsFlags, PolicyFlags, hostport
from trustwire.cli.running import observer_for, run_from_cli
from trustwire.net.addresses import format_addresses, is_loopback
from trustwire.net.listener import Listener
from trustwire.ops.reload import Reloader
from trustwire.tunnel.proxy import TunnelClient, TunnelServer
from trustwire.tunnel.splice import Target

__all__ = ["parse_target", "tunnel"]


def parse_target(value: str, *, allow_unix: bool) -> Target:
    """``HOST:PORT``, or (server mode) a Unix socket path: ``/path``, ``./path`` or ``unix:path``."""
    text = value.strip()
    if text.startswith(("unix:", "/", "./", "../")):
        if not allow_unix:
            raise click.BadParameter("a tunnel client connects over TCP: give HOST:PORT",
                                     param_hint="--target")
        return Target(path=Path(text.removeprefix("unix:")))
    host, port = hostport(text, "--target")
    if not host or port == 0:
        raise click.BadParameter(f"{value!r} needs a host and a non-zero port", param_hint="--target")
    return Target(host=host, port=port)


@click.group()
def tunnel() -> None:
    """Put a TCP service behind mutual TLS (server), or reach one through it (client)."""


@tunnel.command("server")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Where to accept mutual TLS.")
@click.option("--target", required=True, metavar="HOST:PORT|PATH",
              help="The plain service: HOST:PORT or a Unix socket path.")
@IdentityFlags.options(server=True)
@PolicyFlags.options()
@click.option("--proxy-protocol", is_flag=True,
              help="Send a PROXY v2 header with the client's address and identity to the target.")
@LimitFlags.options()
@OpsFlags.options()
@click.pass_obj
def tunnel_server(state: AppState, /, listen: str, target: str, identity_flags: IdentityFlags,
                  policy_flags: PolicyFlags, proxy_protocol: bool, limit_flags: LimitFlags,
                  ops_flags: OpsFlags) -> None:
    """Accept mutual TLS, check the policy, and pass the bytes to the target."""
    host, port = hostport(listen, "--listen")
    where = parse_target(target, allow_unix=True)
    tls = identity_flags.server_tls(state.home)
    policy_now = policy_flags.combined()
    limits = limit_flags.limits()
    source = policy_flags.source(tls, identity_flags, state.home)

    def make(open_audit: bool) -> tuple[Listener, Reloader | None]:
        tunnel = TunnelServer(target=where, tls=source, limits=limits,
                              observer=observer_for(ops_flags, open_audit),
                              proxy_protocol=proxy_protocol,
                              keep_revoked_sessions=ops_flags.keep_revoked_sessions)
        return tunnel, tunnel.reloader

    def announce(addresses: list[tuple[str, int]]) -> None:
        info(f"trustwire: tunnel server on {format_addresses(addresses)} -> "
                   f"{where.describe()} ({tls.profile.value} TLS, "
                   f"{'client certificates required' if tls.client_auth else 'no client certificates'}"
                   f"; policy: {policy_now.describe()}{'; PROXY v2' if proxy_protocol else ''})")

    run_from_cli(make, host, port, ops=ops_flags, role="tunnel-server",
                 grace=limits.shutdown_grace, announce=announce)


@tunnel.command("client")
@click.option("--listen", required=True, metavar="HOST:PORT",
              help="Where to accept plain TCP (loopback only unless --unsafe-listen).")
@click.option("--target", required=True, metavar="HOST:PORT", help="The TLS server to reach.")
@IdentityFlags.options(server=False)
@click.option("--server-name", metavar="NAME",
              help="Name to verify the server's certificate against (default: the target host).")
@PolicyFlags.options(pins_server=True)
@click.option("--unsafe-listen", is_flag=True,
              help="Accept plain TCP on a non-loopback address: anyone who can reach it rides "
                   "on this client's identity.")
@LimitFlags.options(accepts_tls=False)
@OpsFlags.options()
@click.pass_obj
def tunnel_client(state: AppState, /, listen: str, target: str, identity_flags: IdentityFlags,
                  server_name: str | None, policy_flags: PolicyFlags, unsafe_listen: bool,
                  limit_flags: LimitFlags, ops_flags: OpsFlags) -> None:
    """Accept plain TCP and carry it to the target over mutual TLS.

    The --allow-* options pin the server's identity (its certificate must match).
    """
    host, port = hostport(listen, "--listen")
    if not is_loopback(host) and not unsafe_listen:
        raise click.UsageError(
            f"--listen {host or '*'} is not a loopback address: anyone who can reach it would "
            "use this client's identity; add --unsafe-listen if that is intended")
    where = parse_target(target, allow_unix=False)
    tls = identity_flags.client_tls(state.home, server_name)
    pinned = policy_flags.combined()
    limits = limit_flags.limits()
    source = policy_flags.source(tls, identity_flags, state.home)

    def make(open_audit: bool) -> tuple[Listener, Reloader | None]:
        tunnel = TunnelClient(target=where, tls=source, limits=limits,
                              observer=observer_for(ops_flags, open_audit),
                              keep_revoked_sessions=ops_flags.keep_revoked_sessions)
        return tunnel, tunnel.reloader

    def announce(addresses: list[tuple[str, int]]) -> None:
        info(f"trustwire: tunnel client on {format_addresses(addresses)} -> "
                   f"{where.describe()} (mutual TLS as {tls.cert.name if tls.cert else 'no identity'}, "
                   f"server pinned: {pinned.describe() if not pinned.is_open() else 'no'})")

    run_from_cli(make, host, port, ops=ops_flags, role="tunnel-client",
                 grace=limits.shutdown_grace, announce=announce)
