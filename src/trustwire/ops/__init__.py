"""Operations: reload (one Reloader for SIGHUP and the file watcher), the audit log,
Prometheus metrics, the status endpoint, and running a listener until a signal stops it."""

from __future__ import annotations

from trustwire.ops.audit import AuditLog, AuditObserver
from trustwire.ops.reload import Reloader, ReloadOutcome, TrustSource, Watcher
from trustwire.ops.runtime import Operations, run_listener

__all__ = ["AuditLog", "AuditObserver", "Operations", "ReloadOutcome", "Reloader", "TrustSource",
           "Watcher", "run_listener"]
