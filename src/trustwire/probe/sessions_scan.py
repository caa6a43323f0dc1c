"""Collect :class:`~trustwire.probe.sessions.SessionFacts`: renegotiation, resumption, 0-RTT,
the certificate a client without SNI gets, and SCTs. The IO half of
:mod:`trustwire.probe.sessions`.

Theory of operation: five short chains of handshakes run side by side in the
:class:`~trustwire.probe.attempt.Runner`'s pool, each connection opened by
:func:`~trustwire.probe.connect.open_connection` and each read bounded by the probe's
timeout (waits for something that may never come are shorter, see :func:`_quiet`):

1. renegotiation: a TLS 1.2 handshake, then ``SSL_renegotiate`` and a second
   ``do_handshake`` on the same connection (:mod:`trustwire.tls.native_conn`). A second
   ServerHello means the server renegotiated; a no_renegotiation alert, a close or silence
   means it did not.
2. three resumption chains: session ID (TLS 1.2, ``OP_NO_TICKET``), ticket (TLS 1.2) and
   ticket (TLS 1.3). Each makes a handshake, keeps its session (for TLS 1.3, after reading
   the NewSessionTicket that follows the handshake), closes with close_notify (a server
   drops a cached session whose connection ended in an error), then offers the session on
   a second handshake and reads ``session_reused``. The TLS 1.3 second handshake also sends
   early data when the ticket allows it: the early_data extension with zero bytes of data,
   so the server decides about 0-RTT while nothing reaches its application. The ticket
   chains' first handshakes ask for SCTs and a stapled OCSP response.
3. one handshake without SNI, for the certificate such a client gets.

Edge cases: an mTLS server refuses an anonymous client, so every context carries the
probe's ``--cert`` when it has one; without it the chain reports "not tested" and why.
A server that closes or answers with an alert at any step ends that chain only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from trustwire.probe.attempt import STALLED, Runner, client_context, watch
from trustwire.probe.checks import hostname_matches
from trustwire.probe.connect import ConnectFailed, open_connection, sni_for
from trustwire.probe.messages import CERTIFICATE, NEW_SESSION_TICKET, SERVER_HELLO, HandshakeLog
from trustwire.probe.observations import Observations, Support
from trustwire.probe.session_wire import (
    SIGNED_CERTIFICATE_TIMESTAMP,
    Sct,
    SessionTicket,
    embedded_scts,
    encrypted_extensions,
    leaf_entry_extensions,
    must_staple,
    ocsp_scts,
    parse_new_session_ticket,
    parse_sct_list,
    server_hello_extensions,
)
from trustwire.probe.sessions import (
    SESSION_ID,
    TICKET_TLS12,
    TICKET_TLS13,
    EarlyDataFacts,
    NoSniFacts,
    Renegotiation,
    Resumption,
    SctFacts,
    SessionFacts,
)
from trustwire.probe.tls_scan import ALL_LEGACY
from trustwire.tls import native_conn

__all__ = ["scan_sessions"]

_QUIET_MIN = 0.25
"""Seconds to wait for what a server sends unprompted right after the handshake (TLS 1.3
tickets, a close_notify in reply to ours): well over a LAN round trip; see :func:`_quiet`."""
_ENCRYPTED_EXTENSIONS = 8


@dataclass
class _Handshake:
    """One connection of a chain; ``tls`` stays open until :func:`_close`."""

    log: HandshakeLog = field(default_factory=HandshakeLog)
    tls: ssl.SSLSocket | None = None
    error: str | None = None
    seconds: float = 0.0
    early_written: bool | None = None
    silent: bool = False
    """No answer at all (no connection, a timeout, or the server had stopped answering)."""


@dataclass
class _Chain:
    resumption: Resumption
    first: _Handshake | None = None
    """The first handshake, when it asked for SCTs and a stapled OCSP response."""
    asked_sct: bool = False
    """That handshake sent the signed_certificate_timestamp extension."""
    early: EarlyDataFacts | None = None


def scan_sessions(runner: Runner, obs: Observations) -> None:
    """Fill ``obs.sessions``. Needs :func:`~trustwire.probe.tls_scan.scan_versions` (which
    versions to try) and :func:`~trustwire.probe.tls_scan.scan_certificate` (the chain)."""
    pool = runner.pool
    renegotiation = pool.submit(_renegotiation, runner, obs)
    chains = {method: pool.submit(_resume, runner, obs, method)
              for method in (SESSION_ID, TICKET_TLS12, TICKET_TLS13)}
    no_sni = pool.submit(_no_sni, runner, obs)
    done = {method: future.result() for method, future in chains.items()}
    leaf = obs.chain[0] if obs.chain else None
    obs.sessions = SessionFacts(
        renegotiation=renegotiation.result(),
        resumption=[chain.resumption for chain in done.values()],
        early_data=done[TICKET_TLS13].early or _no_tls13_session(done[TICKET_TLS13].resumption),
        no_sni=no_sni.result(),
        scts=_scts(leaf, done),
        must_staple=must_staple(leaf) if leaf is not None else None,
    )


def _no_tls13_session(resumption: Resumption) -> EarlyDataFacts:
    if not resumption.applicable:
        return EarlyDataFacts(None, None, "the server does not accept TLS 1.3, so no 0-RTT")
    return EarlyDataFacts(None, None, resumption.note or "no TLS 1.3 session", tested=False)


def _quiet(runner: Runner, handshake: _Handshake) -> float:
    """How long to wait for something the server may not send: four handshake times (a
    slow link is slow for both), at least :data:`_QUIET_MIN`, at most the timeout."""
    return min(runner.options.timeout, max(_QUIET_MIN, 4 * handshake.seconds))


def _identity(runner: Runner) -> tuple[Path, Path] | None:
    options = runner.options
    return (options.cert, options.key) if options.cert and options.key else None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc)


def _why(runner: Runner, handshake: _Handshake) -> str:
    """Why a handshake failed, in words."""
    if handshake.log.certificate_requested and _identity(runner) is None:
        return "the server requires a client certificate (give --cert and --key)"
    return f"the handshake failed ({handshake.error})"


def _handshake(runner: Runner, ctx: ssl.SSLContext, *, sni: bool = True,
               session: ssl.SSLSession | None = None, early_data: bool = False) -> _Handshake:
    result = _Handshake()
    timeout = runner.options.timeout
    if runner.stalled:  # it would not be answered: do not wait out the timeout
        result.error, result.silent = STALLED, True
        return result
    try:
        raw = open_connection(runner.target, timeout)
    except ConnectFailed as exc:
        result.error, result.silent = exc.reason, True
        return result
    # Without it, a close_notify right after our Finished (the last message of a resumed
    # TLS 1.2 handshake) waits for the server's delayed ACK: 40 ms per connection on Linux.
    with contextlib.suppress(OSError):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.monotonic()
    try:
        tls = ctx.wrap_socket(raw, server_hostname=sni_for(runner.target) if sni else None,
                              session=session, do_handshake_on_connect=False,
                              suppress_ragged_eofs=False)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raw.close()
        result.error = _reason(exc)
        return result
    watch(tls, result.log, time.monotonic() + timeout)  # the log's caps and the deadline
    result.tls = tls
    if early_data:
        result.early_written = native_conn.write_early_data(tls)
    try:
        tls.do_handshake()
    except TimeoutError:
        result.error, result.silent = f"no answer within {timeout:g} s", True
    except (ssl.SSLError, OSError) as exc:
        result.error = _reason(exc)
    result.seconds = time.monotonic() - started
    runner.progress(1)
    return result


def _await_ticket(runner: Runner, handshake: _Handshake) -> None:
    """Read until a TLS 1.3 NewSessionTicket arrives, the server ends the connection (an mTLS
    refusal comes here too) or :func:`_quiet` passes."""
    tls = handshake.tls
    if tls is None or handshake.error is not None:
        return
    deadline = time.monotonic() + _quiet(runner, handshake)
    tls.settimeout(0.0)  # select() waits; recv() only processes what has arrived
    while not handshake.log.ticket_received:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([tls], [], [], left)[0]:
            return
        try:
            if not tls.recv(65536):
                handshake.error = "the server closed the connection"
                return
        except ssl.SSLWantReadError:
            continue
        except (ssl.SSLError, OSError) as exc:
            handshake.error = _reason(exc)
            return


def _close(runner: Runner, handshake: _Handshake) -> None:
    """close_notify, and a short wait for the server's, so it keeps the session cached."""
    tls = handshake.tls
    if tls is None:
        return
    watch(tls, None)
    with contextlib.suppress(OSError, ValueError):
        tls.settimeout(_quiet(runner, handshake))
        tls.unwrap()
    with contextlib.suppress(OSError):
        tls.close()


