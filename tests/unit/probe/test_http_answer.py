"""Judging admission from an HTTPS answer, and the TLS-level rule elsewhere: pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trustwire.probe.attempt import Attempt
from trustwire.probe.http_answer import admission, parse_response, response_complete
from trustwire.probe.mtls import outcome

NGINX_400 = (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n"
             b"Content-Length: 99\r\nConnection: close\r\n\r\n<html><head><title>400 No required "
             b"SSL certificate was sent</title></head><body>No required SSL certificate</body>")


def test_nginx_certificate_errors_are_refusals() -> None:
    answer = parse_response(NGINX_400)
    assert answer is not None and answer.status == 400
    verdict = admission(answer)
    assert verdict.refused and verdict.about_certificate
    assert "No required SSL certificate was sent" in verdict.what


def test_a_page_is_getting_in_and_other_4xx_are_not_certificate_refusals() -> None:
    ok = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert ok is not None and not admission(ok).refused
    assert admission(ok).what == "answered HTTP 200 OK with 5 bytes of content"
    missing = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
    assert missing is not None and admission(missing).refused is False
    forbidden = parse_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
    assert forbidden is not None and admission(forbidden).refused is True
    assert not admission(forbidden).about_certificate  # only a refusal next to a good cert's 200
    bad_id = parse_response(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 18\r\n\r\nBad SSL request id")
    assert bad_id is not None and admission(bad_id).refused is False  # "SSL" alone is not it


def test_completeness() -> None:
    assert response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert not response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi")
    assert response_complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    assert not response_complete(b"HTTP/1.1 200 OK\r\n\r\nuntil close")


@given(st.binary(max_size=400))
def test_parse_response_never_raises(data: bytes) -> None:
    parse_response(b"HTTP/1.1 " + data)
    parse_response(data)


def attempt(**fields: object) -> Attempt:
    result = Attempt(connected=True)
    for name, value in fields.items():
        setattr(result, name, value)
    return result


def test_outcomes_over_https() -> None:
    refused = outcome(attempt(completed=True, served=NGINX_400, ended=True), https=True, timeout=5)
    assert refused.refused is True and refused.detail.startswith("accepted the handshake and then answered HTTP 400")
    silent = outcome(attempt(completed=True, timed_out=True), https=True, timeout=5)
    assert silent.refused is None and "did not answer the request within 5s" in silent.detail


def test_outcomes_at_the_tls_level() -> None:
    queued = outcome(attempt(timed_out=True, error="timeout"), https=False, timeout=5)
    assert queued.refused is None and "timed out" in queued.detail  # a timeout is never a refusal
    closed = outcome(attempt(completed=True, refused=True, ended=True), https=False, timeout=5)
    assert closed.refused is True
    quiet = outcome(attempt(completed=True, version="TLSv1.3"), https=False, timeout=5)
    assert quiet.refused is False and "kept the connection open" in quiet.detail
    served = outcome(attempt(completed=True, served=b"HELLO"), https=False, timeout=5)
    assert served.detail == "accepted the handshake and then sent 5 bytes"


def test_a_refusal_the_good_certificate_also_got_is_no_verdict() -> None:
    from trustwire.probe.mtls import Outcome, calibrated
    everyone = Outcome(True, "accepted the handshake and then answered HTTP 403 Forbidden",
                       "http 403 abc", weak=True)
    good_refused = Outcome(True, "...", "http 403 abc", weak=True)
    good_in = Outcome(False, "answered HTTP 200 OK", "http 200 def")
    assert calibrated(everyone, good_refused).refused is None
    assert calibrated(everyone, good_in).refused is True  # a 403 where the good one got a 200
    assert calibrated(everyone, None).refused is None  # a bare 403 with nothing to compare
    nginx = Outcome(True, "answered HTTP 400 (No required SSL certificate was sent)", "http 400 x")
    assert calibrated(nginx, None).refused is True  # says it is about the certificate
    closed = Outcome(True, "accepted the handshake and then closed", "closed")
    assert calibrated(closed, Outcome(True, "closed", "closed")).refused is None
    assert calibrated(closed, Outcome(False, "ticket", "ticket")).refused is True
