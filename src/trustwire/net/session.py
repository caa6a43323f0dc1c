"""A session: one TLS connection as its listener tracks it.

Theory of operation
-------------------
A :class:`Session` owns a :class:`TLSTransport` and receives its callbacks. It
is where the listener's rules meet a connection:

* **before authentication** it counts as unauthenticated (the listener caps
  those, in all and per source address) until its handshake ends;
* **at the end of the handshake** the gate's admission decision is taken again
  with the current trust state (full or resumed); a refusal there (a reload in
  between) closes the session with the reason;
* **while open** the sweep checks the handshake and idle timeouts and whether
  the certificate ran out; a reload re-judges it. A session no longer admitted
  is *cut*: told why (subclasses decide how: an error frame, a TLS close), and
  aborted :data:`CUT_BOUND` seconds later whatever the peer does, so a peer that
  stops reading, or keeps a partial message buffered, cannot stay;
* **at the end** it reports its bytes and messages and the one ``closed`` event.

Subclasses (message sessions in :mod:`trustwire.server`, splices in
:mod:`trustwire.tunnel`) implement the hooks at the bottom.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from typing import TYPE_CHECKING

from trustwire.authz.policy import Decision
from trustwire.errors import Diagnosis
from trustwire.identity import PeerIdentity
from trustwire.net.transport import TLS_HANDSHAKING, TLS_OPEN, TLSTransport
from trustwire.tls.diagnose import diagnose_refusal

if TYPE_CHECKING:
    from trustwire.net.listener import Listener

__all__ = ["CUT_BOUND", "Session"]

CUT_BOUND = 1.0
"""Seconds a refused or revoked session gets to take its last words (error frame,
close_notify) before it is aborted, whatever the peer sends or fails to read."""


class Session:
    """What every tracked TLS connection shares: admission, timeouts, close reasons.

    Args:
        listener: the listener that owns it.
        server_side: the TLS side accepts (False: a tunnel client connecting out).
        server_hostname: SNI and the name to verify (client side only).
        presents_cert: whether this side sends a certificate (sharpens diagnoses).
    """

    carries_messages = True
    """False for byte streams (tunnels): their close events have no message count."""

    __slots__ = (
        "_cut_timer", "_reason", "_seen", "_write_paused", "expires_at", "handshake_seconds",
        "last_active", "listener", "messages", "opened", "peer", "peer_verified", "started", "tls",
        "verified_by",
    )

    def __init__(self, listener: Listener, *, server_side: bool = True,
                 server_hostname: str | None = None, presents_cert: bool = False) -> None:
        self.listener = listener
        self.started = time.monotonic()
        self.last_active = self.started
        """When the sweep last saw bytes move (not stamped per message: that costs a clock
        read on the hot path; the sweep compares byte counters instead)."""
        self._seen = 0
        self.peer: PeerIdentity | None = None
        self.peer_verified = True
        """False when ``peer`` comes from a certificate OpenSSL refused (names are claims)."""
        self.verified_by: frozenset[str] = frozenset()
        """Fingerprints of the CA(s) the peer counts as verified by (see the gate)."""
        self.expires_at = math.inf
        """Wall-clock time the peer's certificate runs out (the sweep then re-judges)."""
        self.handshake_seconds = 0.0
        self.messages = 0
        self.opened = False
        self._write_paused = False
        self._reason = "closed by peer"
        self._cut_timer: asyncio.TimerHandle | None = None
        self.tls = TLSTransport(listener.context, self, server_side=server_side,
                                server_hostname=server_hostname,
                                write_high_water=listener.limits.write_high_water,
                                presents_cert=presents_cert)

    # -- facts ----------------------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        """The peer's address as ``host:port`` (``[v6]:port``)."""
        return self.tls.peername

    @property
    def close_reason(self) -> str:
        return self._reason

    def live_bytes(self) -> tuple[int, int, int]:
        """Bytes in, bytes out and messages so far (metrics add live sessions' share)."""
        return self.tls.bytes_in, self.tls.bytes_out, self.messages

    # -- TLS callbacks --------------------------------------------------------------------------

    def tls_connected(self, tls: TLSTransport) -> None:
        if tls.server_side:
            self.listener.hold_unauthenticated(self)

    def tls_established(self, tls: TLSTransport) -> None:
        listener = self.listener
        self.handshake_seconds = elapsed = time.monotonic() - self.started
        listener.stats.observe_handshake(elapsed)
        listener.release_unauthenticated(self)
        peer = self.peer = tls.peer
        decision, self.verified_by = listener.gate.admit_established(peer, resumed=tls.resumed)
        if not decision.allowed:
            listener.stats.access_denied += 1
            if listener.observer is not None:
                listener.observer.access_denied(self, decision)
            self._refuse_for(f"access denied: {decision.reason}")
            return
        if peer is not None:
            self.expires_at = peer.not_after.timestamp()
        self.opened = True
        listener.stats.handshakes_ok += 1
        if listener.observer is not None:
            listener.observer.handshake_ok(self)
        if listener.closing:
            self.begin_shutdown()
        else:
            self.on_open()

    def tls_failed(self, exc: BaseException, diagnosis: Diagnosis, after_handshake: bool) -> None:
        if after_handshake:
            self._reason = f"TLS error: {diagnosis.why}"
            return
        listener = self.listener
        denial = listener.gate.take_denial()
        if denial is not None:
            self.peer = denial.peer
            self.peer_verified = denial.verified
            decision = denial.decision
            if decision is not None:  # the gate refused (not OpenSSL's own checks)
                diagnosis = diagnose_refusal(decision.code, decision.reason, role=self.tls.role)
                if denial.peer is not None:
                    listener.stats.access_denied += 1
                    if listener.observer is not None:
                        listener.observer.access_denied(self, decision)
        listener.stats.handshakes_failed += 1
        listener.stats.handshake_failures[diagnosis.reason] += 1
        if listener.observer is not None:
            listener.observer.handshake_failed(self, diagnosis)

    def tls_eof(self, clean: bool) -> None:
        self.on_data_end(clean)

    def tls_closed(self, exc: BaseException | None) -> None:
        listener = self.listener
        listener.forget(self)
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        stats = listener.stats
        stats.bytes_in += self.tls.bytes_in
        stats.bytes_out += self.tls.bytes_out
        stats.messages += self.messages
        if self.opened and listener.observer is not None:
            listener.observer.closed(self)
        self.on_closed()

    def tls_pause_writing(self) -> None:
        self._write_paused = True
        self.tls.pause_reading()

    def tls_resume_writing(self) -> None:
        self._write_paused = False
        self.on_resume_writing()

    # -- rules the listener applies -------------------------------------------------------------

    def check(self, now: float, wall: float) -> None:
        """The sweep's visit: handshake and idle timeouts, and the certificate's end."""
        tls = self.tls
        limits = self.listener.limits
        if tls.state is TLS_HANDSHAKING:
            if now - self.started > limits.handshake_timeout:
                self.handshake_timed_out(limits.handshake_timeout)
            return
        if tls.state is not TLS_OPEN or not self.opened:
            return
        if wall > self.expires_at:
            self.rejudge(at=wall)
            return
        if limits.idle_timeout:
            seen = tls.bytes_in + tls.bytes_out
            if seen != self._seen:
                self._seen = seen
                self.last_active = now
            elif now - self.last_active > limits.idle_timeout:
                self._reason = "idle timeout"
                self.refuse(f"idle for {limits.idle_timeout:g} seconds")

    def rejudge(self, at: float | None = None) -> bool:
        """Admission again, with the current trust state (at Unix time ``at``, default now);
        cuts the session if refused.

        Returns:
            True when the session was cut.
        """
        if not self.opened or self.tls.closed:
            return False
        when = dt.datetime.fromtimestamp(at, dt.UTC) if at is not None else None
        decision = self.listener.gate.judge(self.peer, self.verified_by, when)
        if decision.allowed:
            return False
        self.cut(decision)
        return True

    def cut(self, decision: Decision) -> None:
        """This open session is no longer admitted: say why, close, abort after CUT_BOUND."""
        listener = self.listener
        listener.stats.sessions_revoked += 1
        if listener.observer is not None:
            listener.observer.access_revoked(self, decision)
        self._refuse_for(f"access revoked: {decision.reason}")

    def _refuse_for(self, text: str) -> None:
        self._reason = text
        self.refuse(text)
        if self.tls.transport is not None and self._cut_timer is None:
            self._cut_timer = asyncio.get_running_loop().call_later(CUT_BOUND, self.abort)

    def handshake_timed_out(self, seconds: float) -> None:
        listener = self.listener
        diagnosis = self.timeout_diagnosis(seconds)
        listener.stats.handshakes_failed += 1
        listener.stats.handshake_failures["timeout"] += 1
        if listener.observer is not None:
            listener.observer.handshake_failed(self, diagnosis)
        self.abort()

    # -- hooks for the shapes -------------------------------------------------------------------

    def timeout_diagnosis(self, seconds: float) -> Diagnosis:
        """What the log says when the peer did not finish its handshake in time."""
        return Diagnosis(reason="timeout", side=self.tls.role, what="the TLS handshake",
                         why=f"no TLS handshake within {seconds:g}s", refused=False,
                         fix="check that a TLS client is on the other end")

    def refuse(self, reason: str) -> None:
        """Close, telling the peer ``reason`` where the protocol can (default: close_notify)."""
        self.tls.close()

    def abort(self) -> None:
        self.tls.abort()

    def begin_shutdown(self) -> None:
        """The listener is shutting down: finish what is in flight, then close."""

    def on_open(self) -> None:
        """The session was admitted."""

    def on_data_end(self, clean: bool) -> None:
        """The peer ended its side (``clean``: with close_notify)."""

    def on_closed(self) -> None:
        """The connection is gone."""

    def on_resume_writing(self) -> None:
        """The transport takes writes again."""

    def tls_data(self, data: memoryview) -> None:
        """Plaintext from the peer (the view is only valid during the call)."""
