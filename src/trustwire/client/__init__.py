"""Clients: blocking (:func:`connect`) and async (:func:`aconnect`)."""

from __future__ import annotations

from trustwire.client.aio import AsyncClient, aconnect
from trustwire.client.blocking import Client, connect

__all__ = ["AsyncClient", "Client", "aconnect", "connect"]
