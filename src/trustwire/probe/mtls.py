"""Client-authentication enforcement: does the server let in clients it should refuse?

One handshake without a certificate, one per identity :mod:`trustwire.probe.identities`
mints, and one with our own ``--cert``/``--key`` when given. Each waits for the server's
verdict (TLS 1.3 servers refuse a client certificate *after* the handshake, so a
completed handshake alone proves nothing; see :func:`trustwire.probe.attempt.attempt`).
Over HTTPS a request is sent, so a server that lets the client in answers with data.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from trustwire.probe.attempt import Attempt, Job, Runner, client_context
from trustwire.probe.http import http_request
from trustwire.probe.http_answer import admission, parse_response
from trustwire.probe.identities import mint_identities
from trustwire.probe.observations import VALID_FROM_YOUR_CA, EnforcementCase, Observations

__all__ = ["Outcome", "calibrated", "check_client_auth", "outcome"]


def check_client_auth(runner: Runner, obs: Observations) -> None:
    """Whether client certificates are requested and required, whether ours is accepted, and
    (when requested) one :class:`EnforcementCase` per identity the server should refuse."""
    target, options = runner.target, runner.options
    send = http_request(target) if target.https else None
    with tempfile.TemporaryDirectory(prefix="trustwire-probe-") as tmp:
        identities = mint_identities(Path(tmp), options, obs.untested)
        jobs: list[Job] = [
            ("no certificate", lambda: runner.one(client_context(**runner.offer), verdict=True, send=send)),
        ]
        for case, pair in identities.items():
            jobs.append((case, functools.partial(runner.one, client_context(**runner.offer, cert=pair),
                                                 verdict=True, send=send)))
        if options.cert is not None and options.key is not None:
            jobs.append(("ours", functools.partial(
                runner.one, client_context(**runner.offer, cert=(options.cert, options.key)), verdict=True,
                send=send)))
        results = dict(runner.run(jobs))
    https = target.https
    anonymous = results.pop("no certificate")
    if obs.client_auth_requested or anonymous.log.certificate_requested:
        obs.client_auth_requested = True
    elif anonymous.completed or anonymous.refused:
        obs.client_auth_requested = False  # a whole handshake without a CertificateRequest
    # else: neither the chain nor this handshake got an answer: unknown (None), not "no"
    found = {case: outcome(result, https=https, timeout=options.timeout)
             for case, result in [("no certificate", anonymous), *results.items()]}
    control = found.get(VALID_FROM_YOUR_CA) or found.get("ours")
    found = {case: calibrated(value, control) if case not in (VALID_FROM_YOUR_CA, "ours") else value
             for case, value in found.items()}
    obs.client_auth_required = found["no certificate"].refused
    if "ours" in found:
        ours = found.pop("ours")
        obs.our_certificate_accepted = None if ours.refused is None else not ours.refused
    if not obs.client_auth_requested:
        return  # nothing to enforce: the server never asks for certificates
    for case in ["no certificate", *identities]:
        value = found[case]
        detail = value.detail
        if case == VALID_FROM_YOUR_CA:
            detail = f"accepted, as it should be: {detail}" if value.refused is False else (
                f"{detail}: the audit's other results may be refusals for other reasons")
        obs.enforcement.append(EnforcementCase(case=case, refused=value.refused, detail=detail))


@dataclass(frozen=True)
class Outcome:
    refused: bool | None
    """None: no verdict (it timed out, or the answer says nothing)."""
    detail: str
    answer: str = ""
    """What the server did, comparable between cases (``http 403 <digest>``, ``closed``...)."""
    weak: bool = False
    """A refusal only if the good certificate got something else (a 401/403 that does not
    mention certificates)."""


def calibrated(value: Outcome, control: Outcome | None) -> Outcome:
    """Judge a case against the good certificate's outcome (``control``).

    A refusal that looks exactly like what the good certificate got (the same HTTP status
    and page, or the same close after the handshake) says nothing about certificates: the
    server treats everyone that way (a ``deny all`` location, a server that hangs up on
    every client). A bare 401/403 counts only when the good certificate got something else.
    """
    if value.refused is not True:
        return value
    if control is not None and control.refused is True and value.answer == control.answer:
        return replace(value, refused=None, detail=f"{value.detail}, as the good certificate "
                       "did: no verdict on this certificate")
    if value.weak and (control is None or control.refused is not False):
        return replace(value, refused=None, detail=f"{value.detail}, which does not mention "
                       "certificates, and there is no accepted good certificate to compare with "
                       "(give --ca-key, or --cert and --key): no verdict")
    return value


def outcome(result: Attempt, *, https: bool, timeout: float) -> Outcome:
    """What the server did with one client, in words a reader can check with s_client.

    Over HTTPS the answer to the request decides (nginx refuses bad certificates with an
    HTTP 400 after the handshake); elsewhere the TLS level does: an alert or a close is a
    refusal, a TLS 1.3 ticket (with no close after it), data or silence lets the client in.
    """
    if not result.completed:
        if result.refused:
            why = result.diagnosis.reason if result.diagnosis else (result.error or "closed")
            return Outcome(True, f"refused in the handshake ({why})", f"handshake {why}")
        return Outcome(None, f"no verdict (the handshake {_failure(result, timeout)})", "timeout")
    if https:
        answer = parse_response(result.served)
        if answer is not None:
            verdict = admission(answer)
            digest = hashlib.sha256(answer.body).hexdigest()[:16]
            return Outcome(verdict.refused, f"accepted the handshake and then {verdict.what}",
                           f"http {answer.status} {digest}",
                           weak=verdict.refused and not verdict.about_certificate)
        if result.refused:
            why = result.diagnosis.reason if result.diagnosis else "closed the connection"
            return Outcome(True, f"refused ({why}) before answering the request", f"closed {why}")
        if result.timed_out:
            return Outcome(None, f"accepted the handshake and then did not answer the request "
                                 f"within {timeout:g}s (no verdict)", "timeout")
        if result.served:
            return Outcome(False, f"accepted the handshake and then sent {len(result.served)} "
                                  "bytes that are not an HTTP response", "data")
        return Outcome(True, "accepted the handshake and then closed without answering the request",
                       "closed")
    if result.refused:
        if result.diagnosis is None:
            return Outcome(True, "accepted the handshake and then closed the connection "
                                 "without sending anything", "closed")
        return Outcome(True, f"refused ({result.diagnosis.reason})", f"alert {result.diagnosis.reason}")
    if result.timed_out:
        return Outcome(None, f"no verdict (no answer within {timeout:g}s)", "timeout")
    if result.served:
        return Outcome(False, f"accepted the handshake and then sent {len(result.served)} bytes",
                       "data")
    if result.log.ticket_received and result.version == "TLSv1.3":
        return Outcome(False, "accepted the handshake and then sent a session ticket", "ticket")
    return Outcome(False, "accepted the handshake and then kept the connection open "
                          "(no alert, no close)", "silent")


def _failure(result: Attempt, timeout: float) -> str:
    return f"timed out after {timeout:g}s" if result.timed_out else (
        f"failed: {result.error or 'no reason given'}")
