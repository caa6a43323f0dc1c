"""The asyncio mTLS server: connections, limits, graceful shutdown, workers."""

from __future__ import annotations

from trustwire.server.connection import Connection, Responder, StreamHandler, responder
from trustwire.server.server import Limits, Server, run

__all__ = ["Connection", "Limits", "Responder", "Server", "StreamHandler", "responder", "run"]