def _tickets(log: HandshakeLog, *, tls13: bool) -> list[SessionTicket]:
    found = []
    for msg_type, data in log.received:
        if msg_type == NEW_SESSION_TICKET:
            with contextlib.suppress(ValueError):
                found.append(parse_new_session_ticket(data, tls13=tls13))
    return found


def _below_13(obs: Observations) -> tuple[str | None, Support]:
    """The newest version below TLS 1.3 the server accepts (TLS 1.2 when it can: renegotiation
    and TLS 1.2-style resumption exist from TLS 1.0 on), else None and TLS 1.2's support."""
    for version in ("TLSv1.2", "TLSv1.1", "TLSv1"):
        support = obs.versions.get(version)
        if support is not None and support.accepted:
            return version, support
    return None, obs.versions.get("TLSv1.2") or Support(None, "not tested")


_LABEL = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2"}


def _over(version: str) -> str:
    """Which version a TLS 1.2-titled check was made over, when it is an older one."""
    return "" if version == "TLSv1.2" else f"over {_LABEL[version]}"


def _renegotiation(runner: Runner, obs: Observations) -> Renegotiation:
    version, support = _below_13(obs)
    if version is None and support.accepted is None:
        return Renegotiation(None, "TLS 1.2 support is unknown")
    if version is None:
        return Renegotiation(False, "not applicable: the server does not accept TLS 1.2 or "
                                    "older (TLS 1.3 has no renegotiation)", applicable=False)
    found = _renegotiate(runner, version)
    if _over(version):
        found.note += f" ({_over(version)})"
    return found


