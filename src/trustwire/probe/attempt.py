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

OpenSSL skips some messages inside the handshake without returning to Python (a stream of
HelloRequests, say): no socket timeout fires while it is busy. So the message callback is
also the attempt's watchdog (:func:`watch`): once the log is full
(:data:`~trustwire.probe.messages.LOG_MESSAGES`) or the attempt's deadline has passed, it
shuts the socket down, OpenSSL's next read fails and the attempt ends (raising from the
callback would not do: CPython keeps the exception until OpenSSL returns).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import ssl
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from trustwire.errors import Diagnosis
from trustwire.probe.connect import ConnectFailed, open_connection, sni_for
from trustwire.probe.messages import HandshakeLog, ServerHello
from trustwire.probe.reading import read_response
from trustwire.probe.target import ProbeOptions, ProbeTarget
from trustwire.tls import native
from trustwire.tls.diagnose import diagnose
from trustwire.wire.channel import VERDICT_CAP, Verdict, tls13_verdict

__all__ = ["OVERFLOWED", "STALLED", "Attempt", "Job", "Offer", "Runner", "attempt", "client_context",
           "cut_short", "watch"]

STALLED = "the server stopped answering"
"""Why an attempt was not made: the :class:`Runner` found the server silent (``stalled``)."""


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
    verify_code: int | None = None
    """OpenSSL's X509_V_ERR code when our verification of the server's chain failed."""
    diagnosis: Diagnosis | None = None
    served: bytes = b""
    """What the server sent after the handshake."""
    ended: bool = False
    """The server closed the connection (with or without an alert)."""
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


class Offer(TypedDict, total=False):
    """:func:`client_context` arguments for a handshake the server accepts (the versions and
    suites to offer): empty for a TLS 1.2+ server, one legacy version and every suite for a
    server that refuses TLS 1.2 and 1.3. ``client_context(**runner.offer, cert=...)``."""

    minimum: str
    maximum: str
    ciphers: str


OVERFLOWED = "the server sent more handshake messages than any real handshake has"
"""The attempt's error when its :class:`HandshakeLog` overflowed."""


def watch(tls: ssl.SSLSocket, log: HandshakeLog | None, deadline: float | None = None) -> None:
    """Record ``tls``'s messages into ``log`` and end the connection once the log is full or
    ``deadline`` (``time.monotonic()``) has passed, even inside OpenSSL. ``tls``'s context
    must come from :func:`client_context` (its message callback does this). ``watch(tls,
    None)`` stops both."""
    tls._trustwire_log = log  # type: ignore[attr-defined]
    tls._trustwire_deadline = deadline  # type: ignore[attr-defined]


def cut_short(tls: ssl.SSLSocket) -> bool:
    """Whether the watchdog (:func:`watch`) ended ``tls`` because its deadline had passed."""
    return bool(getattr(tls, "_trustwire_expired", False))


