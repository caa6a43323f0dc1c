"""The IO core: one asyncio layer under every server, tunnel and client.

``transport`` (TLS over memory BIOs), ``session`` (one tracked connection:
admission, timeouts, cuts), ``gate`` (the one admission decision applied on
every path), ``listener`` (accepting, limits, the sweep, shutdown),
``observer`` (counters and events), ``material`` (what a listener accepts
with), ``addresses`` and ``workers``.
"""

from __future__ import annotations

from trustwire.net.listener import Limits, Listener
from trustwire.net.material import Material
from trustwire.net.observer import Observer, Stats
from trustwire.net.session import Session
from trustwire.net.transport import TLSTransport

__all__ = ["Limits", "Listener", "Material", "Observer", "Session", "Stats", "TLSTransport"]
