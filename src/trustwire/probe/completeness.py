"""Could the audit see enough for a verdict? Pure.

A server that stops answering partway leaves SKIPs behind; a report of SKIPs and PASSes must
not add up to a pass. :func:`incomplete` adds one failure, ``probe.incomplete``, naming what
could not be seen; the CLI exits 2 when it is the only failure (could not be fully probed).
"""

from __future__ import annotations

from trustwire.probe.findings import Check, Findings, Status
from trustwire.probe.observations import Observations

__all__ = ["INCOMPLETE", "incomplete"]

INCOMPLETE = "probe.incomplete"


def incomplete(obs: Observations) -> list[Check]:
    """A failure when the audit could not see what a verdict needs: no TLS version known to
    be accepted, the certificate never read, or the server stopped answering partway. The
    rest of the report stands, but it must not add up to a pass."""
    missing = []
    if not any(s.accepted for s in obs.versions.values()) and any(
            s.accepted is None for s in obs.versions.values()):
        missing.append("which TLS versions it accepts")
    if obs.chain_untested is not None:
        missing.append("its certificate")
    if not missing and not obs.stalled:
        return []
    findings = Findings("Probe")
    why = "the server stopped answering partway" if obs.stalled else "the server did not answer"
    findings.add(INCOMPLETE, "Audit complete", Status.FAIL,
                 f"{why}: " + (f"not tested: {', '.join(missing)}; " if missing else "")
                 + "every SKIP above is untested, not safe",
                 fix="probe again with a longer --timeout, or a lower --concurrency for a server "
                     "that takes few connections at once")
    return findings.checks
