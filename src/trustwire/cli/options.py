"""Typed option groups for the TLS commands (serve, send, tunnel).

Each group is a frozen dataclass whose fields are the group's flags; the
:func:`group` decorator adds the flags to a click command and hands the
command one instance, so a command's signature says what it takes
(``identity: IdentityFlags``) instead of popping names out of ``**kwargs``.
A group's methods turn the flags into library objects (``ServerTLS``,
``Policy``, ``Limits``, ``Operations``): nothing the CLI does is out of the
library's reach.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from trustwire.authz.policy import Policy
from trustwire.errors import ConfigError
from trustwire.net.addresses import is_loopback, parse_hostport
from trustwire.net.listener import Limits
from trustwire.ops.reload import TrustSource
from trustwire.ops.runtime import Operations
from trustwire.pki.store import Home
from trustwire.tls.context import ClientTLS, Profile, ServerTLS

__all__ = ["IdentityFlags", "LimitFlags", "OpsFlags", "PolicyFlags", "group", "hostport"]

F = TypeVar("F", bound=Callable[..., Any])
G = TypeVar("G")


def hostport(value: str, option: str) -> tuple[str, int]:
    """``host:port`` from a flag, as a usage error (exit 2) naming the flag when malformed."""
    try:
        return parse_hostport(value)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint=option) from None


def group(cls: type[G], options: list[Callable[[F], F]], *, name: str) -> Callable[[F], F]:
    """Add ``options`` to a command and pass their values as one ``cls`` named ``name``."""
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs[name] = cls(**{f: kwargs.pop(f) for f in fields if f in kwargs})
            return func(*args, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _keylog() -> str | None:
    return os.environ.get("SSLKEYLOGFILE") or None


@dataclass(frozen=True)
class IdentityFlags:
    """--identity NAME | --cert/--key/--ca, --crl, --profile (and --no-client-auth)."""

    identity: str | None
    cert: Path | None
    key: Path | None
    ca: Path | None
    crl: Path | None
    profile: str
    no_client_auth: bool = False

    @staticmethod
    def options(*, server: bool) -> Callable[[F], F]:
        flags = [
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
            flags.append(click.option("--no-client-auth", is_flag=True,
                                      help="Do not ask clients for certificates (plain TLS)."))
        return group(IdentityFlags, flags, name="identity_flags")

    def _check_sources(self) -> None:
        if self.identity and (self.cert or self.key):
            raise click.UsageError("give either --identity or --cert/--key, not both")

    def server_tls(self, home: Home) -> ServerTLS:
        self._check_sources()
        client_auth = not self.no_client_auth
        profile = Profile(self.profile)
        if self.identity:
            files = home.identity(self.identity, server=True,
                                  crl=client_auth and self.crl is None)
            return ServerTLS(cert=files.cert, key=files.key, ca=self.ca or files.ca,
                             crl=self.crl or files.crl,
                             client_auth=client_auth, profile=profile, keylog_filename=_keylog())
        if not (self.cert and self.key):
            raise click.UsageError("give --identity NAME, or --cert FILE and --key FILE")
        if client_auth and self.ca is None:
            raise ConfigError("requiring client certificates needs --ca FILE to verify them",
                              hint="pass --ca, or --no-client-auth for plain TLS")
        return ServerTLS(cert=self.cert, key=self.key, ca=self.ca, crl=self.crl,
                         client_auth=client_auth, profile=profile, keylog_filename=_keylog())

    def client_tls(self, home: Home, server_name: str | None) -> ClientTLS:
        self._check_sources()
        profile = Profile(self.profile)
        if self.identity:
            files = home.identity(self.identity, crl=self.crl is None)
            return ClientTLS(ca=self.ca or files.ca, cert=files.cert, key=files.key,
                             crl=self.crl or files.crl, server_name=server_name,
                             profile=profile, keylog_filename=_keylog())
        if self.ca is None:
            raise click.UsageError("give --identity NAME, or --ca FILE (with --cert/--key for mTLS)")
        return ClientTLS(ca=self.ca, cert=self.cert, key=self.key, crl=self.crl,
                         server_name=server_name, profile=profile, keylog_filename=_keylog())


@dataclass(frozen=True)
class PolicyFlags:
    """--allow-cn/-ou/-dns/-uri/-fingerprint and --policy FILE."""

    allow_cn: tuple[str, ...]
    allow_ou: tuple[str, ...]
    allow_dns: tuple[str, ...]
    allow_uri: tuple[str, ...]
    allow_fingerprint: tuple[str, ...]
    policy_file: Path | None

    @staticmethod
    def options(*, pins_server: bool = False) -> Callable[[F], F]:
        who = "the server" if pins_server else "clients"
        verb = "Pin the server to" if pins_server else "Allow clients with"
        flags: list[Callable[[F], F]] = [click.option(
            "--policy", "policy_file", type=click.Path(path_type=Path, dir_okay=False),
            help=f"TOML policy file ([allow] cn/ou/dns/uri/fingerprint lists) for {who}.")]
        for flag, text in [
            ("--allow-cn", f"{verb} this common name (repeatable)."),
            ("--allow-ou", f"{verb} this organizational unit."),
            ("--allow-dns", f"{verb} this DNS SAN (*.domain allowed)."),
            ("--allow-uri", f"{verb} this URI SAN (* within a segment, a final ** for the rest)."),
            ("--allow-fingerprint", f"{verb} the certificate with this SHA-256 fingerprint."),
        ]:
            flags.append(click.option(flag, multiple=True, metavar="VALUE", help=text))
        return group(PolicyFlags, flags, name="policy_flags")

    def policy(self) -> Policy:
        """The allow rules from the flags (a file's are merged in on every (re)load).

        Raises:
            ConfigError: an invalid rule.
        """
        return Policy.build(cn=self.allow_cn, ou=self.allow_ou, dns=self.allow_dns,
                            uri=self.allow_uri, fingerprint=self.allow_fingerprint)

    def source(self, tls: ServerTLS | ClientTLS, identity: IdentityFlags, home: Home) -> TrustSource:
        """Where a listener reloads from: ``tls``, these rules and file, and (for
        ``--identity``) the home, checked at every reload and used as the CRL floor."""
        return TrustSource(tls=tls, policy=self.policy(), policy_file=self.policy_file,
                           home=home if identity.identity else None, identity=identity.identity)

    def combined(self) -> Policy:
        """Flags and file together, as they are now (checked at start).

        Raises:
            ConfigError: an invalid rule or policy file.
        """
        flags = self.policy()
        return flags.merged(Policy.from_file(self.policy_file)) if self.policy_file else flags


@dataclass(frozen=True)
class LimitFlags:
    """Connection, handshake and time limits."""

    max_connections: int
    handshake_timeout: float
    idle_timeout: float
    shutdown_grace: float
    max_handshakes: int = Limits().max_handshakes
    max_handshakes_per_source: int = Limits().max_handshakes_per_source

    @staticmethod
    def options(*, accepts_tls: bool = True) -> Callable[[F], F]:
        """The limit flags; ``accepts_tls`` adds the caps on unfinished handshakes (a
        tunnel client accepts plain TCP on loopback, where they do not apply)."""
        defaults = Limits()
        caps = [
            click.option("--max-handshakes", type=click.IntRange(min=0),
                         default=defaults.max_handshakes, show_default=True,
                         help="Connections still in their handshake; beyond it the oldest is "
                              "dropped (0: no limit)."),
            click.option("--max-handshakes-per-source", type=click.IntRange(min=0),
                         default=defaults.max_handshakes_per_source, show_default=True,
                         help="Unfinished handshakes from one IP address; more are closed at "
                              "once (0: no limit)."),
        ] if accepts_tls else []
        return group(LimitFlags, [
            click.option("--max-connections", type=click.IntRange(min=1),
                         default=defaults.max_connections, show_default=True),
            *caps,
            click.option("--handshake-timeout", type=click.FloatRange(min=0.1),
                         default=defaults.handshake_timeout, show_default=True,
                         help="Seconds a client has to finish the handshake."),
            click.option("--idle-timeout", type=click.FloatRange(min=0),
                         default=defaults.idle_timeout, show_default=True,
                         help="Seconds without traffic before closing (0: never)."),
            click.option("--shutdown-grace", type=click.FloatRange(min=0),
                         default=defaults.shutdown_grace, show_default=True,
                         help="Seconds connections get to finish on SIGTERM."),
        ], name="limit_flags")

    def limits(self, **extra: int) -> Limits:
        return Limits(max_connections=self.max_connections, max_handshakes=self.max_handshakes,
                      max_handshakes_per_source=self.max_handshakes_per_source,
                      handshake_timeout=self.handshake_timeout, idle_timeout=self.idle_timeout,
                      shutdown_grace=self.shutdown_grace, **extra)


@dataclass(frozen=True)
class OpsFlags:
    """Workers, audit log, metrics and reload options."""

    workers: int
    audit_log: str | None
    metrics: str | None
    unsafe_metrics_listen: bool
    reload_interval: float
    keep_revoked_sessions: bool

    @staticmethod
    def options() -> Callable[[F], F]:
        return group(OpsFlags, [
            click.option("--workers", type=click.IntRange(min=1, max=256), default=1,
                         show_default=True,
                         help="Processes sharing the port (SO_REUSEPORT); dead ones are replaced."),
            click.option("--audit-log", metavar="FILE|-",
                         help="Append one JSON line per connection event."),
            click.option("--metrics", metavar="HOST:PORT",
                         help="Serve /metrics (Prometheus), /healthz and /status here (loopback "
                              "only unless --unsafe-metrics-listen; with --workers, PORT, "
                              "PORT+1, ...)."),
            click.option("--unsafe-metrics-listen", is_flag=True,
                         help="Allow --metrics on a non-loopback address (it lists live "
                              "identities)."),
            click.option("--reload-interval", type=click.FloatRange(min=0), default=5.0,
                         show_default=True,
                         help="Seconds between checks of the certificate, key, CA, CRL and "
                              "policy files (0: reload on SIGHUP only)."),
            click.option("--keep-revoked-sessions", is_flag=True,
                         help="After a reload, keep established connections whose certificate "
                              "is now revoked or no longer allowed (default: cut them)."),
        ], name="ops_flags")

    def metrics_address(self) -> tuple[str, int] | None:
        if self.metrics is None:
            return None
        address = hostport(self.metrics, "--metrics")
        if not is_loopback(address[0]) and not self.unsafe_metrics_listen:
            raise click.UsageError(f"--metrics {address[0] or '*'} is not a loopback address: "
                                   "/status names live identities; add --unsafe-metrics-listen "
                                   "if that is intended")
        return address

    def operations(self, role: str) -> Operations:
        return Operations(reload_interval=self.reload_interval, metrics=self.metrics_address(),
                          role=role)
