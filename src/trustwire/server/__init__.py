"""The mTLS message server: message sessions on the IO core, limits, graceful shutdown."""

from __future__ import annotations

from trustwire.net.listener import Limits, Listener
from trustwire.server.connection import Connection, Responder, StreamHandler, responder
from trustwire.server.server import Server, run

__all__ = [
    "Connection", "Limits", "Listener", "Responder", "Server", "StreamHandler", "responder", "run",
]
