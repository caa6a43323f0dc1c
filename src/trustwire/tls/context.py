"""One SSLContext factory per side, with a reason written next to every default.

DESIGN.md's TLS defaults: TLS 1.2 minimum, 1.3 preferred; AEAD cipher suites
with ECDHE only; no compression, no renegotiation; hostname verification on;
client certificates required unless turned off; CRL checked when present;
strict X.509 verification. They follow Mozilla's server-side TLS guidelines:
``intermediate`` by default, ``modern`` (TLS 1.3 only) on request.

Configuration is data: :class:`ServerTLS` and :class:`ClientTLS` are frozen
dataclasses the CLI fills from flags; ``context()`` turns one into an
``ssl.SSLContext``. Contradictions raise :class:`ConfigError` at construction.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trustwire.errors import ConfigError, TLSError
from trustwire.pki.store import Home
from trustwire.tls import native

__all__ = ["INTERMEDIATE_CIPHERS", "MOZILLA_GROUPS", "ClientTLS", "Profile", "ServerTLS", "ticket_keys"]

INTERMEDIATE_CIPHERS = ":".join([
    # Mozilla Server Side TLS 6.0 "intermediate" TLS 1.2 suites (6.0 dropped DHE, as DESIGN.md
    # does): all AEAD with ECDHE forward secrecy. TLS 1.3 suites are OpenSSL's defaults (AEAD).
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


MOZILLA_GROUPS = "X25519:P-256:P-384"
"""Mozilla 6.0 tls_curves that OpenSSL 3.0 offers (X25519MLKEM768 needs OpenSSL 3.5)."""


class Profile(enum.Enum):
    """Mozilla server-side TLS profile."""

    INTERMEDIATE = "intermediate"
    """TLS 1.2 and 1.3, AEAD + ECDHE suites: every client from the last decade."""
    MODERN = "modern"
    """TLS 1.3 only."""

    @property
    def minimum_version(self) -> ssl.TLSVersion:
        return ssl.TLSVersion.TLSv1_3 if self is Profile.MODERN else ssl.TLSVersion.TLSv1_2


@functools.cache
def _process_secret() -> bytes:
    """This process's session-ticket secret, random and never stored.

    Made once, before ``--workers`` fork (the parent builds a context to validate the
    configuration), so every worker derives the same ticket keys: a client resumes on
    whichever worker it reaches. Restarting the server rotates it. Without it each
    context had its own key, and with two workers half of all resumptions fell back
    to full handshakes.
    """
    return os.urandom(32)


def ticket_keys(epoch: bytes) -> bytes:
    """Session-ticket keys (name, HMAC and AES key, as OpenSSL takes them) for ``epoch``.

    A listener passes the digest of the CA bundle and CRL it trusts as the epoch, so
    its ticket keys change exactly when those do: a ticket issued before a revocation
    or a CA change cannot even be decrypted afterwards, while workers (and reloads that
    change nothing about trust) keep resuming each other's sessions.
    """
    return HKDF(algorithm=hashes.SHA256(), length=native.TICKET_KEYS_SIZE, salt=None,
                info=b"trustwire session ticket keys").derive(_process_secret() + epoch)


def _harden(
    ctx: ssl.SSLContext, profile: Profile, minimum: ssl.TLSVersion | None,
    maximum: ssl.TLSVersion | None,
) -> None:
    floor = minimum or profile.minimum_version
    if floor < ssl.TLSVersion.TLSv1_2:
        raise ConfigError("TLS versions below 1.2 are not allowed (RFC 8996 deprecates them)")
    ctx.minimum_version = floor
    if maximum is not None:
        if maximum < floor:
            raise ConfigError("the maximum TLS version is below the minimum")
        ctx.maximum_version = maximum
    # CRIME: compression leaks secrets through ciphertext length.
    ctx.options |= ssl.OP_NO_COMPRESSION
    # Renegotiation: the source of triple-handshake and DoS bugs; TLS 1.3 has none.
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    # Only forward-secret AEAD suites for TLS 1.2 (no CBC, RSA key exchange, RC4, 3DES, NULL).
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    # Every suite left is strong, so follow the client's order (Mozilla 6.0:
    # server_preferred_order false): clients without AES hardware pick ChaCha20.
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # Key exchange: Mozilla 6.0's groups only (OpenSSL would also offer X448, P-521 and
    # finite-field groups). Best effort: native.set_groups is False where Python cannot.
    native.set_groups(ctx, MOZILLA_GROUPS)
    # Reject certificates that break RFC 5280 in ways lenient verifiers ignore
    # (non-critical basicConstraints on CAs, missing AKI, ...), as Python 3.13 does.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    # Never accept a chain ending below the trust anchor: the anchor is the root alone.
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0x80000)


def _load_crl(ctx: ssl.SSLContext, crl: Path) -> None:
    try:
        ctx.load_verify_locations(cafile=str(crl))
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load the CRL {crl}: {_reason(exc)}",
                       hint="regenerate it with `trustwire ca crl`") from exc
    # Check the leaf against its issuer's CRL; a missing or expired CRL fails closed.
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


_SWAP_HINT = ("pass the certificate (NAME.crt) with --cert and its key (NAME.key) with --key, "
              "or use --identity NAME")
_MISSING_HINT = "check the path, or use --identity NAME (`trustwire cert list` shows the names)"


def _pem_holds(path: Path) -> tuple[bool, bool]:
    """(has a certificate, has a private key), from the PEM labels; (False, False) if unreadable."""
    try:
        with path.open("rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return False, False
    return b"-----BEGIN CERTIFICATE-----" in data, b"PRIVATE KEY-----" in data


def _check_roles(cert: Path | None, key: Path | None, ca: Path | None) -> None:
    """Name the file that holds the wrong thing, where OpenSSL would only say "PEM lib".

    Raises:
        TLSError: a key where a certificate belongs, or the reverse.
    """
    for path, what in ((cert, "certificate"), (ca, "CA certificate")):
        if path is not None and _pem_holds(path) == (False, True):
            raise TLSError(f"{path} holds a private key, not a {what}",
                           hint=_SWAP_HINT if what == "certificate" else
                           "pass the CA certificate (HOME/ca/ca.crt) with --ca")
    if key is not None and _pem_holds(key) == (True, False):
        raise TLSError(f"{key} holds a certificate, not a private key", hint=_SWAP_HINT)


def _load_ca(ctx: ssl.SSLContext, ca: Path) -> None:
    _check_roles(None, None, ca)
    try:
        ctx.load_verify_locations(cafile=str(ca))
    except FileNotFoundError as exc:
        raise TLSError(f"cannot load the CA certificate {ca}: no such file",
                       hint="check the path given with --ca (leave --ca out and --identity NAME "
                            "uses the home's HOME/ca/ca.crt)") from exc
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load the CA certificate {ca}: {_reason(exc)}") from exc


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    _check_roles(cert, key, None)
    try:
        ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except FileNotFoundError as exc:
        raise TLSError(f"cannot load {exc.filename or cert}: no such file",
                       hint=_MISSING_HINT) from exc
    except (OSError, ssl.SSLError) as exc:
        reason = _reason(exc)
        if "KEY_VALUES_MISMATCH" in reason.upper() or "key values mismatch" in reason:
            raise TLSError(f"the key {key} does not belong to the certificate {cert}",
                           hint="pass the key that was issued with this certificate") from exc
        raise TLSError(f"cannot load the certificate {cert} and key {key}: {reason}") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


@dataclass(frozen=True, kw_only=True)
class ServerTLS:
    """How a server speaks TLS.

    Raises:
        ConfigError: client authentication without a CA, a CRL without a CA.
    """

    cert: Path
    """Certificate chain file (leaf first, then intermediates)."""
    key: Path
    """Private key file."""
    ca: Path | None = None
    """CA that issues client certificates; required unless ``client_auth`` is off."""
    crl: Path | None = None
    """CRL to check client certificates against."""
    client_auth: bool = True
    """Require a client certificate (mutual TLS)."""
    profile: Profile = Profile.INTERMEDIATE
    minimum_version: ssl.TLSVersion | None = None
    """Override the profile's lowest version (never below TLS 1.2)."""
    maximum_version: ssl.TLSVersion | None = None
    """Cap the version, for tests and interop checks."""
    keylog_filename: str | None = None
    """Write TLS secrets here (for Wireshark); only ever set from SSLKEYLOGFILE."""

    def __post_init__(self) -> None:
        if self.client_auth and self.ca is None:
            raise ConfigError("requiring client certificates needs a CA to verify them",
                              hint="pass --ca FILE (or --identity), or --no-client-auth")
        if self.crl is not None and self.ca is None:
            raise ConfigError("a CRL needs the CA it belongs to")

    @classmethod
    def from_identity(
        cls, home: Home | Path | str, name: str, *, client_auth: bool = True,
        profile: Profile = Profile.INTERMEDIATE, minimum_version: ssl.TLSVersion | None = None,
        maximum_version: ssl.TLSVersion | None = None, keylog_filename: str | None = None,
    ) -> ServerTLS:
        """The identity NAME from a home: its chain and key, the home's root and CRL.

        Raises:
            CANotFound, CertificateNotFound, KeyFileError
            StoreError: the home is unsafe, or its CRL is missing.
        """
        files = (home if isinstance(home, Home) else Home(home)).identity(name, crl=client_auth)
        return cls(cert=files.cert, key=files.key, ca=files.ca,
                   crl=files.crl, client_auth=client_auth,
                   profile=profile, minimum_version=minimum_version,
                   maximum_version=maximum_version, keylog_filename=keylog_filename)

    def _trust_digest(self) -> bytes:
        digest = hashlib.sha256(b"client-auth" if self.client_auth else b"no-client-auth")
        for path in (self.ca, self.crl):
            data = path.read_bytes() if path is not None else b""
            digest.update(len(data).to_bytes(8, "big") + data)
        return digest.digest()

    def context(self) -> ssl.SSLContext:
        """A fresh server context.

        Raises:
            TLSError: unreadable or mismatched certificate, key, CA or CRL.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _harden(ctx, self.profile, self.minimum_version, self.maximum_version)
        _load_chain(ctx, self.cert, self.key)
        if self.ca is not None:
            _load_ca(ctx, self.ca)
        if self.crl is not None:
            _load_crl(ctx, self.crl)
        ctx.verify_mode = ssl.CERT_REQUIRED if self.client_auth else ssl.CERT_NONE
        # One TLS 1.3 session ticket per handshake, not OpenSSL's two: OpenSSL 3.0 copies
        # the session (re-parsing the client's certificate) for each ticket, which cost
        # 15% of a full mTLS handshake (bench/run.py profile). A client resuming gets a
        # fresh ticket on every resumed connection; trustwire's client needs just one.
        ctx.num_tickets = 1
        # Keys derived from this context's own trust (CA and CRL files): contexts trusting
        # different CAs never open each other's tickets, while workers (and reloads) with
        # the same files do. A listener re-keys its contexts per reload (net/gate.py).
        native.set_ticket_keys(ctx, ticket_keys(self._trust_digest()))
        if self.keylog_filename:
            ctx.keylog_filename = self.keylog_filename
        return ctx


@dataclass(frozen=True, kw_only=True)
class ClientTLS:
    """How a client speaks TLS.

    Raises:
        ConfigError: a certificate without its key or the reverse.
    """

    ca: Path | None = None
    """CA to verify the server with; None means the system's trust store."""
    cert: Path | None = None
    """Client certificate chain (for mutual TLS)."""
    key: Path | None = None
    crl: Path | None = None
    """CRL to check the server's certificate against."""
    server_name: str | None = None
    """Name to send as SNI and verify the certificate against, instead of the host."""
    profile: Profile = Profile.INTERMEDIATE
    minimum_version: ssl.TLSVersion | None = None
    maximum_version: ssl.TLSVersion | None = None
    keylog_filename: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError("a client certificate needs its key and the reverse",
                              hint="pass both --cert and --key")

    @classmethod
    def from_identity(
        cls, home: Home | Path | str, name: str, *, server_name: str | None = None,
        profile: Profile = Profile.INTERMEDIATE, minimum_version: ssl.TLSVersion | None = None,
        maximum_version: ssl.TLSVersion | None = None, keylog_filename: str | None = None,
    ) -> ClientTLS:
        """The identity NAME from a home: its chain and key, the home's root and CRL.

        Raises:
            CANotFound, CertificateNotFound, KeyFileError
            StoreError: the home is unsafe, or its CRL is missing.
        """
        files = (home if isinstance(home, Home) else Home(home)).identity(name)
        return cls(ca=files.ca, cert=files.cert, key=files.key, crl=files.crl,
                   server_name=server_name, profile=profile, minimum_version=minimum_version,
                   maximum_version=maximum_version, keylog_filename=keylog_filename)

    @property
    def presents_certificate(self) -> bool:
        return self.cert is not None

    def context(self) -> ssl.SSLContext:
        """A fresh client context (hostname and certificate verification always on).

        Raises:
            TLSError: unreadable files.
        """
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
        # The host name is checked against subjectAltName only (RFC 6125, as browsers do):
        # with the CN fallback, a certificate whose CN is "localhost" but whose SANs name
        # something else passed for localhost.
        ctx.hostname_checks_common_name = False
        _harden(ctx, self.profile, self.minimum_version, self.maximum_version)
        if self.ca is not None:
            _load_ca(ctx, self.ca)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.cert is not None and self.key is not None:
            _load_chain(ctx, self.cert, self.key)
        if self.crl is not None:
            _load_crl(ctx, self.crl)
        if self.keylog_filename:
            ctx.keylog_filename = self.keylog_filename
        return ctx
