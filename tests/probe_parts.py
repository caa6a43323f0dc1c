"""Run only some of the probe's scans through the library: faster than a whole probe."""

from __future__ import annotations

import datetime as dt

from trustwire.probe.attempt import Runner
from trustwire.probe.observations import Observations
from trustwire.probe.sessions_scan import scan_sessions
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.probe.tls_scan import check_baseline, scan_certificate, scan_versions


def sessions_only(target: ProbeTarget, options: ProbeOptions) -> Observations:
    """What ``collect`` does for the sessions family: baseline, versions, the certificate
    (for must-staple, embedded SCTs, no-SNI comparison), then the family itself."""
    obs = Observations(target=target, started=dt.datetime.now(dt.UTC))
    runner = Runner(target, options, None)
    try:
        check_baseline(runner)
        scan_versions(runner, obs)
        scan_certificate(runner, obs)
        scan_sessions(runner, obs)
    finally:
        runner.close()
    return obs
