"""The tunnel: put any TCP service behind mutual TLS (server mode), or reach one (client mode)."""

from __future__ import annotations

from trustwire.tunnel.proxy import Target, TunnelClient, TunnelServer

__all__ = ["Target", "TunnelClient", "TunnelServer"]
