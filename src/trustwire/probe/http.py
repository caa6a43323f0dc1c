"""The HTTP part of the probe: one GET for the status and security headers, and the
plain-HTTP redirect when asked.

The request goes over a verified connection first; when the chain does not verify, the
headers are read anyway over an unverified one and :attr:`Observations.http_verified`
says so (the chain's own verdict is :mod:`trustwire.probe.tls_scan`'s).

Every answer is read here under one deadline (the probe's timeout) and at most
:data:`MAX_ANSWER` bytes, then parsed by :func:`trustwire.probe.http_answer.parse_response`:
a server that sends its headers a byte at a time costs one timeout, not one per byte (which
is what a per-read socket timeout, ``http.client``'s, gives). The handshake has its own
deadline, watched from inside OpenSSL (:func:`trustwire.probe.attempt.watch`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
import time
from dataclasses import dataclass

from trustwire.probe.attempt import Runner, client_context, cut_short, watch
from trustwire.probe.connect import ConnectFailed, open_connection
from trustwire.probe.http_answer import HttpAnswer, parse_response
from trustwire.probe.messages import HandshakeLog
from trustwire.probe.observations import Observations
from trustwire.probe.reading import MAX_ANSWER, read_response
from trustwire.probe.target import ProbeTarget

__all__ = ["MAX_ANSWER", "NoAnswer", "check_http", "http_request", "read_answer"]

def http_request(target: ProbeTarget, *, compressed: bool = False) -> bytes:
    """The raw GET the probe sends where a handshake must be followed by a request; with
    ``compressed``, one that accepts compressed bodies (does the server compress? BREACH)."""
    accept = "Accept-Encoding: gzip, deflate, br\r\n" if compressed else ""
    return (f"GET {target.path} HTTP/1.1\r\nHost: {target.server_name}\r\n"
            f"User-Agent: trustwire-probe\r\n{accept}Connection: close\r\n\r\n").encode()


@dataclass
class NoAnswer(Exception):
    """No HTTP answer could be read: ``reason`` says why, in a phrase."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def read_answer(sock: socket.socket, deadline: float) -> HttpAnswer:
    """Read an HTTP answer from ``sock`` until it is complete, the server closes, it reaches
    :data:`MAX_ANSWER` bytes or ``deadline`` (``time.monotonic()``) passes, and parse it. A
    body cut short is kept as far as it came; headers cut short are no answer.

    Raises:
        NoAnswer: the headers did not all come, or are not HTTP.
        OSError: the connection failed (``ssl.SSLError`` over TLS).
    """
    data, ending = read_response(sock, deadline)
    answer = parse_response(data) if b"\r\n\r\n" in data else None
    if answer is not None:
        return answer
    if data and (b"\r\n\r\n" in data or not b"HTTP/".startswith(data[:5])):
        raise NoAnswer("the server's answer is not HTTP")
    raise NoAnswer({
        "closed": "the server closed the connection " + ("in the middle of its HTTP headers"
                                                         if data else "without an HTTP answer"),
        "full": f"the server's HTTP headers are longer than {MAX_ANSWER // 1024} KiB",
        "timeout": "the server's HTTP answer did not end within the timeout" if data else
                   "the server did not answer the HTTP request within the timeout",
    }[ending])


def _get(target: ProbeTarget, ctx: ssl.SSLContext, request: bytes, timeout: float) -> HttpAnswer:
    """One HTTPS exchange: the handshake within ``timeout``, then the answer within another.

    Raises:
        ConnectFailed, NoAnswer, ssl.SSLCertVerificationError, OSError.
    """
    raw = open_connection(target, timeout)
    deadline = time.monotonic() + timeout
    tls = ctx.wrap_socket(raw, server_hostname=target.server_name, do_handshake_on_connect=False)
    with contextlib.closing(tls):
        watch(tls, HandshakeLog(), deadline)
        try:
            tls.settimeout(timeout)
            tls.do_handshake()
            tls.sendall(request)
            deadline = time.monotonic() + timeout
            watch(tls, HandshakeLog(), deadline + 1)  # a backstop: read_answer's comes first
            answer = read_answer(tls, deadline)
        except (OSError, NoAnswer) as exc:
            if cut_short(tls) or isinstance(exc, TimeoutError):
                raise NoAnswer(f"no answer within {timeout:g} s") from exc
            raise
        finally:
            watch(tls, None)
    return answer


def check_http(runner: Runner, obs: Observations) -> None:
    """GET the target's path: status and headers into ``obs`` (and the redirect, if asked)."""
    target, options = runner.target, runner.options
    cert = (options.cert, options.key) if options.cert and options.key else None
    request = http_request(target, compressed=True)
    for verified in (True, False):
        ctx = client_context(verify=verified, ca=options.ca, cert=cert)
        ctx.check_hostname = verified  # a browser's view: the name counts
        try:
            answer = _get(target, ctx, request, options.timeout)
        except ssl.SSLCertVerificationError:
            continue  # read the headers anyway, over an unverified connection, and say so
        except (ConnectFailed, NoAnswer) as exc:
            obs.http_error = str(exc)
            break
        except OSError as exc:
            obs.http_error = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            break
        obs.http_status = answer.status
        obs.http_headers = answer.headers
        obs.http_verified = verified
        break
    runner.progress(1)
    if not options.check_redirect:
        obs.untested.append(("HTTP to HTTPS redirect", "not checked: pass --check-redirect "
                                                       "(and --http-port if not 80)"))
        return
    obs.redirect = _redirect(target, options.http_port, options.timeout)


def _redirect(target: ProbeTarget, port: int, timeout: float) -> tuple[int | None, str | None]:
    """(status, Location) of the plain-HTTP answer on ``port``, or (None, why not)."""
    where = f"http://{target.host}:{port}"
    plain = dataclasses.replace(target, port=port, https=False, starttls=None)
    try:
        with contextlib.closing(open_connection(plain, timeout)) as sock:
            sock.sendall(http_request(target))
            answer = read_answer(sock, time.monotonic() + timeout)
    except ConnectFailed as exc:
        return None, f"cannot reach {where}: {exc.reason}"
    except NoAnswer as exc:
        return None, f"{where}: {exc.reason}"
    except OSError as exc:
        return None, f"{where}: {exc.strerror or exc}"
    return answer.status, answer.headers.get("location")
