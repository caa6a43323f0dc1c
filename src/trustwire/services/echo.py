"""Reply with the message unchanged."""

from __future__ import annotations

from trustwire.identity import PeerIdentity
from trustwire.server.connection import responder

__all__ = ["echo"]


@responder
def echo(message: bytes, peer: PeerIdentity | None) -> bytes:
    return message
