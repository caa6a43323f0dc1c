"""Options every TLS command shares (serve, send, tunnel): identities, policy, addresses."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trustwire.authz.policy import Policy
from trustwire.cli.common import AppState
from trustwire.errors import ConfigError
from trustwire.tls.context import ClientTLS, Profile, ServerTLS

__all__ = [
    "build_client_tls",
    "build_policy",
    "build_server_tls",
    "format_addresses",
    "identity_options",
    "parse_hostport",
    "policy_options",
    "require_client_auth_for",
]

F = TypeVar("F", bound=Callable[..., Any])


def parse_hostport(value: str, *, option: str = "address") -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (all interfaces).

    Raises:
        click.BadParameter: malformed, or the port is outside 0-65535.
    """
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise click.BadParameter(f"{value!r} is not [IPv6]:PORT", param_hint=option)
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint=option)
        if ":" in host:
            raise click.BadParameter(f"write IPv6 addresses in brackets: [{host}]:{port_text}",
                                     param_hint=option)
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise click.BadParameter(f"{port_text!r} is not a port number (0-65535)", param_hint=option)
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP: where listening is safe without an --unsafe-* flag."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def format_addresses(addresses: list[tuple[str, int]]) -> str:
    return ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)


def identity_options(*, server: bool) -> Callable[[F], F]:
    """--identity NAME | --cert/--key/--ca, --crl, --profile (and --no-client-auth for servers)."""

    def decorate(func: F) -> F:
        options = [
            click.option("--identity", metavar="NAME",
                         help="Use HOME/certs/NAME.{crt,key}, the home's CA and its CRL."),
            click.option("--cert", type=click.Path(path_type=Path, dir_okay=False),
                         help="Certificate chain file (instead of --identity)."),
            click.option("--key", type=click.Path(path_type=Path, dir_okay=False),
                         help="Private key file."),
            click.option("--ca", type=click.Path(path_type=Path, dir_okay=False),
                         help="CA certificate to verify the peer with."),
            click.option("--crl", type=click.Path(path_type=Path, dir_okay=False),
                         help="CRL to check the peer's certificate against."),
            click.option("--profile", type=click.Choice([p.value for p in Profile]),
                         default="intermediate", show_default=True,
                         help="Mozilla TLS profile: intermediate (TLS 1.2+) or modern (TLS 1.3)."),
        ]
        if server:
            options.append(click.option("--no-client-auth", is_flag=True,
                                        help="Do not ask clients for certificates (plain TLS)."))
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def policy_options(func: F) -> F:
    for flag, text in reversed([
        ("--allow-cn", "Allow clients with this common name (repeatable)."),
        ("--allow-ou", "Allow clients with this organizational unit."),
        ("--allow-dns", "Allow clients with this DNS SAN (*.domain allowed)."),
        ("--allow-uri", "Allow clients with this URI SAN (* within a segment, ** across)."),
        ("--allow-fingerprint", "Allow the certificate with this SHA-256 fingerprint."),
    ]):
        func = click.option(flag, multiple=True, metavar="VALUE", help=text)(func)
    return click.option("--policy", "policy_file", type=click.Path(path_type=Path, dir_okay=False),
                        help="TOML policy file ([allow] cn/ou/dns/uri/fingerprint lists).")(func)


def build_policy(kwargs: dict[str, Any]) -> tuple[Callable[[], Policy], tuple[Path, ...]]:
    """The policy as a factory (the file is read again on every reload) and the file to watch.

    Raises:
        ConfigError: invalid flags or policy file (checked once here, too).
    """
    flags = Policy.build(
        cn=kwargs.pop("allow_cn", ()), ou=kwargs.pop("allow_ou", ()),
        dns=kwargs.pop("allow_dns", ()), uri=kwargs.pop("allow_uri", ()),
        fingerprint=kwargs.pop("allow_fingerprint", ()),
    )
    policy_file: Path | None = kwargs.pop("policy_file", None)

    def policy() -> Policy:
        return flags.merged(Policy.from_file(policy_file)) if policy_file is not None else flags

    policy()
    return policy, (policy_file,) if policy_file is not None else ()


def require_client_auth_for(tls: ServerTLS, policy: Policy) -> None:
    """A policy judges client certificates: refuse it without them."""
    if not tls.client_auth and not policy.is_open():
        raise ConfigError("an access policy needs client certificates",
                          hint="drop --no-client-auth or the --allow-* options")


def _keylog() -> str | None:
    return os.environ.get("SSLKEYLOGFILE") or None


def _check_sources(identity: str | None, cert: Path | None, key: Path | None) -> None:
    if identity and (cert or key):
        raise click.UsageError("give either --identity or --cert/--key, not both")


def build_server_tls(state: AppState, kwargs: dict[str, Any]) -> ServerTLS:
    identity, cert, key = kwargs.pop("identity"), kwargs.pop("cert"), kwargs.pop("key")
    ca, crl = kwargs.pop("ca"), kwargs.pop("crl")
    profile = Profile(kwargs.pop("profile"))
    client_auth = not kwargs.pop("no_client_auth", False)
    _check_sources(identity, cert, key)
    if identity:
        files = state.home.identity(identity)
        return ServerTLS(cert=files.cert, key=files.key, ca=ca or files.ca,
                         crl=crl or (files.crl if client_auth else None),
                         client_auth=client_auth, profile=profile, keylog_filename=_keylog())
    if not (cert and key):
        raise click.UsageError("give --identity NAME, or --cert FILE and --key FILE")
    if client_auth and ca is None:
        raise ConfigError("requiring client certificates needs --ca FILE to verify them",
                          hint="pass --ca, or --no-client-auth for plain TLS")
    return ServerTLS(cert=cert, key=key, ca=ca, crl=crl, client_auth=client_auth, profile=profile,
                     keylog_filename=_keylog())


def build_client_tls(state: AppState, kwargs: dict[str, Any], server_name: str | None) -> ClientTLS:
    identity, cert, key = kwargs.pop("identity"), kwargs.pop("cert"), kwargs.pop("key")
    ca, crl = kwargs.pop("ca"), kwargs.pop("crl")
    profile = Profile(kwargs.pop("profile"))
    _check_sources(identity, cert, key)
    if identity:
        files = state.home.identity(identity)
        return ClientTLS(ca=ca or files.ca, cert=files.cert, key=files.key, crl=crl or files.crl,
                         server_name=server_name, profile=profile, keylog_filename=_keylog())
    if ca is None:
        raise click.UsageError("give --identity NAME, or --ca FILE (with --cert/--key for mTLS)")
    return ClientTLS(ca=ca, cert=cert, key=key, crl=crl, server_name=server_name,
                     profile=profile, keylog_filename=_keylog())