def _renegotiate(runner: Runner, version: str) -> Renegotiation:
    attr = version.replace(".", "_")
    ctx = client_context(minimum=attr, maximum=attr, ciphers=ALL_LEGACY, cert=_identity(runner))
    handshake = _handshake(runner, ctx)
    try:
        tls = handshake.tls
        if tls is None or handshake.error is not None:
            return Renegotiation(None, _why(runner, handshake))
        if not native_conn.renegotiate(tls):
            return Renegotiation(None, "this Python cannot start a renegotiation")
        tls.settimeout(runner.options.timeout)
        try:
            tls.do_handshake()
        except TimeoutError:
            return Renegotiation(False, "the server did not answer our renegotiation within "
                                        f"{runner.options.timeout:g} s")
        except ssl.SSLError as exc:
            if "NO_RENEGOTIATION" in _reason(exc).upper():
                return Renegotiation(False, "the server answered with a no_renegotiation alert")
            return Renegotiation(False, f"the server ended the connection ({_reason(exc)})")
        except OSError as exc:
            return Renegotiation(False, f"the server closed the connection ({exc})")
        hellos = sum(1 for msg_type, _ in handshake.log.received if msg_type == SERVER_HELLO)
        if hellos < 2:
            return Renegotiation(False, "the server did not answer our renegotiation")
        return Renegotiation(True, "a second handshake completed on the same connection")
    finally:
        _close(runner, handshake)


