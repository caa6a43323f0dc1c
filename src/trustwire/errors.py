"""Every error trustwire raises, in one hierarchy.

Each error carries a one-sentence ``message`` and an optional ``hint`` (the
command or change that fixes it). The CLI prints exactly those two lines and
exits with ``exit_code``; it never prints a traceback. Messages never contain
key material or passphrases: callers pass paths and names, not contents.

:class:`Diagnosis` lives here too: it is the data a :class:`HandshakeError` carries
(``trustwire.tls.diagnose`` builds them). Every error pickles with its data (for
worker processes and ``concurrent.futures``).

The shape follows STYLE.md::

    TrustwireError
    +-- ConfigError(TrustwireError, ValueError)      bad input, exit 2
    +-- PKIError                                     refused CA operation
    |   +-- CANotFound, CAExists, CertificateNotFound, NameInUse
    |   +-- KeyFileError (PassphraseError), InventoryError, StoreError
    |   `-- CSRError, NameConstraintError
    +-- TLSError
    |   +-- HandshakeError      .diagnosis: what, side, why, fix command
    |   |   `-- AccessDenied    .diagnosis, .reason, .peer: the access policy (or a revocation)
    |   `-- ReloadError         new certificates, CRL or policy failed validation
    +-- ProbeError
    |   `-- Unreachable         the probe could not reach the target at all (exit 2)
    +-- ProtocolError           abstract, as in h11
    |   +-- LocalProtocolError  we tried to send something illegal
    |   `-- RemoteProtocolError peer sent bad data; FrameTooLarge
    `-- StreamError
        +-- ConnectionClosed    we closed it
        +-- ConnectionBroken    peer/transport failed; __cause__ ssl/OSError
        `-- Timeout             (also a TimeoutError) no answer in time
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from trustwire.identity import PeerIdentity

__all__ = [
    "DOCS_URL",
    "REASONS",
    "AccessDenied",
    "Diagnosis",
    "Reason",
    "CAExists",
    "CANotFound",
    "CSRError",
    "CertificateNotFound",
    "ConfigError",
    "ConnectionBroken",
    "ConnectionClosed",
    "FRAMING_HINT",
    "FrameTooLarge",
    "HandshakeError",
    "InventoryError",
    "KeyFileError",
    "LocalProtocolError",
    "NameConstraintError",
    "NameInUse",
    "PKIError",
    "PassphraseError",
    "ProbeError",
    "ProtocolError",
    "ReloadError",
    "RemoteProtocolError",
    "StoreError",
    "StreamError",
    "TLSError",
    "Timeout",
    "TrustwireError",
    "Unreachable",
]


DOCS_URL = "https://trustwire.github.io/trustwire"
"""Where the documentation site (``make docs``) is published; every link the code
prints is built from it."""

Reason = Literal[
    "expired", "not-yet-valid", "unknown-ca", "revoked", "hostname-mismatch",
    "client-cert-missing", "wrong-eku", "bad-certificate", "name-constraints",
    "crl-missing", "crl-expired", "crl-not-yet-valid", "policy-denied", "access-revoked",
    "protocol-too-old", "no-shared-cipher", "handshake-failure", "not-tls", "server-error",
    "closed", "timeout", "tls-error",
]
"""The stable reason codes of a :class:`Diagnosis`; each has a page under
``DOCS_URL/reasons/``."""

REASONS: tuple[Reason, ...] = get_args(Reason)


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """Why a handshake failed, for people (and a code for machines)."""

    reason: Reason
    """Stable code (one of :data:`REASONS`): for audit logs, metrics and scripts."""
    side: str
    """Which side refused: ``client`` or ``server``."""
    what: str
    """What was refused, e.g. "the server's certificate"."""
    why: str
    """Why, in plain words."""
    fix: str | None = None
    """The command or change that fixes it."""
    refused: bool = True
    """False for failures nobody chose (timeouts, dropped connections)."""

    def sentence(self) -> str:
        if self.refused:
            return f"{self.what} was refused by the {self.side}: {self.why}"
        return f"{self.what} failed: {self.why}"

    @property
    def docs_url(self) -> str:
        """The documentation page for this reason: what it means and what fixes it."""
        return f"{DOCS_URL}/reasons/{self.reason}.html"

    def as_json(self) -> dict[str, str | None]:
        return {"reason": self.reason, "side": self.side, "what": self.what, "why": self.why,
                "fix": self.fix}


def _restore(cls: type[TrustwireError], args: tuple[object, ...],
             state: dict[str, object]) -> TrustwireError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class TrustwireError(Exception):
    """Base of every trustwire error.

    Args:
        message: one sentence saying what went wrong, without key material.
        hint: optional next step for the user, usually a command.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # The default would call cls(*args), which subclasses with data-carrying
        # constructors (HandshakeError(diagnosis), FrameTooLarge(size, limit)) cannot take.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ConfigError(TrustwireError, ValueError):
    """Invalid input or configuration: a usage error (exit 2)."""

    exit_code = 2


