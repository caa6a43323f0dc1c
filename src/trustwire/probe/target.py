"""What the probe audits (:class:`ProbeTarget`) and how (:class:`ProbeOptions`): values, no IO."""

from __future__ import annotations

import dataclasses
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from trustwire.errors import ConfigError
from trustwire.net.addresses import format_hostport, parse_hostport
from trustwire.probe.starttls import PROTOCOLS

__all__ = ["ProbeOptions", "ProbeTarget"]


@dataclass(frozen=True)
class ProbeTarget:
    """``HOST:PORT`` or ``https://host[:port]/path``."""

    host: str
    port: int
    server_name: str
    https: bool
    path: str = "/"
    starttls: str | None = None
    """The plaintext protocol that starts TLS on this port (one of
    :data:`trustwire.probe.starttls.PROTOCOLS`), or None when TLS starts at once."""

    @classmethod
    def parse(cls, text: str, server_name: str | None = None,
              starttls: str | None = None) -> ProbeTarget:
        """Raises ConfigError for anything else, and for STARTTLS with an https:// URL."""
        value = text.strip()
        if starttls is not None:
            if starttls not in PROTOCOLS:
                raise ConfigError(f"no STARTTLS dialogue for {starttls!r}: use one of "
                                  f"{', '.join(PROTOCOLS)}")
            if "://" in value:
                raise ConfigError(f"{text!r}: a STARTTLS target is HOST:PORT, not a URL")
            return dataclasses.replace(cls.parse(value, server_name), starttls=starttls)
        if "://" in value:
            url = urllib.parse.urlsplit(value)
            if url.scheme != "https" or not url.hostname:
                raise ConfigError(f"{text!r}: give HOST:PORT or an https:// URL")
            try:
                port = url.port or 443
            except ValueError:
                raise ConfigError(f"{text!r} has an invalid port") from None
            return cls(host=url.hostname, port=port, server_name=server_name or url.hostname,
                       https=True, path=(url.path or "/") + (f"?{url.query}" if url.query else ""))
        try:
            host, port = parse_hostport(value)
        except ConfigError:
            host, port = "", 0
        if not host or not 0 < port < 65536:
            raise ConfigError(f"{text!r}: give HOST:PORT or an https:// URL")
        return cls(host=host, port=port, server_name=server_name or host, https=False)

    def describe(self) -> str:
        if self.https:
            return f"https://{self.host}:{self.port}{self.path}"
        return format_hostport(self.host, self.port)


@dataclass(frozen=True, kw_only=True)
class ProbeOptions:
    ca: Path | None = None
    """Trust anchor for the server's chain (default: the system store)."""
    cert: Path | None = None
    key: Path | None = None
    """Our own client identity, to check the server accepts it."""
    ca_key: Path | None = None
    """The key of the CA in ``ca``: lets the audit mint expired/revoked certificates the
    server should know to refuse."""
    crl: Path | None = None
    """The CRL the server checks (gives the audit a revoked serial to present)."""
    timeout: float = 5.0
    concurrency: int = 16
    check_redirect: bool = False
    http_port: int = 80
