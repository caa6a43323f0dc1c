"""Who may connect: allow-lists over a verified peer identity. Pure.

A :class:`Policy` is a value. With no rules it admits every peer whose
certificate verified (the CA is the only gate). Once any rule is given it
denies by default and admits a peer that matches *any* rule (the lists are
disjunctive, as in ghostunnel's ``--allow-*``):

* ``cn`` / ``ou``: exact, case-sensitive subject fields;
* ``dns``: DNS SANs, with ``*.`` matching exactly one left-most label;
* ``uri``: URI SANs such as SPIFFE IDs, where ``*`` matches within one path
  segment and ``**`` matches any remainder (``spiffe://td/ns/prod/*``);
* ``fingerprint``: SHA-256 of the certificate, compared in constant time.

Policy files are TOML::

    [allow]
    cn = ["alice", "bob"]
    uri = ["spiffe://example.org/ns/prod/*"]
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trustwire.errors import ConfigError
from trustwire.tls.identity import PeerIdentity
from trustwire.tomlfile import load_toml

__all__ = ["Decision", "Policy"]

_KEYS = ("cn", "ou", "dns", "uri", "fingerprint")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a policy check, with the reason to log."""

    allowed: bool
    reason: str


def _fingerprint(value: str) -> str:
    cleaned = value.strip().lower().replace(":", "").removeprefix("sha256:")
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ConfigError(
            f"invalid fingerprint {value!r}: give the SHA-256 as 64 hex digits (colons allowed)",
        )
    return cleaned


def _dns_pattern(value: str) -> str:
    pattern = value.strip().lower().rstrip(".")
    if not pattern or "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*.")):
        raise ConfigError(f"invalid DNS pattern {value!r}: use a name or *.domain")
    return pattern


@functools.lru_cache(maxsize=256)
def _uri_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(
        ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex + r"\Z")


def _dns_match(name: str, pattern: str) -> bool:
    name = name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, tail = name.partition(".")
        return bool(head) and tail == pattern[2:]
    return name == pattern


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Allow-lists; empty everywhere means "any verified peer"."""

    cn: frozenset[str] = field(default_factory=frozenset)
    """Common names allowed."""
    ou: frozenset[str] = field(default_factory=frozenset)
    """Organizational units allowed."""
    dns: frozenset[str] = field(default_factory=frozenset)
    """DNS SAN names or ``*.domain`` patterns allowed."""
    uri: frozenset[str] = field(default_factory=frozenset)
    """URI SAN patterns allowed (``*`` within a segment, ``**`` across)."""
    fingerprint: frozenset[str] = field(default_factory=frozenset)
    """SHA-256 certificate fingerprints allowed (normalised hex)."""

    @classmethod
    def build(
        cls, *, cn: Iterable[str] = (), ou: Iterable[str] = (), dns: Iterable[str] = (),
        uri: Iterable[str] = (), fingerprint: Iterable[str] = (),
    ) -> Policy:
        """Normalise and validate raw values (from flags or a file).

        Raises:
            ConfigError: an empty value, a malformed DNS pattern or fingerprint.
        """
        for key, values in (("cn", cn), ("ou", ou), ("uri", uri)):
            for value in values:
                if not isinstance(value, str) or not value.strip():
                    raise ConfigError(f"empty or non-text value in the {key} allow-list")
        return cls(
            cn=frozenset(cn), ou=frozenset(ou), dns=frozenset(_dns_pattern(d) for d in dns),
            uri=frozenset(uri), fingerprint=frozenset(_fingerprint(f) for f in fingerprint),
        )

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
        policy = cls.build(**lists)
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
        """Decide whether ``peer`` may proceed; the reason names the matching rule or the miss."""
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
                if _uri_regex(pattern).match(uri):
                    return Decision(True, f"URI {uri} matches {pattern}")
        for allowed in self.fingerprint:
            if hmac.compare_digest(peer.fingerprint, allowed):
                return Decision(True, "certificate fingerprint is allowed")
        return Decision(False, f"{_describe_peer(peer)} matches no allow rule ({self.describe()})")


def _describe_peer(peer: PeerIdentity) -> str:
    parts = [f"CN={peer.common_name}"] if peer.common_name else []
    parts += [f"OU={ou}" for ou in peer.organizational_units]
    parts += [f"URI:{u}" for u in peer.uris] + [f"DNS:{d}" for d in peer.dns]
    return ", ".join(parts) or f"serial {peer.serial_hex}"
