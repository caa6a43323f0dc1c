"""The files that make up one identity in a home (``--identity NAME``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["IdentityFiles"]


@dataclass(frozen=True)
class IdentityFiles:
    """The files behind ``--identity NAME``."""

    cert: Path
    """Leaf then intermediates."""
    key: Path
    ca: Path
    """The trust anchor (the root)."""
    crl: Path | None
