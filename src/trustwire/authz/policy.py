"""Who may connect: allow-lists over a verified peer identity. Pure.

A :class:`Policy` is a value, validated and normalised when it is made (by
``Policy(...)``, :meth:`Policy.build` or a file alike). With no rules it admits
every peer whose certificate verified (the CA is the only gate). Once any rule
is given it denies by default and admits a peer that matches *any* rule (the
lists are disjunctive, as in ghostunnel's ``--allow-*``):

* ``cn`` / ``ou``: exact, case-sensitive subject fields;
* ``dns``: DNS SANs, with ``*.`` matching exactly one left-most label;
* ``uri``: URI SANs such as SPIFFE IDs, matched segment by segment (see below);
* ``fingerprint``: SHA-256 of the certificate (hex, colons and a ``sha256:``
  prefix allowed), compared in constant time.

URI patterns are SPIFFE-aware. A pattern is ``scheme://authority/seg/seg/...``;
``*`` inside a segment matches one or more characters of that segment, and a
final ``**`` segment matches one or more further segments. A URI only matches
when it is canonical: no empty, ``.`` or ``..`` segment, no query or fragment,
no percent-encoding, no space, control or non-ASCII character anywhere. So
``spiffe://td/ns/*`` admits ``spiffe://td/ns/web`` but never ``spiffe://td/ns/..``,
``spiffe://td/ns/a%2Fb`` or ``spiffe://td/ns/web?x``, and ``spiffe://td/**`` never
admits ``spiffe://td/../../admin``.

Policy files are TOML::

    [allow]
    cn = ["alice", "bob"]
    uri = ["spiffe://example.org/ns/prod/*"]
"""

from __future__ import annotations

import functools
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trustwire.errors import ConfigError
from trustwire.identity import PeerIdentity
from trustwire.tomlfile import load_toml

__all__ = ["Decision", "Policy", "describe_peer"]

_KEYS = ("cn", "ou", "dns", "uri", "fingerprint")

