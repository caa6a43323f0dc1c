"""What an HTTPS server did with a client it had let through the handshake. Pure.

nginx with ``ssl_verify_client on`` (and ``optional``) completes the TLS handshake with any
client and refuses a bad certificate at the HTTP layer: ``400 Bad Request`` with "No required
SSL certificate was sent" or "The SSL certificate error". So over HTTPS the probe judges
admission by the response to a real request: :func:`parse_response` reads it (with the
standard library's HTTP parser) and :func:`admission` says whether it is a refusal.
"""

from __future__ import annotations

import http.client
import io
import re
from dataclasses import dataclass

__all__ = ["Admission", "HttpAnswer", "admission", "parse_response", "response_complete"]

_CERTIFICATE_WORDS = re.compile(r"certificate|\bcert\b|client auth", re.IGNORECASE)
"""Words that tie a 4xx to the client certificate (nginx: "No required SSL certificate was
sent", "The SSL certificate error"); "SSL" alone is not enough ("Bad SSL request id")."""
_REFUSING_STATUSES = {495, 496}  # nginx's own codes for certificate errors (sent as 400)
_MAX_BODY = 65536


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


class _Bytes:
    """The socket face ``http.client.HTTPResponse`` reads from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def parse_response(data: bytes) -> HttpAnswer | None:
    """The response in ``data`` (possibly cut short), or None when it is not HTTP."""
    if not data.startswith(b"HTTP/"):
        return None
    response = http.client.HTTPResponse(_Bytes(data))  # type: ignore[arg-type]
    try:
        response.begin()
        try:
            body = response.read(_MAX_BODY)
        except http.client.IncompleteRead as exc:
            body = exc.partial
    except (http.client.HTTPException, ValueError):
        return None
    return HttpAnswer(status=response.status, reason=response.reason,
                      headers={k.lower(): v for k, v in response.getheaders()}, body=body)


def response_complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole response (headers and a Content-Length or chunked body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lowered = head.lower()
    match = re.search(rb"\r\ncontent-length:\s*(\d+)", lowered)
    if match:
        return len(body) >= int(match.group(1))
    if b"\r\ntransfer-encoding:" in lowered and b"chunked" in lowered:
        return body.endswith(b"0\r\n\r\n")
    return False  # read until the server closes


@dataclass(frozen=True)
class Admission:
    refused: bool
    what: str
    """What the server did, in words (``answered HTTP 400 Bad Request (...)``)."""
    about_certificate: bool
    """The answer says it is about the certificate (not just any 401/403)."""


def admission(answer: HttpAnswer) -> Admission:
    """A 4xx that is about the certificate, a 401 or a 403 is a refusal; any other answer (a
    200 with content, a 404...) means the request reached the application: "got in". A bare
    401/403 is only a refusal if the good certificate got something else (the caller checks)."""
    text = f"HTTP {answer.status} {answer.reason}".strip()
    about_certificate = bool(_CERTIFICATE_WORDS.search(answer.body.decode("latin-1")))
    if answer.status in _REFUSING_STATUSES | {401, 403} or (
            400 <= answer.status < 500 and about_certificate):
        snippet = _snippet(answer.body)
        return Admission(True, f"answered {text}" + (f" ({snippet})" if snippet else ""),
                         about_certificate or answer.status in _REFUSING_STATUSES)
    return Admission(False, f"answered {text} with {len(answer.body)} bytes of content",
                     about_certificate)


def _snippet(body: bytes) -> str:
    """The sentence about the certificate, from an HTML or text error page."""
    text = re.sub(rb"<[^>]*>", b" ", body).decode("latin-1")
    for line in (part.strip() for part in re.split(r"[\r\n]+", text)):
        if _CERTIFICATE_WORDS.search(line):
            return " ".join(line.split())[:120]
    return ""
