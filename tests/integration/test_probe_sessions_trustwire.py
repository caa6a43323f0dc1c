"""The sessions family against trustwire's own server: no session-ID cache, tickets on,
renegotiation refused; an mTLS server cannot be tested without our certificate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Pki
from tests.probe_parts import sessions_only
from tests.servers import ServerThread
from trustwire.probe.checks import Status
from trustwire.probe.profiles import PROFILES
from trustwire.probe.sessions import judge_sessions
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.server import Server
from trustwire.services import upper


@pytest.fixture(scope="module")
def port(pki: Pki) -> Iterator[int]:
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls())) as st:
        yield st.port


def statuses(target: ProbeTarget, options: ProbeOptions) -> dict[str, tuple[Status, str]]:
    obs = sessions_only(target, options)
    return {c.id: (c.status, c.detail) for c in judge_sessions(obs, PROFILES["intermediate"])}


def test_with_our_certificate_tickets_resume_and_session_ids_do_not(pki: Pki, port: int) -> None:
    alice = pki.home.identity("alice")
    target = ProbeTarget(host="127.0.0.1", port=port, server_name="localhost", https=False)
    found = statuses(target, ProbeOptions(ca=pki.home.ca_cert_path, cert=alice.cert,
                                          key=alice.key, timeout=3))
    assert found["session.renegotiation"][0] is Status.PASS
    assert found["session.resumption.session_id"] == (
        Status.INFO, "sessions do not resume (a full handshake again)")  # no session-ID cache
    assert found["session.resumption.ticket_tls1_2"] == (Status.INFO, "sessions resume")
    assert found["session.resumption.ticket_tls1_3"] == (Status.INFO, "sessions resume")
    assert found["session.early_data"][0] is Status.PASS  # Python cannot offer 0-RTT
    assert found["session.ticket_lifetime"][0] is Status.PASS
    assert found["cert.no_sni"][0] is Status.INFO


def test_without_our_certificate_the_chains_are_skipped_with_the_reason(
    pki: Pki, port: int,
) -> None:
    target = ProbeTarget(host="127.0.0.1", port=port, server_name="127.0.0.1", https=False)
    found = statuses(target, ProbeOptions(ca=pki.home.ca_cert_path, timeout=3))
    for check in ("session.renegotiation", "session.resumption.session_id",
                  "session.resumption.ticket_tls1_2", "session.resumption.ticket_tls1_3",
                  "session.early_data"):
        status, detail = found[check]
        assert status is Status.SKIP and "requires a client certificate" in detail, check
    assert "session.ticket_lifetime" not in found
    status, detail = found["cert.no_sni"]  # an IP address target: SNI is never sent
    assert status is Status.INFO and detail.startswith("not applicable")
