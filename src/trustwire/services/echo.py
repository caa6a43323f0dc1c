"""Reply with the message unchanged."""

from __future__ import annotations

from trustwire.server.connection import responder
from trustwire.tls.identity import PeerIdentity

__all__ = ["echo"]


@responder
def echo(message: bytes, peer: PeerIdentity | None) -> bytes:
    return message
