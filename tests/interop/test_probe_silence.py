"""A server that stops answering is "not tested", never "refused" (issue 12 review).

A proxy (:mod:`tests.tarpit`) passes the first connections to a real ``openssl s_server``
that accepts TLS 1.0 to 1.3 and every suite, then accepts later ones and stays silent: the
probe must neither read the silence as refusals (false PASSes) nor wait out a timeout for
every attempt left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import CliResult, Pki
from tests.interop.test_probe_openssl import probe, s_server, statuses
from tests.tarpit import tarpit_after

pytestmark = pytest.mark.interop
Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def upstream(pki: Pki) -> Iterator[int]:
    server = pki.home.identity("server")
    with s_server(server.cert, server.key, "-cipher", "ALL:@SECLEVEL=0") as port:
        yield port


def test_a_server_silent_after_the_first_handshake_is_unreachable(cli: Cli, upstream: int) -> None:
    with tarpit_after(upstream, served=1) as port:
        started = time.monotonic()
        result = cli("probe", f"127.0.0.1:{port}", "--timeout", "0.5")
        took = time.monotonic() - started
    assert result.code == 2, result.out
    assert "answered the first handshake and then stopped answering" in result.err
    assert "--timeout" in result.err and "--concurrency" in result.err
    assert "Traceback" not in result.err
    assert took < 6, took  # versions, two serial retries, one check: four timeouts


def test_a_server_that_stalls_mid_probe_gets_skips_not_passes(cli: Cli, upstream: int) -> None:
    with tarpit_after(upstream, served=5) as port:  # the first handshake and the four versions
        started = time.monotonic()
        _, report = probe(cli, port, "--timeout", "1")
        took = time.monotonic() - started
    found = statuses(report)
    assert found["protocol.tlsv1"] == "fail" and found["protocol.tlsv1_3"] == "pass"
    judged = {k: v for k, v in found.items()
              if k.startswith(("vuln.", "cert.", "ciphers.", "groups", "session.", "tls."))}
    assert "pass" not in judged.values(), judged
    for key in ("cert.present", "cert.trusted", "groups.profile", "ciphers.tlsv1_2",
                "vuln.beast", "vuln.sweet32", "vuln.rc4", "vuln.heartbleed", "vuln.robot",
                "session.renegotiation", "cert.no_sni", "clientauth.requested"):
        assert found.get(key) == "skip", (key, found.get(key))
    details = {c["id"]: c["detail"] for c in report["checks"]}
    assert "sent no certificate" not in details["cert.present"]
    assert "stopped answering" in details["vuln.heartbleed"]
    # once stalled, nothing waits out the timeout again: a whole wave, a check, and change
    assert took < 12, took


@pytest.mark.parametrize("served", [3, 10])
def test_a_server_that_stops_answering_early_never_passes(cli: Cli, upstream: int, served: int) -> None:
    """After a few answered connections, nothing is known about TLS 1.2/1.3 or the
    certificate: every check left is a SKIP, which used to add up to PASS (exit 0)."""
    with tarpit_after(upstream, served=served) as port:
        result = cli("probe", f"127.0.0.1:{port}", "--timeout", "0.5", "--json")
    report = json.loads(result.out)
    assert result.code != 0 and not report["verdict"]["pass"]
    found = statuses(report)
    assert found["probe.incomplete"] == "fail"
    detail = next(c["detail"] for c in report["checks"] if c["id"] == "probe.incomplete")
    assert "untested, not safe" in detail
    failed = [k for k, v in found.items() if v == "fail"]
    assert result.code == (2 if failed == ["probe.incomplete"] else 1), failed
