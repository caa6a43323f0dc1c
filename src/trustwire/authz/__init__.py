"""Access control over verified identities."""

from __future__ import annotations

from trustwire.authz.policy import Decision, Policy

__all__ = ["Decision", "Policy"]
