"""The tutorial's service: reply with the message in upper case."""

from __future__ import annotations

from trustwire.identity import PeerIdentity
from trustwire.server.connection import responder

__all__ = ["upper"]


@responder
def upper(message: bytes, peer: PeerIdentity | None) -> bytes:
    """``b"Hello, server!"`` -> ``b"HELLO, SERVER!"`` (ASCII letters only, like bytes.upper)."""
    return message.upper()
