"""``trustwire tunnel server`` and ``trustwire tunnel client``."""

from __future__ import annotations

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
    is_loopback,
    parse_hostport,
    policy_options,
    require_client_auth_for,
)
from trustwire.observe.audit import AuditLog
from trustwire.server.listener import Listener
from trustwire.tls.reload import Material, build_material
from trustwire.tunnel.proxy import Target, TunnelClient, TunnelServer

__all__ = ["tunnel"]


def parse_target(value: str, *, allow_unix: bool) -> Target:
    """``HOST:PORT``, or (server mode) a Unix socket path: ``/path``, ``./path`` or ``unix:path``."""
    text = value.strip()
    if text.startswith(("unix:", "/", "./", "../")):
        if not allow_unix:
            raise click.BadParameter("a tunnel client connects over TCP: give HOST:PORT",
                                     param_hint="--target")
        return Target(path=Path(text.removeprefix("unix:")))
    host, port = parse_hostport(text, option="--target")
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
@identity_options(server=True)
@policy_options
@click.option("--proxy-protocol", is_flag=True,
              help="Send a PROXY v2 header with the client's address and identity to the target.")
@limit_options
@click.pass_obj
def tunnel_server(state: AppState, /, **kwargs: Any) -> None:
    """Accept mutual TLS, check the policy, and pass the bytes to the target."""
    host, port = parse_hostport(kwargs.pop("listen"), option="--listen")
    target = parse_target(kwargs.pop("target"), allow_unix=True)
    tls = build_server_tls(state, kwargs)
    policy, policy_files = build_policy(kwargs)
    require_client_auth_for(tls, policy())
    limits = build_limits(kwargs)
    proxy = kwargs.pop("proxy_protocol")
    ops = build_ops(kwargs)

    def make(material: Material) -> Listener:
        audit = AuditLog.open(ops.audit_log) if ops.audit_log else None
        tunnel = TunnelServer(target=target, tls=material.context, policy=material.policy,
                              limits=limits, audit=audit, proxy_protocol=proxy)
        tunnel.apply(material)
        return tunnel

    def announce(addresses: list[tuple[str, int]]) -> None:
        click.echo(f"trustwire: tunnel server on {format_addresses(addresses)} -> "
                   f"{target.describe()} ({tls.profile.value} TLS, "
                   f"{'client certificates required' if tls.client_auth else 'no client certificates'}"
                   f"; policy: {policy().describe()}{'; PROXY v2' if proxy else ''})", err=True)

    run_listener(make, lambda: build_material(tls, policy, policy_files), host, port, ops=ops,
                 grace=limits.shutdown_grace, role="tunnel-server", announce=announce)


@tunnel.command("client")
@click.option("--listen", required=True, metavar="HOST:PORT",
              help="Where to accept plain TCP (loopback only unless --unsafe-listen).")
@click.option("--target", required=True, metavar="HOST:PORT", help="The TLS server to reach.")
@identity_options(server=False)
@click.option("--server-name", metavar="NAME",
              help="Name to verify the server's certificate against (default: the target host).")
@policy_options
@click.option("--unsafe-listen", is_flag=True,
              help="Accept plain TCP on a non-loopback address: anyone who can reach it rides "
                   "on this client's identity.")
@limit_options
@click.pass_obj
def tunnel_client(state: AppState, /, **kwargs: Any) -> None:
    """Accept plain TCP and carry it to the target over mutual TLS.

    The --allow-* options pin the server's identity (its certificate must match).
    """
    host, port = parse_hostport(kwargs.pop("listen"), option="--listen")
    if not is_loopback(host) and not kwargs.pop("unsafe_listen"):
        raise click.UsageError(
            f"--listen {host or '*'} is not a loopback address: anyone who can reach it would "
            "use this client's identity; add --unsafe-listen if that is intended")
    kwargs.pop("unsafe_listen", None)
    target = parse_target(kwargs.pop("target"), allow_unix=False)
    tls = build_client_tls(state, kwargs, kwargs.pop("server_name"))
    policy, policy_files = build_policy(kwargs)
    limits = build_limits(kwargs)
    ops = build_ops(kwargs)

    def make(material: Material) -> Listener:
        audit = AuditLog.open(ops.audit_log) if ops.audit_log else None
        tunnel = TunnelClient(target=target, tls=tls, policy=material.policy, limits=limits,
                              audit=audit)
        tunnel.apply(material)
        return tunnel

    def announce(addresses: list[tuple[str, int]]) -> None:
        pinned = policy()
        click.echo(f"trustwire: tunnel client on {format_addresses(addresses)} -> "
                   f"{target.describe()} (mutual TLS as {tls.cert.name if tls.cert else 'no identity'}, "
                   f"server pinned: {pinned.describe() if not pinned.is_open() else 'no'})", err=True)

    run_listener(make, lambda: build_material(tls, policy, policy_files), host, port, ops=ops,
                 grace=limits.shutdown_grace, role="tunnel-client", announce=announce)