def _resume(runner: Runner, obs: Observations, method: str) -> _Chain:
    version: str | None = "TLSv1.3"
    if method == TICKET_TLS13:
        support = obs.versions.get("TLSv1.3") or Support(None)
    else:
        version, support = _below_13(obs)
    if version is None or not support.accepted:
        wanted = "TLSv1.3" if method == TICKET_TLS13 else "TLSv1.2"
        if support.accepted is None:
            return _Chain(Resumption(method, None, note=f"{wanted} support is unknown"))
        return _Chain(Resumption(method, None, applicable=False, note=(
            f"the server does not accept {wanted}" + (" or older" if version is None and
                                                      method != TICKET_TLS13 else ""))))
    chain = _resume_over(runner, method, version)
    if method != TICKET_TLS13 and _over(version):
        note = chain.resumption.note
        chain.resumption.note = f"{note}; {_over(version)}" if note else _over(version)
    return chain


def _resume_over(runner: Runner, method: str, version: str) -> _Chain:
    tls13 = method == TICKET_TLS13
    attr = version.replace(".", "_")
    ctx = client_context(minimum=attr, maximum=attr, ciphers=None if tls13 else ALL_LEGACY,
                         ocsp=method != SESSION_ID, cert=_identity(runner))
    if method == SESSION_ID:
        ctx.options |= ssl.OP_NO_TICKET
    asked_sct = method != SESSION_ID and native_conn.enable_ct(ctx)
    first = _handshake(runner, ctx)
    if tls13:
        _await_ticket(runner, first)
    session = first.tls.session if first.tls is not None and first.error is None else None
    tickets = _tickets(first.log, tls13=tls13)
    _close(runner, first)
    chain = _Chain(Resumption(method, None, tickets=tickets),
                   first=first if method != SESSION_ID else None, asked_sct=asked_sct)
    if session is None:
        chain.resumption.note = _why(runner, first)
        return chain
    offered = max((t.max_early_data or 0 for t in tickets), default=0) if tls13 else 0
    second = _handshake(runner, ctx, session=session, early_data=offered > 0)
    try:
        reused = bool(second.tls is not None and second.error is None
                      and second.tls.session_reused)
        chain.resumption.resumed, chain.resumption.note = _resumption_note(
            method, reused, tickets, second)
        if tls13:
            chain.early = _early(second, offered, tickets)
    finally:
        _close(runner, second)
    return chain


def _resumption_note(method: str, reused: bool, tickets: list[SessionTicket],
                     second: _Handshake) -> tuple[bool | None, str | None]:
    if second.error is not None:
        return None, f"the second handshake failed ({second.error})"
    if method == SESSION_ID:
        return reused, None if reused else "a full handshake again"
    if not tickets:
        note = "no ticket issued" + ("; resumed by session ID instead" if reused else "")
        return False, note
    return reused, None if reused else "a ticket was issued but not honoured"


def _early(second: _Handshake, offered: int, tickets: list[SessionTicket]) -> EarlyDataFacts:
    if not tickets:
        return EarlyDataFacts(None, None, "no TLS 1.3 session ticket, so no 0-RTT")
    if offered <= 0:
        return EarlyDataFacts(None, None, "the TLS 1.3 tickets do not offer early data")
    if second.early_written is None:
        return EarlyDataFacts(offered, None, "this Python cannot send early data")
    if not second.early_written or second.tls is None:
        return EarlyDataFacts(offered, None, "OpenSSL would not send early data with the ticket")
    status = native_conn.early_data_status(second.tls)
    if status is native_conn.EarlyData.ACCEPTED:
        return EarlyDataFacts(offered, True, "early data was accepted on a resumed connection "
                              "(the probe sent none of its own, so nothing reached the "
                              "application)")
    if status is native_conn.EarlyData.REJECTED:
        return EarlyDataFacts(offered, False, "the server rejected it and went on without 0-RTT")
    return EarlyDataFacts(offered, None, "the early data could not be sent"
                          + (f" ({second.error})" if second.error else ""))


