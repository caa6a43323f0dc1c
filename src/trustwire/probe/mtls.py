"""Client-authentication enforcement: does the server let in clients it should refuse?

One handshake without a certificate, one per identity :mod:`trustwire.probe.identities`
mints, and one with our own ``--cert``/``--key`` when given. Each waits for the server's
verdict (TLS 1.3 servers refuse a client certificate *after* the handshake, so a
completed handshake alone proves nothing; see :func:`trustwire.probe.attempt.attempt`).
Over HTTPS a request is sent, so a server that lets the client in answers with data.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from trustwire.probe.attempt import Job, Runner, client_context
from trustwire.probe.http import http_request
from trustwire.probe.identities import mint_identities
from trustwire.probe.observations import VALID_FROM_YOUR_CA, EnforcementCase, Observations

__all__ = ["check_client_auth"]


def check_client_auth(runner: Runner, obs: Observations) -> None:
    """Whether client certificates are requested and required, whether ours is accepted, and
    (when requested) one :class:`EnforcementCase` per identity the server should refuse."""
    target, options = runner.target, runner.options
    send = http_request(target) if target.https else None
    with tempfile.TemporaryDirectory(prefix="trustwire-probe-") as tmp:
        identities = mint_identities(Path(tmp), options, obs.untested)
        jobs: list[Job] = [
            ("no certificate", lambda: runner.one(client_context(), verdict=True, send=send)),
        ]
        for case, pair in identities.items():
            jobs.append((case, functools.partial(runner.one, client_context(cert=pair),
                                                 verdict=True, send=send)))
        if options.cert is not None and options.key is not None:
            jobs.append(("ours", functools.partial(
                runner.one, client_context(cert=(options.cert, options.key)), verdict=True,
                send=send)))
        results = dict(runner.run(jobs))
    anonymous = results.pop("no certificate")
    obs.client_auth_requested = bool(obs.client_auth_requested or anonymous.log.certificate_requested)
    obs.client_auth_required = anonymous.refused
    if "ours" in results:
        ours = results.pop("ours")
        obs.our_certificate_accepted = ours.accepted
    if not obs.client_auth_requested:
        return  # nothing to enforce: the server never asks for certificates
    order = ["no certificate", *identities]
    outcomes = {"no certificate": anonymous, **results}
    for case in order:
        result = outcomes[case]
        if case == VALID_FROM_YOUR_CA:
            detail = "accepted, as it should be" if result.accepted else (
                f"refused ({result.error or 'closed'}): the audit's other results may be "
                "refusals for other reasons")
        elif result.refused:
            detail = f"refused ({result.diagnosis.reason if result.diagnosis else 'closed'})"
        elif result.completed:
            detail = "got in: the server completed the handshake" + (
                " and served data" if result.served else "")
        else:
            detail = f"no verdict ({result.error or 'timeout'})"
        refused = result.refused if (result.completed or result.refused) else None
        obs.enforcement.append(EnforcementCase(case=case, refused=refused, detail=detail))
