"""Collect facts about a TLS endpoint: the probe's IO half.

Theory of operation: every question is one or more TLS handshakes, each with a
purpose-built client context, whose ServerHello tells what the server chose
(:mod:`trustwire.probe.attempt`). They run concurrently, each with its own timeout.
:func:`collect` asks the questions in order, each family in its own module:

1. a first handshake checks that the target answers TLS at all; if not, the probe
   stops there (:class:`~trustwire.errors.Unreachable`, exit 2) instead of timing
   out a hundred times (for a STARTTLS target, one dialogue first:
   :mod:`trustwire.probe.starttls_scan`);
2. versions, cipher suites and server order, groups, the certificate chain
   (:mod:`trustwire.probe.tls_scan`), and with hand-built hellos what the local OpenSSL
   cannot offer: SSL 2.0/3.0, RC4, DES, EXPORT..., DEFLATE, TLS_FALLBACK_SCSV
   (:mod:`trustwire.probe.legacy_scan`);
3. client-certificate enforcement (:mod:`trustwire.probe.mtls`, with the identities
   of :mod:`trustwire.probe.identities`);
4. Heartbleed, CCS injection and ROBOT, with hand-built records
   (:mod:`trustwire.probe.exploits_scan`);
5. for an ``https://`` target, the HTTP status and headers (:mod:`trustwire.probe.http`);
6. renegotiation, resumption, 0-RTT, no-SNI and SCTs (:mod:`trustwire.probe.sessions_scan`).

Nothing here judges: :mod:`trustwire.probe.checks` turns :class:`Observations`
into verdicts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from trustwire.probe.attempt import Runner
from trustwire.probe.exploits_scan import scan_exploits
from trustwire.probe.http import check_http
from trustwire.probe.legacy_scan import scan_legacy
from trustwire.probe.mtls import check_client_auth
from trustwire.probe.observations import Observations
from trustwire.probe.sessions_scan import scan_sessions
from trustwire.probe.starttls_scan import check_starttls
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.probe.tls_scan import (
    check_baseline,
    scan_certificate,
    scan_ciphers,
    scan_groups,
    scan_key_sizes,
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
        check_starttls(runner)
        check_baseline(runner)
        scan_versions(runner, obs)
        scan_ciphers(runner, obs)
        scan_legacy(runner, obs)
        scan_groups(runner, obs)
        scan_key_sizes(runner, obs)
        scan_certificate(runner, obs)
        check_client_auth(runner, obs)
        scan_exploits(runner, obs)
        if target.https:
            check_http(runner, obs)
        scan_sessions(runner, obs)
    finally:
        runner.close()
    obs.stalled = runner.stalled
    obs.duration = time.monotonic() - started
    return obs
