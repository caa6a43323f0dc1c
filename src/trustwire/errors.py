"""Every error trustwire raises, in one hierarchy.

Each error carries a one-sentence ``message`` and an optional ``hint`` (the
command or change that fixes it). The CLI prints exactly those two lines and
exits with ``exit_code``; it never prints a traceback. Messages never contain
key material or passphrases: callers pass paths and names, not contents.

The shape follows STYLE.md::

    TrustwireError
    +-- ConfigError(TrustwireError, ValueError)      bad input, exit 2
    +-- PKIError                                     refused CA operation
    |   +-- CANotFound, CAExists, CertificateNotFound, NameInUse
    |   +-- KeyFileError (PassphraseError), InventoryError, StoreError
    |   `-- CSRError, NameConstraintError
    +-- TLSError
    |   `-- HandshakeError      .diagnosis: what, side, why, fix command
    +-- AccessDenied            .peer, .reason
    +-- ProtocolError           abstract, as in h11
    |   +-- LocalProtocolError  we tried to send something illegal
    |   `-- RemoteProtocolError peer sent bad data; FrameTooLarge
    `-- StreamError
        +-- ConnectionClosed    we closed it
        +-- ConnectionBroken    peer/transport failed; __cause__ ssl/OSError
        `-- Timeout             (also a TimeoutError) no answer in time
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustwire.tls.diagnose import Diagnosis

__all__ = [
    "AccessDenied",
    "CAExists",
    "CANotFound",
    "CSRError",
    "CertificateNotFound",
    "ConfigError",
    "ConnectionBroken",
    "ConnectionClosed",
    "FrameTooLarge",
    "HandshakeError",
    "InventoryError",
    "KeyFileError",
    "LocalProtocolError",
    "NameConstraintError",
    "NameInUse",
    "PKIError",
    "PassphraseError",
    "ProtocolError",
    "RemoteProtocolError",
    "StoreError",
    "StreamError",
    "TLSError",
    "Timeout",
    "TrustwireError",
]


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


class AccessDenied(TrustwireError):
    """The peer's verified identity is not allowed by the policy."""

    def __init__(self, reason: str, *, peer: Any = None, hint: str | None = None) -> None:
        super().__init__(f"access denied: {reason}", hint=hint)
        self.reason = reason
        self.peer = peer


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


class FrameTooLarge(RemoteProtocolError):
    """The peer announced a message larger than the configured maximum."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"message of {size} bytes exceeds the {limit}-byte limit",
            hint="raise --max-frame on both sides if such messages are expected",
        )
        self.size = size
        self.limit = limit


class StreamError(TrustwireError):
    """The connection can no longer be used."""


class ConnectionClosed(StreamError):
    """We closed this connection and then tried to use it."""


class ConnectionBroken(StreamError):
    """The peer or the transport broke the connection (see ``__cause__``)."""


class Timeout(StreamError, TimeoutError):
    """The peer did not answer within the timeout."""
