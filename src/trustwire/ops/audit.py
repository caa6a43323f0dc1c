"""The audit log: one JSON object per line per connection event.

Events: ``handshake_ok``, ``handshake_failed``, ``access_denied`` (the
admission decision refused a verified identity), ``access_revoked`` (an open
session cut), ``refused`` (limits), ``closed``, ``reloaded``,
``reload_failed``. Fields: ``time`` (UTC ISO 8601), ``event``, ``peer``
(address), identity facts (CN, serial, fingerprint, URIs), ``reason`` (with the
operator's detail, such as the allow rules that missed), byte counts,
durations. Never a key, passphrase or message payload.
:class:`AuditObserver` is the listener's view of it (a
:class:`trustwire.net.observer.Observer`).

Lines collect in memory and :meth:`AuditLog.flush` (every second from the
server's sweep, at exit, and whenever 64 KiB are pending) writes them with
one ``write()`` on an ``O_APPEND`` descriptor: several worker processes can
share one file without splitting each other's lines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from trustwire.errors import ConfigError

if TYPE_CHECKING:
    from trustwire.authz.policy import Decision
    from trustwire.errors import Diagnosis
    from trustwire.net.session import Session

__all__ = ["AuditLog", "AuditObserver"]

Field = str | int | float | bool | list[str] | None

_FLUSH_AT = 64 * 1024


class AuditLog:
    """Append JSON lines to a file descriptor.

    Args:
        fd: where lines go (opened with O_APPEND for files).
        owned: close it in :meth:`close`.
    """

    def __init__(self, fd: int, *, owned: bool = False) -> None:
        self._fd = fd
        self._owned = owned
        self._pending: list[str] = []
        self._size = 0

    @classmethod
    def open(cls, target: str) -> AuditLog:
        """``-`` for stdout, else a file opened for appending (created 0600).

        Raises:
            ConfigError: when the file cannot be opened.
        """
        if target == "-":
            return cls(1)
        path = Path(target)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the audit log {path}: {exc.strerror}") from exc
        return cls(fd, owned=True)

    def event(self, event: str, **fields: Field) -> None:
        record: dict[str, Field] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event}
        record.update((k, v) for k, v in fields.items() if v is not None)
        line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
        self._pending.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        self._size = 0
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            pass  # a full disk must not take the server down; metrics still count events

    def close(self) -> None:
        """Flush, then close the descriptor if this log owns it."""
        self.flush()
        if self._owned:
            os.close(self._fd)
            self._owned = False


FAILURES_PER_SECOND = 50
"""``handshake_failed`` lines written per sweep (a second); beyond that they are counted
in one ``suppressed`` line. Anyone who can reach the port can fail handshakes: a line
each, at thousands a second, would fill the disk (without a certificate, too)."""
_MAX_TEXT = 128
_MAX_URIS = 8


def _bounded(text: str | None, limit: int = _MAX_TEXT) -> str | None:
    """A name from a certificate, cut to a length a log line can afford."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + "…"


class AuditObserver:
    """Writes a listener's events to an :class:`AuditLog`.

    Names from certificates are cut to 128 characters and at most 8 URIs; names from a
    certificate OpenSSL refused are marked ``verified: false`` and carry no URI list
    (they are only claims). Failed handshakes are limited to
    :data:`FAILURES_PER_SECOND` lines a second, the rest counted.
    """

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self._failures = 0
        self._suppressed = 0

    def _session(self, event: str, session: Session, **fields: Field) -> None:
        peer = session.peer
        fields["peer"] = session.address
        if peer is not None:
            fields["cn"] = _bounded(peer.common_name)
            fields["serial"] = peer.serial_hex[:_MAX_TEXT]
            fields["fingerprint"] = peer.fingerprint
            if not session.peer_verified:
                fields["verified"] = False  # a certificate OpenSSL refused: its names are claims
            elif peer.uris:
                fields["uri"] = [_bounded(u) or "" for u in peer.uris[:_MAX_URIS]]
        self.log.event(event, **fields)

    def handshake_ok(self, session: Session) -> None:
        tls = session.tls
        self._session("handshake_ok", session, tls_version=tls.version(), cipher=tls.cipher(),
                      resumed=tls.resumed or None,
                      handshake_ms=round(session.handshake_seconds * 1000, 2))

    def handshake_failed(self, session: Session, diagnosis: Diagnosis) -> None:
        if self._failures >= FAILURES_PER_SECOND:
            self._suppressed += 1
            return
        self._failures += 1
        self._session("handshake_failed", session, reason=diagnosis.reason,
                      diagnosis=_bounded(diagnosis.sentence(), 4 * _MAX_TEXT))

    def access_denied(self, session: Session, decision: Decision) -> None:
        self._session("access_denied", session, reason=decision.log_reason, code=decision.code)

    def access_revoked(self, session: Session, decision: Decision) -> None:
        self._session("access_revoked", session, reason=decision.log_reason, code=decision.code)

    def refused(self, reason: str, count: int, peers: list[str]) -> None:
        self.log.event("refused", reason=reason, count=count, peers=list(peers) or None)

    def closed(self, session: Session) -> None:
        tls = session.tls
        self._session(
            "closed", session, reason=session.close_reason, bytes_in=tls.bytes_in,
            bytes_out=tls.bytes_out,
            messages=session.messages if session.carries_messages else None,
            duration_ms=round((time.monotonic() - session.started) * 1000, 1),
        )

    def reloaded(self, reason: str, sessions_cut: int) -> None:
        self.log.event("reloaded", reason=reason, sessions_cut=sessions_cut)

    def crl_expired(self, next_update: str, sessions_cut: int) -> None:
        self.log.event("crl_expired", next_update=next_update, sessions_cut=sessions_cut,
                       reason="every client is refused until a fresh CRL is loaded")

    def reload_failed(self, reason: str, error: str) -> None:
        self.log.event("reload_failed", reason=reason, error=error)

    def flush(self) -> None:
        """Called once a sweep: reports what was suppressed, and opens the next second."""
        if self._suppressed:
            self.log.event("suppressed", event_name="handshake_failed", count=self._suppressed,
                           reason=f"more than {FAILURES_PER_SECOND} failed handshakes in a second")
            self._suppressed = 0
        self._failures = 0
        self.log.flush()

    def close(self) -> None:
        self.log.close()
