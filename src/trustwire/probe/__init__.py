"""Audit a TLS, HTTPS or mTLS endpoint: collect (IO), checks (pure), report.

``collect`` orchestrates the IO modules: ``attempt`` (one handshake, and the pool that
runs many), ``tls_scan`` (versions, suites, groups, chain), ``mtls`` with ``identities``
(client-certificate enforcement), ``http`` (status and headers). ``target`` and
``observations`` hold the values that flow between them.
"""

from __future__ import annotations

from trustwire.errors import Unreachable
from trustwire.probe.checks import Check, Status, Verdict, evaluate, verdict
from trustwire.probe.collect import collect
from trustwire.probe.observations import Observations
from trustwire.probe.profiles import PROFILES, Profile, load_profile
from trustwire.probe.target import ProbeOptions, ProbeTarget

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