def _record(conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
            data: bytes) -> None:
    log = getattr(conn, "_trustwire_log", None)
    if log is None:
        return
    log.record(direction, int(content_type), int(msg_type), data)
    deadline = getattr(conn, "_trustwire_deadline", None)
    expired = deadline is not None and time.monotonic() > deadline
    if (log.overflowed or expired) and isinstance(conn, socket.socket):
        conn._trustwire_log = None  # type: ignore[attr-defined]  # once is enough
        conn._trustwire_expired = expired  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            socket.socket.shutdown(conn, socket.SHUT_RDWR)  # not SSLSocket's: OpenSSL is mid-call


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
    """One handshake. With ``verdict``, also learn what the server did with us afterwards:
    with ``send`` (an HTTP request), its whole response; without, whatever it sends or does
    within the verdict wait (TLS 1.3 refuses a certificate after the handshake; the rule is
    :func:`trustwire.wire.channel.tls13_verdict`, the one trustwire's own clients use)."""
    result = Attempt()
    try:
        raw = open_connection(target, timeout)
    except ConnectFailed as exc:
        result.connect_error = exc.reason
        return result
    result.connected = True
    tls = ctx.wrap_socket(raw, server_hostname=sni_for(target), do_handshake_on_connect=False,
                          suppress_ragged_eofs=False)
    watch(tls, result.log, time.monotonic() + timeout)
    try:
        tls.do_handshake()
        result.completed = True
        result.version = tls.version()
        cipher = tls.cipher()
        result.cipher = cipher[0] if cipher else None
        if verdict:
            # The verdict wait keeps its own deadlines (at most ``timeout``); the watchdog's
            # is a backstop for a server that keeps OpenSSL busy, a grace later so as not
            # to race them.
            watch(tls, result.log, time.monotonic() + timeout + _GRACE)
            _await_verdict(tls, result, timeout, send)
    except TimeoutError:
        result.timed_out = True
        result.error = "timeout"
    except (ssl.SSLError, OSError) as exc:
        if cut_short(tls):
            result.timed_out = True
            result.error = "timeout"
        elif result.log.overflowed:
            result.error = OVERFLOWED
        else:
            result.refused = not result.served
            result.ended = True
            result.error = str(getattr(exc, "reason", None) or exc)
            result.verify_code = getattr(exc, "verify_code", None)
            result.diagnosis = diagnose(exc, role="client")
    finally:
        watch(tls, None)
        with contextlib.suppress(OSError):
            tls.close()
    return result


_GRACE = 1.0
"""Seconds the watchdog gives the verdict wait past its own deadline."""
_POLL = 0.02
"""Seconds between looks for a post-handshake ticket (a blocking read would sleep through it)."""
_TICKET_GRACE = 0.1
"""Seconds to watch for a close after a TLS 1.3 ticket (see :func:`_await_verdict`)."""


def _await_verdict(tls: ssl.SSLSocket, result: Attempt, timeout: float,
                   send: bytes | None) -> None:
    if not result.log.certificate_requested and send is None:
        return  # no certificate asked for, none to refuse: a silent server (SMTP) costs no wait
    if send is not None:
        tls.sendall(send)
        result.served, ending = read_response(tls, time.monotonic() + timeout)
        result.ended = ending == "closed"
        if ending == "timeout" and not result.served:
            raise TimeoutError  # no answer at all (an answer without an end is kept)
        return
    # The longest wait trustwire's clients allow, not their RTT-scaled one: a client may
    # proceed early and learn of a late refusal on its first read, but a probe that stops
    # early on a loaded machine would report a refused certificate as "got in". Servers
    # that send tickets (most) or alerts answer long before this.
    deadline = time.monotonic() + min(timeout, VERDICT_CAP)
    tls13 = result.version == "TLSv1.3"
    ticket_seen: float | None = None
    while True:
        now = time.monotonic()
        if tls13 and result.log.ticket_received and ticket_seen is None:
            # A TLS 1.3 ticket says the handshake is done, not that our certificate passed:
            # nginx's stream module sends its tickets, then checks the certificate and
            # closes. Both happen in one step on the server, so a short grace sees the close.
            ticket_seen = now
            deadline = min(deadline, now + _TICKET_GRACE)
        left = deadline - now
        if left <= 0:
            return  # a ticket and no close, or silence: no refusal came (tls13_verdict)
        tls.settimeout(min(left, _POLL))
        try:
            data = tls.recv(65536)
        except TimeoutError:
            continue
        if not data:
            result.ended = True
            # In TLS 1.2 the ticket is part of the handshake: it says nothing about our
            # certificate, so only a TLS 1.3 ticket that came before the close counts.
            result.refused = tls13_verdict(ticket=False, messages=False, refused=False,
                                           ended=True) is Verdict.REFUSED
            return
        result.served += data
        return


