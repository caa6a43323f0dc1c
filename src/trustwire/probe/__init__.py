"""Audit a TLS, HTTPS or mTLS endpoint: collect (IO), checks (pure), report."""

from __future__ import annotations

from trustwire.probe.checks import Check, Status, Verdict, evaluate, verdict
from trustwire.probe.collect import Observations, ProbeOptions, ProbeTarget, Unreachable, collect
from trustwire.probe.profiles import PROFILES, Profile, load_profile

__all__ = [
    "PROFILES",
    "Check",
    "Observations",
    "ProbeOptions",
    "ProbeTarget",
    "Profile",
    "Status",
    "Unreachable",
    "Verdict",
    "collect",
    "evaluate",
    "load_profile",
    "verdict",
]
