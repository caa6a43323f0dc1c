"""The tunnel: put any TCP service behind mutual TLS (server mode), or reach one (client mode)."""

from __future__ import annotations

from trustwire.tunnel.proxy import TunnelClient, TunnelServer
from trustwire.tunnel.splice import Target

__all__ = ["Target", "TunnelClient", "TunnelServer"]