def _no_sni(runner: Runner, obs: Observations) -> NoSniFacts:
    if sni_for(runner.target) is None:
        return NoSniFacts(applicable=False, note="the target is an IP address, so every "
                                                 "handshake already goes without SNI")
    handshake = _handshake(runner, client_context(**runner.offer, cert=_identity(runner)),
                           sni=False)
    _close(runner, handshake)
    chain, _ = handshake.log.chain_and_ocsp()
    if not chain:
        if handshake.silent:
            return NoSniFacts(applicable=True, note=f"no answer ({handshake.error})")
        if handshake.error is None:
            return NoSniFacts(applicable=True, note="the server sent no certificate")
        return NoSniFacts(applicable=True, refused=True, note=handshake.error)
    try:
        leaf = x509.load_der_x509_certificate(chain[0])
    except ValueError:
        return NoSniFacts(applicable=True, note="the certificate could not be parsed")
    return NoSniFacts(applicable=True, refused=False, leaf=leaf,
                      valid_for_name=hostname_matches(leaf, runner.target.server_name),
                      same_as_sni=(leaf == obs.chain[0]) if obs.chain else None)


def _scts(leaf: x509.Certificate | None, chains: dict[str, _Chain]) -> SctFacts:
    notes = []
    embedded: list[Sct] | None = None
    if leaf is not None:
        try:
            embedded = embedded_scts(leaf)
        except ValueError:
            notes.append("the embedded SCT list is malformed")
    seen = [(c.first.log, c.asked_sct) for c in (chains[TICKET_TLS13], chains[TICKET_TLS12])
            if c.first is not None and c.first.log.first(CERTIFICATE) is not None]
    if not seen:
        notes.append("no handshake that asked for SCTs completed")
        return SctFacts(embedded, None, None, "; ".join(notes))
    tls_scts: list[Sct] | None = [] if any(asked for _, asked in seen) else None
    if tls_scts is None:
        notes.append("this Python cannot ask for the SCT extension")
    ocsp: list[Sct] | None = []
    for log, asked in seen:  # TLS 1.3 and 1.2 can differ (OpenSSL's serverinfo v1 is 1.2 only)
        if asked:
            try:
                for body in _sct_extensions(log):
                    tls_scts = _merge(tls_scts, parse_sct_list(body))
            except ValueError:
                notes.append("the SCT extension is malformed")
        staple = log.chain_and_ocsp()[1]
        if staple is not None:
            try:
                ocsp = _merge(ocsp, ocsp_scts(staple))
            except ValueError:
                notes.append("the stapled OCSP response is malformed")
    return SctFacts(embedded, tls_scts, ocsp, "; ".join(dict.fromkeys(notes)) or None)


def _merge(known: list[Sct] | None, more: list[Sct]) -> list[Sct]:
    """``known`` and the SCTs of ``more`` not already in it."""
    merged = list(known or [])
    merged += [sct for sct in more if sct not in merged]
    return merged


def _sct_extensions(log: HandshakeLog) -> list[bytes]:
    """The signed_certificate_timestamp extension bodies: TLS 1.2 ServerHello, TLS 1.3
    leaf CertificateEntry, or EncryptedExtensions. Raises ValueError."""
    found = []
    hello = log.server_hello()
    sources = [(log.first(SERVER_HELLO), server_hello_extensions)]
    if hello is not None and hello.version == "TLSv1.3":
        sources += [(log.first(_ENCRYPTED_EXTENSIONS), encrypted_extensions),
                    (log.first(CERTIFICATE), leaf_entry_extensions)]
    for message, parse in sources:
        if message is not None:
            body = parse(message).get(SIGNED_CERTIFICATE_TIMESTAMP)
            if body is not None:
                found.append(body)
    return found
