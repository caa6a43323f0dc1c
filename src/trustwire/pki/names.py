"""Names in certificates, parsed and checked in one place.

Everything a user types that ends up in a certificate passes through here:
certificate NAMEs (which also become file names in the home), DNS names,
IP addresses, URIs (SPIFFE IDs included) and the name constraints of an
intermediate CA. Invalid input raises :class:`ConfigError` with one sentence
saying what is wrong and how to say it instead.

Name-constraint matching follows RFC 5280 section 4.2.1.10 as OpenSSL
implements it, with one deliberate tightening: once a CA is constrained, every
SAN of every type must fall inside a permitted subtree (RFC 5280 would leave
types without a permitted subtree unconstrained, a classic escape).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

from cryptography import x509

from trustwire.errors import ConfigError

__all__ = [
    "IPAddress",
    "IPNetwork",
    "NameConstraints",
    "SubjectAltNames",
    "default_server_sans",
    "looks_like_hostname",
    "parse_dns_name",
    "parse_ip",
    "parse_ip_network",
    "parse_uri",
    "validate_cert_name",
    "validate_subject_text",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A certificate NAME doubles as a file name (HOME/certs/NAME.crt), so it is
# restricted to a portable, traversal-free alphabet. Every pattern here is applied with
# fullmatch: ``$`` would also match before a trailing newline, and "alice\n" would pass
# as a second, different "alice".
_CERT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SPIFFE_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SPIFFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


def _refuse_controls(value: str, what: str) -> None:
    """Whole-string check: a newline, control or invisible formatting character (zero-width,
    bidi override) anywhere is refused, not stripped: a name that prints like another
    must not become a second one."""
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise ConfigError(f"invalid {what} {value!r}: it contains a newline, control or "
                          "invisible character", hint="type it again as plain printable text")


def validate_subject_text(value: str, what: str = "organizational unit") -> str:
    """Check free text for a subject field (an OU): 1-64 characters (X.520's upper bound),
    no newline or control character (that would print like another value, or drive a
    terminal when shown).

    Returns:
        The value in Unicode NFC, so one text typed two ways (``e`` + combining accent, or
        ``é``) is one OU for ``--allow-ou``.

    Raises:
        ConfigError: when it is empty, too long, begins or ends with a space, or holds a
            control character.
    """
    _refuse_controls(value, what)
    if not value.strip():
        raise ConfigError(f"invalid {what} {value!r}: it is empty",
                          hint=f"give 1-64 characters, or leave the {what} out")
    if value != value.strip():
        raise ConfigError(f"invalid {what} {value!r}: it begins or ends with a space, which "
                          "would make a second value that prints like the first",
                          hint=f"write it without them: {value.strip()!r}")
    value = unicodedata.normalize("NFC", value)
    if len(value) > 64:
        raise ConfigError(f"invalid {what}: {len(value)} characters, more than the 64 allowed",
                          hint="shorten it to 1-64 characters (X.520's upper bound)")
    return value


def validate_cert_name(name: str) -> str:
    """Check a certificate NAME (CN, and the file stem in the home).

    Returns:
        The name unchanged.

    Raises:
        ConfigError: when it could escape the certs directory or is not portable.
    """
    if (not isinstance(name, str) or not _CERT_NAME.fullmatch(name)
            or name.endswith((".", ".key", ".crt")) or ".." in name):
        raise ConfigError(
            f"invalid certificate name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
        )
    return name


def _looks_like_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def parse_dns_name(value: str, *, allow_wildcard: bool = True) -> str:
    """Parse a DNS name for a SAN or a name constraint.

    Unicode names are converted to their ASCII (A-label) form; the result is
    lower-case without a trailing dot. A wildcard is allowed only as the whole
    left-most label of a name with at least two more labels (``*.example.com``).

    Raises:
        ConfigError: for IP addresses, empty labels, bad characters, or a
            misplaced wildcard.
    """
    _refuse_controls(value, "DNS name")
    raw = value.strip()
    if _looks_like_ip(raw):
        raise ConfigError(f"{value!r} is an IP address, not a DNS name; pass it with --ip instead")
    name = raw.rstrip(".").lower()
    if not name:
        raise ConfigError("empty DNS name")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise ConfigError(f"invalid DNS name {value!r}: it cannot be encoded as IDNA") from exc
    if len(name) > 253:
        raise ConfigError(f"invalid DNS name {value!r}: longer than 253 characters")
    labels = name.split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0:
            if not allow_wildcard:
                raise ConfigError(f"invalid DNS name {value!r}: a wildcard is not allowed here")
            if len(labels) < 3:
                raise ConfigError(
                    f"invalid DNS name {value!r}: a wildcard needs at least two labels after it",
                )
            continue
        if not label:
            raise ConfigError(f"invalid DNS name {value!r}: it has an empty label ('..')")
        if "*" in label:
            raise ConfigError(
                f"invalid DNS name {value!r}: '*' is allowed only as the whole left-most label",
            )
        if not _DNS_LABEL.fullmatch(label):
            raise ConfigError(
                f"invalid DNS name {value!r}: each label needs 1-63 letters, digits or '-' "
                "and may not start or end with '-'",
            )
    return name


def looks_like_hostname(value: str) -> bool:
    """True when ``value`` is a multi-label DNS name (OpenSSL then checks a CN like one)."""
    if "." not in value.strip("."):
        return False
    try:
        parse_dns_name(value, allow_wildcard=True)
    except ConfigError:
        return False
    return True


def parse_ip(value: str) -> IPAddress:
    """Parse an IPv4 or IPv6 address (brackets around IPv6 allowed).

    Raises:
        ConfigError: when it is not an address.
    """
    _refuse_controls(value, "IP address")
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError as exc:
        raise ConfigError(f"invalid IP address {value!r}") from exc


def parse_ip_network(value: str) -> IPNetwork:
    """Parse a CIDR network such as ``10.0.0.0/8`` (host bits must be zero).

    Raises:
        ConfigError: when it is not a network in CIDR form.
    """
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ConfigError(
            f"invalid IP network {value!r}: use CIDR form with zero host bits, like 10.0.0.0/8",
        ) from exc


def parse_uri(value: str) -> str:
    """Parse a URI SAN; SPIFFE IDs are checked against the SPIFFE ID rules.

    Raises:
        ConfigError: when it is not an absolute URI with a host, or not a
            valid SPIFFE ID for the ``spiffe`` scheme.
    """
    _refuse_controls(value, "URI")
    raw = value.strip()
    if any(ch.isspace() for ch in raw) or not raw.isascii():
        raise ConfigError(f"invalid URI {value!r}: it contains spaces or non-ASCII characters")
    parts = urllib.parse.urlsplit(raw)
    if not parts.scheme or not _URI_SCHEME.fullmatch(parts.scheme):
        raise ConfigError(f"invalid URI {value!r}: it needs a scheme, like spiffe://domain/path")
    if not parts.hostname:
        raise ConfigError(f"invalid URI {value!r}: it needs a host, like spiffe://domain/path")
    if parts.scheme == "spiffe":
        _check_spiffe_id(raw, parts)
    return raw


def _check_spiffe_id(value: str, parts: urllib.parse.SplitResult) -> None:
    if not value.startswith("spiffe://"):  # urlsplit lower-cases the scheme; look at the text
        raise ConfigError(f"invalid SPIFFE ID {value!r}: the scheme must be lower-case 'spiffe'")
    if parts.query or parts.fragment or parts.port is not None or "@" in parts.netloc:
        raise ConfigError(
            f"invalid SPIFFE ID {value!r}: no port, user, query or fragment is allowed",
        )
    if not _SPIFFE_TRUST_DOMAIN.fullmatch(parts.netloc):
        raise ConfigError(
            f"invalid SPIFFE ID {value!r}: the trust domain may hold only lower-case letters, "
            "digits, '.', '_' and '-'",
        )
    if parts.path:
        segments = parts.path.split("/")[1:]
        for segment in segments:
            if segment in ("", ".", "..") or not _SPIFFE_SEGMENT.fullmatch(segment):
                raise ConfigError(
                    f"invalid SPIFFE ID {value!r}: path segments must be non-empty, "
                    "not '.' or '..', and use only letters, digits, '.', '_' and '-'",
                )


@dataclass(frozen=True, kw_only=True)
class SubjectAltNames:
    """The subjectAltName of a certificate, parsed and normalised."""

    dns: tuple[str, ...] = ()
    """DNS names (A-labels, lower-case)."""
    ips: tuple[IPAddress, ...] = ()
    """IP addresses."""
    uris: tuple[str, ...] = ()
    """URIs, such as SPIFFE IDs."""

    @classmethod
    def parse(
        cls, *, dns: list[str] | tuple[str, ...] = (), ips: list[str] | tuple[str, ...] = (),
        uris: list[str] | tuple[str, ...] = (),
    ) -> SubjectAltNames:
        """Parse user input; duplicates are removed, order is kept.

        Raises:
            ConfigError: for any invalid name.
        """
        return cls(
            dns=tuple(dict.fromkeys(parse_dns_name(d) for d in dns)),
            ips=tuple(dict.fromkeys(parse_ip(i) for i in ips)),
            uris=tuple(dict.fromkeys(parse_uri(u) for u in uris)),
        )

    @classmethod
    def from_extension(cls, ext: x509.SubjectAlternativeName) -> SubjectAltNames:
        """Read names from a certificate's or CSR's SAN extension, as found (no validation)."""
        return cls(
            dns=tuple(ext.get_values_for_type(x509.DNSName)),
            ips=tuple(ext.get_values_for_type(x509.IPAddress)),  # type: ignore[arg-type]
            uris=tuple(ext.get_values_for_type(x509.UniformResourceIdentifier)),
        )

    def validated(self) -> SubjectAltNames:
        """Re-parse names that came from a foreign CSR; raises ConfigError if any is invalid."""
        return SubjectAltNames.parse(
            dns=self.dns, ips=[str(i) for i in self.ips], uris=self.uris,
        )

    def is_empty(self) -> bool:
        return not (self.dns or self.ips or self.uris)

    def to_extension(self) -> x509.SubjectAlternativeName:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in self.dns]
        names += [x509.IPAddress(i) for i in self.ips]
        names += [x509.UniformResourceIdentifier(u) for u in self.uris]
        return x509.SubjectAlternativeName(names)

    def as_dict(self) -> dict[str, list[str]]:
        return {"dns": list(self.dns), "ip": [str(i) for i in self.ips], "uri": list(self.uris)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> SubjectAltNames:
        return cls(
            dns=tuple(data.get("dns", ())),
            ips=tuple(ipaddress.ip_address(i) for i in data.get("ip", ())),
            uris=tuple(data.get("uri", ())),
        )

    def describe(self) -> list[str]:
        """Names as ``DNS:x``, ``IP:y``, ``URI:z`` strings, the form OpenSSL prints."""
        return (
            [f"DNS:{d}" for d in self.dns]
            + [f"IP:{i}" for i in self.ips]
            + [f"URI:{u}" for u in self.uris]
        )


def _dns_within(name: str, base: str) -> bool:
    """RFC 5280 DNS subtree match; a leading '.' in ``base`` means subdomains only."""
    name = name.lower().rstrip(".")
    base = base.lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
        return name == base.lstrip(".") or name.endswith("." + base.lstrip("."))
    if base.startswith("."):
        return name.endswith(base)
    return name == base or name.endswith("." + base)


def _uri_host_within(host: str, base: str) -> bool:
    """RFC 5280 URI constraint: applies to the host; '.' prefix means subdomains only."""
    host = host.lower()
    base = base.lower()
    if base.startswith("."):
        return host.endswith(base)
    return host == base


@dataclass(frozen=True, kw_only=True)
class NameConstraints:
    """Permitted subtrees of an intermediate CA (RFC 5280 nameConstraints)."""

    dns: tuple[str, ...] = ()
    """Permitted DNS domains: ``example.internal`` covers it and its subdomains."""
    ips: tuple[IPNetwork, ...] = ()
    """Permitted IP networks."""
    uri_hosts: tuple[str, ...] = ()
    """Permitted URI hosts (``spiffe://example.org`` permits host ``example.org``)."""

    @classmethod
    def parse(
        cls, *, dns: list[str] | tuple[str, ...] = (), ips: list[str] | tuple[str, ...] = (),
        uris: list[str] | tuple[str, ...] = (),
    ) -> NameConstraints:
        """Parse ``--permit-*`` values.

        Raises:
            ConfigError: for invalid domains, networks or URIs.
        """
        hosts: list[str] = []
        for uri in uris:
            text = uri.strip()
            if "://" in text:
                parsed = urllib.parse.urlsplit(text)
                if not parsed.hostname or (parsed.path not in ("", "/")):
                    raise ConfigError(
                        f"invalid --permit-uri {uri!r}: give a scheme and host only, "
                        "like spiffe://example.org",
                    )
                text = parsed.hostname
            prefix = "." if text.startswith(".") else ""
            hosts.append(prefix + parse_dns_name(text.lstrip("."), allow_wildcard=False))
        domains = []
        for d in dns:
            prefix = "." if d.strip().startswith(".") else ""
            domains.append(prefix + parse_dns_name(d.strip().lstrip("."), allow_wildcard=False))
        return cls(
            dns=tuple(dict.fromkeys(domains)),
            ips=tuple(dict.fromkeys(parse_ip_network(n) for n in ips)),
            uri_hosts=tuple(dict.fromkeys(hosts)),
        )

    def is_empty(self) -> bool:
        return not (self.dns or self.ips or self.uri_hosts)

    def violations(self, sans: SubjectAltNames, *, common_name: str | None = None) -> list[str]:
        """Names that fall outside the permitted subtrees (empty list when all fit).

        A CN that looks like a multi-label host name is checked like a DNS
        name, as OpenSSL does.
        """
        if self.is_empty():
            return []
        bad: list[str] = []
        dns_names = list(sans.dns)
        if common_name and looks_like_hostname(common_name):
            dns_names.append(common_name)
        bad += [
            f"DNS:{d}" for d in dns_names if not any(_dns_within(d, base) for base in self.dns)
        ]
        bad += [f"IP:{ip}" for ip in sans.ips if not any(ip in net for net in self.ips)]
        for uri in sans.uris:
            host = urllib.parse.urlsplit(uri).hostname or ""
            if not any(_uri_host_within(host, base) for base in self.uri_hosts):
                bad.append(f"URI:{uri}")
        return list(dict.fromkeys(bad))

    def to_extension(self) -> x509.NameConstraints:
        """The critical nameConstraints extension.

        IP ranges with no permitted entry are excluded outright (0.0.0.0/0 and
        ::/0), because RFC 5280 would otherwise leave them unconstrained.
        """
        permitted: list[x509.GeneralName] = [x509.DNSName(d) for d in self.dns]
        permitted += [x509.IPAddress(n) for n in self.ips]
        permitted += [x509.UniformResourceIdentifier(h) for h in self.uri_hosts]
        excluded: list[x509.GeneralName] = []
        if not self.ips:
            excluded = [
                x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")),
                x509.IPAddress(ipaddress.ip_network("::/0")),
            ]
        return x509.NameConstraints(
            permitted_subtrees=permitted or None, excluded_subtrees=excluded or None,
        )

    @classmethod
    def from_extension(cls, ext: x509.NameConstraints) -> NameConstraints:
        permitted = ext.permitted_subtrees or []
        return cls(
            dns=tuple(n.value for n in permitted if isinstance(n, x509.DNSName)),
            ips=tuple(n.value for n in permitted if isinstance(n, x509.IPAddress)),  # type: ignore[misc]
            uri_hosts=tuple(
                n.value for n in permitted if isinstance(n, x509.UniformResourceIdentifier)
            ),
        )

    def describe(self) -> list[str]:
        return (
            [f"DNS:{d}" for d in self.dns]
            + [f"IP:{n}" for n in self.ips]
            + [f"URI host:{h}" for h in self.uri_hosts]
        )


def default_server_sans(name: str, sans: SubjectAltNames) -> SubjectAltNames:
    """A server certificate without DNS or IP names gets NAME as its DNS SAN (DESIGN.md).

    Raises:
        ConfigError: when NAME is not a valid DNS name.
    """
    if sans.dns or sans.ips:
        return sans
    try:
        dns = parse_dns_name(name, allow_wildcard=False)
    except ConfigError as exc:
        raise ConfigError(
            f"server certificate {name!r} needs a DNS name or IP: {name!r} is not a valid DNS "
            "name, so pass --dns HOST or --ip ADDRESS",
        ) from exc
    return SubjectAltNames(dns=(dns,), ips=sans.ips, uris=sans.uris)