class Runner:
    """Runs attempts against one target in a bounded thread pool, counting progress."""

    def __init__(self, target: ProbeTarget, options: ProbeOptions,
                 progress: Callable[[int], None] | None) -> None:
        self.target = target
        self.options = options
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=options.concurrency)
        self.progress = progress or (lambda n: None)
        self.retried = 0
        """Attempts run a second time, one at a time, after timing out concurrently."""
        self.stalled = False
        """Timeouts in a row (two retries, or a whole wave) and then a handshake the server
        took before timed out too: the server stopped answering, so later attempts are not
        made (they come back as :data:`STALLED`, see :meth:`silence`) instead of each
        waiting out the timeout."""
        self.offer: Offer = {}
        """How to make a handshake the server accepts (set by the version scan)."""

    def run(self, jobs: list[Job]) -> list[tuple[Any, Attempt]]:
        """Run ``jobs`` concurrently; results come back in completion order, with their keys.

        A timeout is never an answer: a server that handles one connection at a time (``openssl
        s_server``) lets queued handshakes time out. Those are run again one at a time, and
        only what still times out stays timed out (after two in a row, the rest are not
        retried; and if a handshake the server took before times out too, the server has
        stopped answering: :attr:`stalled`, and later runs return at once). The same check
        follows a whole wave (``concurrency``) of timeouts with no answer between them, and
        the attempts not started yet are then not made.
        """
        if self.stalled:
            return [(key, _not_asked()) for key, _ in jobs]
        futures = {self.pool.submit(fn): (key, fn) for key, fn in jobs}
        results: list[tuple[Any, Attempt]] = []
        again: list[Job] = []
        silent = 0  # timeouts since the last answer: a whole wave of them asks if it is stalled
        for future in concurrent.futures.as_completed(futures):
            key, fn = futures[future]
            if future.cancelled():
                results.append((key, _not_asked()))
                continue
            result = future.result()
            self.progress(1)
            if not result.timed_out:
                silent = 0
                results.append((key, result))
                continue
            again.append((key, fn))
            silent += 1
            if silent == max(2, self.options.concurrency) and not self._answers():
                self.stalled = True
                for pending in futures:
                    pending.cancel()
        in_a_row = 0
        for key, fn in again:
            if self.stalled:
                result = Attempt(connected=True, timed_out=True, error="timeout")
            elif in_a_row < 2:
                self.retried += 1
                result = fn()
                self.progress(1)
                in_a_row = in_a_row + 1 if result.timed_out else 0
                if in_a_row == 2:
                    self.stalled = not self._answers()
            else:
                result = _not_asked() if self.stalled else Attempt(
                    connected=True, timed_out=True, error="timeout")
            results.append((key, result))
        return results

    def _answers(self) -> bool:
        """Whether the server still answers a handshake it took before (:attr:`offer`): a
        server that drops only some hellos is not stalled."""
        check = attempt(self.target, client_context(**self.offer), timeout=self.options.timeout)
        self.progress(1)
        return check.connected and not check.timed_out

    def one(self, ctx: ssl.SSLContext, **kwargs: Any) -> Attempt:
        """One attempt with this runner's target and timeout (``kwargs`` as :func:`attempt`);
        none once the server has stalled."""
        if self.stalled:
            return _not_asked()
        return attempt(self.target, ctx, timeout=self.options.timeout, **kwargs)

    def silence(self, result: Attempt) -> str | None:
        """Why ``result`` is no answer at all (a timeout, no connection, not asked because the
        server stalled); None when the server answered (a hello, an alert, a close)."""
        if not result.connected:
            return f"no connection ({result.connect_error})"
        if result.error == STALLED:
            return STALLED
        if result.timed_out and result.hello is None:
            return f"no answer within {self.options.timeout:g}s"
        return None

    def close(self) -> None:
        """Stop at once: pending attempts are cancelled, running ones end on their timeout."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def _not_asked() -> Attempt:
    return Attempt(connected=True, timed_out=True, error=STALLED)
