"""What a good server looks like: Mozilla's server-side TLS guidelines 6.0, or yours. Pure.

The two Mozilla configurations are copied from
https://ssl-config.mozilla.org/guidelines/6.0.json and pinned here, so a
report always says which rules it applied. A user profile is a TOML file that
starts from one of them (``base``) and overrides any key::

    name = "payments"
    base = "modern"
    maximum_certificate_lifespan = 30
    require_client_auth = true
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from trustwire.errors import ConfigError
from trustwire.tomlfile import load_toml

__all__ = ["GUIDELINES_HREF", "GUIDELINES_VERSION", "PROFILES", "Profile", "load_profile"]

GUIDELINES_VERSION = "6.0"
GUIDELINES_HREF = "https://ssl-config.mozilla.org/guidelines/6.0.json"


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The rules a probe judges a server by."""

    name: str
    source: str
    tls_versions: tuple[str, ...]
    ciphers: tuple[str, ...]
    """TLS 1.2 suites (OpenSSL names)."""
    ciphersuites: tuple[str, ...]
    """TLS 1.3 suites."""
    tls_curves: tuple[str, ...]
    """Key exchange groups (OpenSSL spellings; compared case-insensitively)."""
    certificate_types: tuple[str, ...]
    certificate_curves: tuple[str, ...]
    certificate_signatures: tuple[str, ...]
    rsa_key_size: int | None
    dh_param_size: int | None
    """Smallest DH prime, in bits (None: DHE is not part of the profile)."""
    ecdh_param_size: int | None
    """Smallest elliptic-curve group, in bits."""
    maximum_certificate_lifespan: int
    """Days."""
    hsts_min_age: int
    ocsp_staple: bool
    server_preferred_order: bool
    require_client_auth: bool = False
    """If true, a server that does not demand and check client certificates fails."""


_CURVES = ("X25519MLKEM768", "X25519", "prime256v1", "secp384r1")
_SUITES_13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

PROFILES: dict[str, Profile] = {
    "modern": Profile(
        name="modern", source=f"Mozilla Server Side TLS {GUIDELINES_VERSION} (modern)",
        tls_versions=("TLSv1.3",), ciphers=(), ciphersuites=_SUITES_13, tls_curves=_CURVES,
        certificate_types=("ecdsa",), certificate_curves=("prime256v1", "secp384r1"),
        certificate_signatures=("ecdsa-with-SHA256", "ecdsa-with-SHA384", "ecdsa-with-SHA512"),
        rsa_key_size=None, dh_param_size=None, ecdh_param_size=256,
        maximum_certificate_lifespan=90, hsts_min_age=63072000,
        ocsp_staple=True, server_preferred_order=False,
    ),
    "intermediate": Profile(
        name="intermediate",
        source=f"Mozilla Server Side TLS {GUIDELINES_VERSION} (intermediate)",
        tls_versions=("TLSv1.2", "TLSv1.3"),
        ciphers=("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                 "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                 "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"),
        ciphersuites=_SUITES_13, tls_curves=_CURVES, certificate_types=("ecdsa", "rsa"),
        certificate_curves=("prime256v1", "secp384r1"),
        certificate_signatures=("sha256WithRSAEncryption", "ecdsa-with-SHA256",
                                "ecdsa-with-SHA384", "ecdsa-with-SHA512"),
        rsa_key_size=2048, dh_param_size=2048, ecdh_param_size=256,
        maximum_certificate_lifespan=366, hsts_min_age=63072000,
        ocsp_staple=True, server_preferred_order=False,
    ),
}

_OPTIONAL_NUMBERS = {"rsa_key_size", "dh_param_size", "ecdh_param_size"}
_TUPLE_KEYS = {"tls_versions", "ciphers", "ciphersuites", "tls_curves", "certificate_types",
               "certificate_curves", "certificate_signatures"}


def load_profile(spec: str) -> Profile:
    """``modern``, ``intermediate``, or the path of a TOML profile.

    Raises:
        ConfigError: unknown name, unreadable or invalid file, unknown keys, wrong types.
    """
    if spec in PROFILES:
        return PROFILES[spec]
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"unknown profile {spec!r}: use modern, intermediate or a TOML file")
    data = load_toml(path, "the profile")
    base_name = data.pop("base", "intermediate")
    if base_name not in PROFILES:
        raise ConfigError(f"{path}: base must be modern or intermediate, not {base_name!r}")
    known = {f.name for f in fields(Profile)} - {"source"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}",
                          hint=f"known keys: base, {', '.join(sorted(known))}")
    overrides: dict[str, Any] = {}
    for key, value in data.items():
        expected = type(getattr(PROFILES[base_name], key))
        if key in _TUPLE_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: {key} must be a list of strings")
            overrides[key] = tuple(value)
            continue
        if key in _OPTIONAL_NUMBERS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{path}: {key} must be a number of bits",
                                  hint="leave the key out to keep the base profile's value")
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: {key} must be a {expected.__name__}")
        overrides[key] = value
    name = str(overrides.pop("name", path.stem))
    return replace(PROFILES[base_name], name=name,
                   source=f"{path} (based on Mozilla {GUIDELINES_VERSION} {base_name})", **overrides)
