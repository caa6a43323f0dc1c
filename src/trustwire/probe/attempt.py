"""Handshake attempts: one purpose-built client context, one handshake, what came of it.

Every question the probe asks is one or more TLS handshakes, each with a context
built by :func:`client_context` for that question (one version, one cipher suite,
one group, one client certificate...). ``SSLContext._msg_callback`` records the
handshake messages into the attempt's :class:`~trustwire.probe.messages.HandshakeLog`
so :mod:`trustwire.probe.messages` can read what the server chose *from its
ServerHello*: an mTLS server that then refuses our anonymous client has still told
us which versions, suites and groups it accepts.

:class:`Runner` runs many attempts in a bounded thread pool (OpenSSL releases the
GIL while it works), each with its own timeout, so a local endpoint is probed in
about a second and a stalled one costs a few timeouts, not minutes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ssl
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustwire.errors import Diagnosis
from trustwire.probe.connect import ConnectFailed, open_connection, sni_for
from trustwire.probe.messages import HandshakeLog, ServerHello
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.tls import native
from trustwire.tls.diagnose import diagnose

__all__ = ["Attempt", "Job", "Runner", "attempt", "client_context"]


@dataclass
class Attempt:
    """One handshake and what came of it."""

    connected: bool = False
    connect_error: str | None = None
    log: HandshakeLog = field(default_factory=HandshakeLog)
    completed: bool = False
    """Our side finished the handshake."""
    refused: bool = False
    """The server ended it with an alert or a close before serving data."""
    timed_out: bool = False
    error: str | None = None
    diagnosis: Diagnosis | None = None
    served: bytes = b""
    version: str | None = None
    cipher: str | None = None

    @property
    def hello(self) -> ServerHello | None:
        return self.log.server_hello()

    @property
    def accepted(self) -> bool:
        """Completed and not refused: the server let this client in."""
        return self.completed and not self.refused


Job = tuple[Any, Callable[[], Attempt]]
"""A key to file the result under, and the attempt to run."""


def _record(conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
            data: bytes) -> None:
    log = getattr(conn, "_trustwire_log", None)
    if log is not None:
        log.record(direction, int(content_type), int(msg_type), data)


def client_context(
    *, minimum: str | None = None, maximum: str | None = None, ciphers: str | None = None,
    suites: str | None = None, groups: str | None = None, ca: Path | None = None,
    verify: bool = False, cert: tuple[Path, Path] | None = None, ocsp: bool = False,
) -> ssl.SSLContext:
    """A client context for one question. Raises ValueError when the local OpenSSL cannot."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is why we test them
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum:
            ctx.minimum_version = getattr(ssl.TLSVersion, minimum)
        if maximum:
            ctx.maximum_version = getattr(ssl.TLSVersion, maximum)
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise ValueError(f"the local OpenSSL cannot offer {ciphers}") from exc
    if suites is not None and not native.set_ciphersuites(ctx, suites):
        raise ValueError(f"cannot offer only {suites} from Python here")
    if groups is not None and not native.set_groups(ctx, groups):
        raise ValueError(f"the local OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer {groups}")
    if ocsp:
        native.request_ocsp(ctx)
    if verify:
        if ca is not None:
            ctx.load_verify_locations(cafile=str(ca))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False  # the probe checks names itself, to report them separately
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    ctx._msg_callback = _record  # type: ignore[attr-defined]
    return ctx


def attempt(target: ProbeTarget, ctx: ssl.SSLContext, *, timeout: float, verdict: bool = False,
            send: bytes | None = None) -> Attempt:
    """One handshake. With ``verdict``, wait for the server's decision on our certificate
    (TLS 1.3 refuses after the handshake): a ticket or data means accepted, an alert or
    a close before any data means refused."""
    result = Attempt()
    try:
        raw = open_connection(target, timeout)
    except ConnectFailed as exc:
        result.connect_error = exc.reason
        return result
    result.connected = True
    tls = ctx.wrap_socket(raw, server_hostname=sni_for(target), do_handshake_on_connect=False,
                          suppress_ragged_eofs=False)
    tls._trustwire_log = result.log  # type: ignore[attr-defined]
    try:
        tls.do_handshake()
        result.completed = True
        result.version = tls.version()
        cipher = tls.cipher()
        result.cipher = cipher[0] if cipher else None
        if verdict:
            _await_verdict(tls, result, timeout, send)
    except TimeoutError:
        result.timed_out = True
        result.error = "timeout"
    except (ssl.SSLError, OSError) as exc:
        result.refused = True
        result.error = str(getattr(exc, "reason", None) or exc)
        result.diagnosis = diagnose(exc, role="client")
    finally:
        tls._trustwire_log = None  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            tls.close()
    return result


def _await_verdict(tls: ssl.SSLSocket, result: Attempt, timeout: float, send: bytes | None) -> None:
    if not result.log.certificate_requested and send is None:
        return  # no certificate asked for, none to refuse: a silent server (SMTP) costs no timeout
    if send is not None:
        tls.sendall(send)
    deadline = time.monotonic() + timeout
    grace_until: float | None = None
    while time.monotonic() < deadline:
        wait = max(0.01, min(deadline, grace_until or deadline) - time.monotonic())
        tls.settimeout(wait)
        try:
            data = tls.recv(65536)
        except TimeoutError:
            if grace_until is not None or result.version != "TLSv1.3" or send is None:
                return  # no refusal arrived: the server let us in
            continue
        except ssl.SSLEOFError:
            result.refused = not result.served
            return
        if not data:
            result.refused = not result.served
            return
        result.served += data
        if len(result.served) > 16384 or (send is not None and b"\r\n\r\n" in result.served):
            return
        if result.log.ticket_received and grace_until is None:
            grace_until = time.monotonic() + 0.3
    if not result.served and not result.log.ticket_received and result.version == "TLSv1.3":
        result.refused = False  # silence is not refusal: no ticket, no alert, no close


class Runner:
    """Runs attempts against one target in a bounded thread pool, counting progress."""

    def __init__(self, target: ProbeTarget, options: ProbeOptions,
                 progress: Callable[[int], None] | None) -> None:
        self.target = target
        self.options = options
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=options.concurrency)
        self.progress = progress or (lambda n: None)

    def run(self, jobs: list[Job]) -> list[tuple[Any, Attempt]]:
        """Run ``jobs`` concurrently; results come back in completion order, with their keys."""
        futures = {self.pool.submit(fn): key for key, fn in jobs}
        results = []
        for future in concurrent.futures.as_completed(futures):
            results.append((futures[future], future.result()))
            self.progress(1)
        return results

    def one(self, ctx: ssl.SSLContext, **kwargs: Any) -> Attempt:
        """One attempt with this runner's target and timeout (``kwargs`` as :func:`attempt`)."""
        return attempt(self.target, ctx, timeout=self.options.timeout, **kwargs)

    def close(self) -> None:
        """Stop at once: pending attempts are cancelled, running ones end on their timeout."""
        self.pool.shutdown(wait=False, cancel_futures=True)