class PKIError(TrustwireError):
    """A certificate-authority operation was refused."""


class CANotFound(PKIError):
    """The home has no CA yet."""


class CAExists(PKIError):
    """``ca init`` would overwrite an existing CA."""


class CertificateNotFound(PKIError):
    """No certificate with that name or serial in the inventory."""


class NameInUse(PKIError):
    """A current certificate already has that name."""


class KeyFileError(PKIError):
    """A private key file is missing, unreadable, or not a key."""


class PassphraseError(KeyFileError):
    """The CA key is encrypted and the passphrase is missing or wrong."""


class InventoryError(PKIError):
    """The SQLite inventory is corrupt or unusable."""


class StoreError(PKIError):
    """Files in the home could not be written (read-only, disk full, ...)."""


class CSRError(PKIError):
    """A certificate signing request is malformed or its signature is bad."""


class NameConstraintError(PKIError):
    """A requested name lies outside the issuing CA's name constraints."""


class TLSError(TrustwireError):
    """TLS configuration or runtime failure."""


class HandshakeError(TLSError):
    """A TLS handshake failed; ``diagnosis`` explains it in plain words."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.sentence(), hint=diagnosis.fix)
        self.diagnosis = diagnosis

    @property
    def docs_url(self) -> str:
        """The documentation page for the diagnosis's reason (``Diagnosis.docs_url``)."""
        return self.diagnosis.docs_url


class AccessDenied(HandshakeError):
    """A verified identity is not (or no longer) admitted: the access policy refused it,
    or a reload revoked it mid-session. A :class:`HandshakeError`, since it is one more
    way for a connection to be refused; ``reason`` is what the other side said."""

    def __init__(self, diagnosis: Diagnosis, *, reason: str,
                 peer: PeerIdentity | None = None) -> None:
        super().__init__(diagnosis)
        self.reason = reason
        self.peer = peer


class ReloadError(TLSError):
    """New certificates, keys, CA, CRL or policy failed validation; the old ones stay."""


class ProbeError(TrustwireError):
    """The probe could not do its job."""


class Unreachable(ProbeError):
    """The target could not be probed at all (exit 2)."""

    exit_code = 2


class ProtocolError(TrustwireError):
    """The message framing was violated (abstract)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise a subclass")
        super().__init__(message, hint=hint)


class LocalProtocolError(ProtocolError):
    """We tried to send something the framing forbids (for example too large)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that violate the framing."""


FRAMING_HINT = "use the same --framing on both sides (length is the default)"


class FrameTooLarge(RemoteProtocolError):
    """The peer announced a message larger than the configured maximum.

    ``header``: the bytes read as the length (4, or fewer when the first already
    announces too much, as a line client's ``a`` and newline do), when they are
    printable text (the peer speaks line framing: ``b"HELL"`` of ``HELLO`` reads as
    1.2 GB), so the message says that instead of blaming the size.
    """

    def __init__(self, size: int, limit: int, *, header: bytes | None = None) -> None:
        if header is not None:
            super().__init__(
                f"the bytes read as a message length are text ({header.decode('ascii')!r}), "
                "not a length header: the other side may use line framing",
                hint=FRAMING_HINT,
            )
        else:
            super().__init__(
                f"message of {size} bytes exceeds the {limit}-byte limit",
                hint="raise --max-frame on both sides if such messages are expected",
            )
        self.size = size
        self.limit = limit
        self.header = header


class StreamError(TrustwireError):
    """The connection can no longer be used."""


class ConnectionClosed(StreamError):
    """We closed this connection and then tried to use it."""


class ConnectionBroken(StreamError):
    """The peer or the transport broke the connection (see ``__cause__``)."""


class Timeout(StreamError, TimeoutError):
    """The peer did not answer within the timeout."""
