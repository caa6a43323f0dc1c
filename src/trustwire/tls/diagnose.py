"""Plain-language diagnosis of TLS handshake failures.

A :class:`Diagnosis` says what failed, on which side, why, and the command
that fixes it; :class:`trustwire.errors.HandshakeError` carries one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnosis"]


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """Why a handshake failed, for people."""

    reason: str
    """Stable machine-readable code, e.g. ``expired`` or ``unknown-ca``."""
    side: str
    """Whose check failed: ``client`` (we verified the server) or ``server``."""
    what: str
    """What failed, e.g. "the server's certificate"."""
    why: str
    """Why, in plain words."""
    fix: str | None = None
    """The command or change that fixes it."""

    def sentence(self) -> str:
        return f"{self.what} was rejected by the {self.side}: {self.why}"
