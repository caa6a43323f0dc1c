"""The asyncio mTLS server: connections, limits, graceful shutdown, workers."""

from __future__ import annotations

from trustwire.server.connection import Connection, Responder, StreamHandler, responder
from trustwire.server.listener import Limits, Listener
from trustwire.server.server import Server, run

__all__ = [
    "Connection", "Limits", "Listener", "Responder", "Server", "StreamHandler", "responder", "run",
]
