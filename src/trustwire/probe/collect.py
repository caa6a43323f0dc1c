"""Collect facts about a TLS endpoint: the probe's IO half.

Theory of operation: every question is one or more TLS handshakes, each with a
purpose-built client context, whose ServerHello tells what the server chose
(:mod:`trustwire.probe.attempt`). They run concurrently, each with its own timeout.
:func:`collect` asks the questions in order, each family in its own module:

1. a first handshake checks that the target answers TLS at all; if not, the probe
   stops there (:class:`~trustwire.errors.Unreachable`, exit 2) instead of timing
   out a hundred times;
2. versions, cipher suites and server order, groups, the certificate chain
   (:mod:`trustwire.probe.tls_scan`);
3. client-certificate enforcement (:mod:`trustwire.probe.mtls`, with the identities
   of :mod:`trustwire.probe.identities`);
4. for an ``https://`` target, the HTTP status and headers (:mod:`trustwire.probe.http`);
5. renegotiation, resumption, 0-RTT, no-SNI and SCTs (:mod:`trustwire.probe.sessions_scan`).

Nothing here judges: :mod:`trustwire.probe.checks` turns :class:`Observations`
into verdicts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from trustwire.probe.attempt import Runner
from trustwire.probe.http import check_http
from trustwire.probe.mtls import check_client_auth
from trustwire.probe.observations import Observations
from trustwire.probe.sessions_scan import scan_sessions
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.probe.tls_scan import (
    check_baseline,
    scan_certificate,
    scan_ciphers,
    scan_groups,
    scan_versions,
)

# The types of collect()'s signature are re-exported, so its callers import from one place.
__all__ = ["Observations", "ProbeOptions", "ProbeTarget", "collect"]


def collect(target: ProbeTarget, options: ProbeOptions,
            progress: Callable[[int], None] | None = None) -> Observations:
    """Probe ``target``.

    Args:
        target: what to probe.
        options: trust anchor, our identity, the server's CA key and CRL, timeouts.
        progress: called with the number of handshakes just finished.

    Raises:
        Unreachable: when the target cannot be probed at all.
        ConfigError: for unusable ``--ca``/``--ca-key`` files.
    """
    started = time.monotonic()
    obs = Observations(target=target, started=dt.datetime.now(dt.UTC))
    runner = Runner(target, options, progress)
    try:
        check_baseline(runner)
        scan_versions(runner, obs)
        scan_ciphers(runner, obs)
        scan_groups(runner, obs)
        scan_certificate(runner, obs)
        check_client_auth(runner, obs)
        if target.https:
            check_http(runner, obs)
        scan_sessions(runner, obs)
    finally:
        runner.close()
    obs.duration = time.monotonic() - started
    return obs
