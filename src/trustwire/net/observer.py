"""What a listener reports: plain counters (:class:`Stats`) and events (:class:`Observer`).

Counters are attributes of one mutable dataclass per listener, bumped with
``stats.x += 1`` on the paths that matter and read by metrics at scrape time,
so serving a message costs no locking or lookups. Events (handshakes, denials,
revocations, closes, reloads) go to an optional :class:`Observer`: the audit
log is one (:class:`trustwire.ops.audit.AuditObserver`); with none, the hot
path builds nothing.
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from trustwire.authz.policy import Decision
    from trustwire.errors import Diagnosis
    from trustwire.net.session import Session

__all__ = ["HANDSHAKE_BUCKETS", "Observer", "Stats"]

HANDSHAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the handshake-duration histogram."""


@dataclass(slots=True)
class Stats:
    """Every counter a listener keeps. Bytes and messages count closed sessions (metrics
    add the live ones at scrape time)."""

    accepted: int = 0
    """TCP connections accepted."""
    refused: int = 0
    """Connections closed at once: over --max-connections, or shutting down."""
    refused_unauthenticated: int = 0
    """Connections closed because too many from their source had not authenticated yet."""
    evicted: int = 0
    """Unauthenticated connections dropped to make room for new ones (oldest first)."""
    handshakes_ok: int = 0
    handshakes_failed: int = 0
    access_denied: int = 0
    """Verified identities the admission decision refused (at or right after the handshake)."""
    sessions_revoked: int = 0
    """Open sessions cut because a reload, or time, no longer admits them."""
    tickets_refused: int = 0
    """Session tickets not honoured because their identity is no longer admitted."""
    protocol_errors: int = 0
    target_unreachable: int = 0
    reloads_ok: int = 0
    reloads_failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    messages: int = 0
    handshake_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    """Failed handshakes by diagnosis reason code (a label, not a counter name)."""
    handshake_buckets: list[int] = field(
        default_factory=lambda: [0] * (len(HANDSHAKE_BUCKETS) + 1))
    handshake_seconds: float = 0.0

    def observe_handshake(self, seconds: float) -> None:
        self.handshake_buckets[bisect.bisect_left(HANDSHAKE_BUCKETS, seconds)] += 1
        self.handshake_seconds += seconds


class Observer(Protocol):
    """Receives a listener's events (the audit log implements it)."""

    def handshake_ok(self, session: Session) -> None: ...
    def handshake_failed(self, session: Session, diagnosis: Diagnosis) -> None: ...
    def access_denied(self, session: Session, decision: Decision) -> None: ...
    def access_revoked(self, session: Session, decision: Decision) -> None: ...
    def refused(self, reason: str, count: int, peers: list[str]) -> None:
        """``count`` connections were closed for ``reason`` since the last report (once a
        sweep); ``peers`` holds a few of their addresses."""
    def closed(self, session: Session) -> None: ...
    def reloaded(self, reason: str, sessions_cut: int) -> None: ...
    def crl_expired(self, next_update: str, sessions_cut: int) -> None: ...
    def reload_failed(self, reason: str, error: str) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