# Characters a wildcard may match inside a URI path segment: RFC 3986 "unreserved"
# (what SPIFFE IDs allow, plus '~'). Never '/', '%', '?', '#', spaces or controls.
_SEGMENT_CHARS = "A-Za-z0-9._~-"
_SEGMENT = re.compile(f"[{_SEGMENT_CHARS}]+")
_AUTHORITY = re.compile(r"[A-Za-z0-9._~:@\[\]-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of an admission check.

    ``reason`` is safe to tell the peer (it names the peer, never the allow-list);
    ``detail`` adds what only the operator should see (the rules that missed).
    """

    allowed: bool
    reason: str
    code: str = "allowed"
    """Stable code: allowed, policy, revoked, expired, not-yet-valid, crl-missing,
    crl-expired, crl-not-yet-valid, untrusted-ca, no-certificate."""
    detail: str = ""

    @property
    def log_reason(self) -> str:
        """What the audit log records: the reason and, when there is one, the detail."""
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


def _has_control(value: str) -> bool:
    """Control and invisible formatting characters (zero-width, bidi overrides)."""
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in value)


def _text_rule(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"empty or non-text value in the {key} allow-list")
    if _has_control(value):
        raise ConfigError(f"the {key} allow-list value {value!r} contains a control character",
                          hint="remove the newline or control character from the value")
    return value


def _fingerprint(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError("a fingerprint must be text: 64 hex digits")
    cleaned = value.strip().lower()
    cleaned = cleaned.removeprefix("sha256:").removeprefix("sha256=").replace(":", "")
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ConfigError(
            f"invalid fingerprint {value!r}: give the SHA-256 as 64 hex digits "
            "(colons and a sha256: prefix allowed)",
        )
    return cleaned


_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def _dns_pattern(value: object) -> str:
    text = _text_rule("dns", value)
    pattern = text.strip().lower().rstrip(".")
    bad = ConfigError(f"invalid DNS pattern {value!r}: use a name or *.domain")
    if not pattern.isascii():  # certificates carry A-labels: compare like with like
        try:
            pattern = pattern.encode("idna").decode("ascii")
        except UnicodeError:
            raise bad from None
    labels = pattern.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if not labels:
            raise bad
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise bad
    return pattern


@dataclass(frozen=True, slots=True)
class _UriPattern:
    prefix: str
    """``scheme://authority`` (scheme and authority compared case-insensitively)."""
    segments: tuple[re.Pattern[str] | str, ...]
    """Literal segments as text, wildcard segments as compiled patterns."""
    rest: bool
    """The pattern ends with ``**``: one or more further segments."""


def _split_uri(uri: str) -> tuple[str, list[str]] | None:
    """``(scheme://authority lower-cased, path segments)`` of a canonical URI, else None."""
    if not uri.isascii() or _has_control(uri) or any(c in uri for c in " ?#%\\"):
        return None
    scheme, sep, rest = uri.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    authority, slash, path = rest.partition("/")
    if not authority or not _AUTHORITY.fullmatch(authority):
        return None
    segments = path.split("/") if slash else []
    if any(s in ("", ".", "..") or not _SEGMENT.fullmatch(s) for s in segments):
        return None
    return f"{scheme.lower()}://{authority.lower()}", segments


def _uri_rule(value: object) -> str:
    text = _text_rule("uri", value).strip()
    bad = ConfigError(
        f"invalid URI pattern {value!r}: use scheme://authority/segment/... with '*' inside a "
        "segment and '**' only as the last segment",
        hint="for example spiffe://example.org/ns/prod/* or spiffe://example.org/ns/**",
    )
    scheme, sep, rest = text.partition("://")
    authority, slash, path = rest.partition("/")
    segments = path.split("/") if slash else []
    if (not sep or not _SCHEME.fullmatch(scheme) or not authority or "*" in authority
            or not _AUTHORITY.fullmatch(authority) or any(c in text for c in " ?#%\\")
            or not text.isascii()):
        raise bad
    for index, segment in enumerate(segments):
        if segment == "**" and index == len(segments) - 1:
            continue
        if segment in ("", ".", "..") or "**" in segment or not _SEGMENT.fullmatch(
                segment.replace("*", "x")):
            raise bad
    return text


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> _UriPattern:
    scheme, _, rest = pattern.partition("://")
    authority, slash, path = rest.partition("/")
    segments = path.split("/") if slash else []
    tail = bool(segments) and segments[-1] == "**"
    if tail:
        segments = segments[:-1]
    compiled: list[re.Pattern[str] | str] = []
    for segment in segments:
        if "*" in segment:
            regex = "".join(f"[{_SEGMENT_CHARS}]+" if part == "*" else re.escape(part)
                            for part in re.split(r"(\*)", segment) if part)
            compiled.append(re.compile(regex))
        else:
            compiled.append(segment)
    return _UriPattern(prefix=f"{scheme.lower()}://{authority.lower()}",
                       segments=tuple(compiled), rest=tail)


def uri_matches(uri: str, pattern: str) -> bool:
    """True when the URI SAN ``uri`` matches the (validated) ``pattern``."""
    split = _split_uri(uri)
    if split is None:
        return False
    prefix, segments = split
    compiled = _compile(pattern)
    if prefix != compiled.prefix:
        return False
    wanted = len(compiled.segments)
    if len(segments) < wanted + (1 if compiled.rest else 0):
        return False
    if not compiled.rest and len(segments) != wanted:
        return False
    for segment, rule in zip(segments, compiled.segments, strict=False):
        if isinstance(rule, str):
            if segment != rule:
                return False
        elif not rule.fullmatch(segment):
            return False
    return True


def _dns_match(name: str, pattern: str) -> bool:
    if not name.isascii():  # before lower(): U+212A (Kelvin) lower-cases to "k"
        return False
    name = name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, tail = name.partition(".")
        # The label the wildcard stands for must be a real label: not empty, and no NUL,
        # space or other character a lenient CA let through.
        return tail == pattern[2:] and _DNS_LABEL.fullmatch(head) is not None
    return name == pattern


def _frozen(key: str, values: object) -> frozenset[str]:
    if isinstance(values, (str, bytes)):
        raise ConfigError(f"the {key} allow-list must be a collection of values, not one string",
                          hint=f'write {key}={{"{values!s}"}} (a set), not {key}="{values!s}"')
    if not isinstance(values, Iterable):
        raise ConfigError(f"the {key} allow-list must be a collection of values")
    return frozenset(values)


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Allow-lists; empty everywhere means "any verified peer".

    Raises:
        ConfigError: a value that is empty, not text, holds a control character, or is
            a malformed DNS pattern, URI pattern or fingerprint.
    """

    cn: frozenset[str] = field(default_factory=frozenset)
    """Common names allowed."""
    ou: frozenset[str] = field(default_factory=frozenset)
    """Organizational units allowed."""
    dns: frozenset[str] = field(default_factory=frozenset)
    """DNS SAN names or ``*.domain`` patterns allowed (stored lower-case, no trailing dot)."""
    uri: frozenset[str] = field(default_factory=frozenset)
    """URI SAN patterns allowed (``*`` within a segment, a final ``**`` for the rest)."""
    fingerprint: frozenset[str] = field(default_factory=frozenset)
    """SHA-256 certificate fingerprints allowed (stored as 64 lower-case hex digits)."""

    def __post_init__(self) -> None:
        normalised = {
            "cn": frozenset(_text_rule("cn", v) for v in _frozen("cn", self.cn)),
            "ou": frozenset(_text_rule("ou", v) for v in _frozen("ou", self.ou)),
            "dns": frozenset(_dns_pattern(v) for v in _frozen("dns", self.dns)),
            "uri": frozenset(_uri_rule(v) for v in _frozen("uri", self.uri)),
            "fingerprint": frozenset(_fingerprint(v) for v in _frozen("fingerprint",
                                                                       self.fingerprint)),
        }
        for key, value in normalised.items():
            object.__setattr__(self, key, value)

    @classmethod
    def build(
        cls, *, cn: Iterable[str] = (), ou: Iterable[str] = (), dns: Iterable[str] = (),
        uri: Iterable[str] = (), fingerprint: Iterable[str] = (),
    ) -> Policy:
        """A policy from raw values (flags, lists); the same checks as the constructor.

        Raises:
            ConfigError: as the constructor.
        """
        return cls(cn=_frozen("cn", cn), ou=_frozen("ou", ou), dns=_frozen("dns", dns),
                   uri=_frozen("uri", uri), fingerprint=_frozen("fingerprint", fingerprint))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, source: str = "policy") -> Policy:
        """A policy from parsed TOML ``{"allow": {"cn": [...], ...}}``.

        Raises:
            ConfigError: unknown sections or keys (a typo must not silently widen or
                narrow access), non-list values, or no rules at all.
        """
        unknown = set(data) - {"allow"}
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}; "
                              "only [allow] exists")
        allow = data.get("allow", {})
        if not isinstance(allow, Mapping):
            raise ConfigError(f"{source}: [allow] must be a table")
        bad = set(allow) - set(_KEYS)
        if bad:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(bad))} in [allow]; "
                              f"use {', '.join(_KEYS)}")
        lists: dict[str, list[str]] = {}
        for key, value in allow.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: allow.{key} must be a list of strings")
            lists[key] = value
        try:
            policy = cls.build(**lists)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc.message}", hint=exc.hint) from exc
        if policy.is_open():
            raise ConfigError(f"{source} has no allow rules, so it would admit no one",
                              hint='add rules such as cn = ["alice"] under [allow]')
        return policy

    @classmethod
    def from_file(cls, path: Path) -> Policy:
        """Load a TOML policy file.

        Raises:
            ConfigError: unreadable file, TOML syntax error, or invalid rules.
        """
        return cls.from_mapping(load_toml(path, "the policy file"), source=str(path))

    def merged(self, other: Policy) -> Policy:
        """Both policies' rules together (flags plus a file)."""
        return Policy(cn=self.cn | other.cn, ou=self.ou | other.ou, dns=self.dns | other.dns,
                      uri=self.uri | other.uri, fingerprint=self.fingerprint | other.fingerprint)

    def is_open(self) -> bool:
        """True when there are no rules: every verified peer is admitted."""
        return not (self.cn or self.ou or self.dns or self.uri or self.fingerprint)

    def describe(self) -> str:
        if self.is_open():
            return "any certificate from the CA"
        parts = [f"{key} {', '.join(sorted(values))}" for key, values in (
            ("CN", self.cn), ("OU", self.ou), ("DNS", self.dns), ("URI", self.uri),
            ("fingerprint", {f[:16] + "…" for f in self.fingerprint})) if values]
        return "allow " + "; ".join(parts)

    def check(self, peer: PeerIdentity) -> Decision:
        """Decide whether ``peer`` may proceed; the reason names the matching rule or the
        refused identity (the rules that missed are in ``detail``, for the audit log)."""
        if self.is_open():
            return Decision(True, "no policy: any verified certificate is allowed")
        if peer.common_name is not None and peer.common_name in self.cn:
            return Decision(True, f"CN {peer.common_name} is allowed")
        for ou in peer.organizational_units:
            if ou in self.ou:
                return Decision(True, f"OU {ou} is allowed")
        for name in peer.dns:
            for pattern in self.dns:
                if _dns_match(name, pattern):
                    return Decision(True, f"DNS {name} matches {pattern}")
        for uri in peer.uris:
            for pattern in self.uri:
                if uri_matches(uri, pattern):
                    return Decision(True, f"URI {uri} matches {pattern}")
        for allowed in self.fingerprint:
            if hmac.compare_digest(peer.fingerprint, allowed):
                return Decision(True, "certificate fingerprint is allowed")
        return Decision(False, f"{describe_peer(peer)} is not allowed by the access policy",
                        "policy", f"no allow rule matches: {self.describe()}")


def describe_peer(peer: PeerIdentity) -> str:
    """The identity in a few words: ``CN=alice, OU=eng, URI:spiffe://...`` (or its serial)."""
    parts = [f"CN={peer.common_name}"] if peer.common_name else []
    parts += [f"OU={ou}" for ou in peer.organizational_units]
    parts += [f"URI:{u}" for u in peer.uris] + [f"DNS:{d}" for d in peer.dns]
    return ", ".join(parts) or f"serial {peer.serial_hex}"
