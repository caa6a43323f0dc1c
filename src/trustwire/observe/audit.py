"""The audit log: one JSON object per line per connection event.

Events: ``handshake_ok``, ``handshake_failed``, ``access_denied``,
``refused`` (limits), ``closed``. Fields: ``time`` (UTC ISO 8601), ``event``,
``peer`` (address), identity facts (CN, serial, fingerprint), ``reason``,
byte counts, durations. Never a key, passphrase or message payload.

Lines collect in memory and :meth:`AuditLog.flush` (every second from the
server's sweep, at exit, and whenever 64 KiB are pending) writes them with
one ``write()`` on an ``O_APPEND`` descriptor: several worker processes can
share one file without splitting each other's lines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from trustwire.errors import ConfigError

__all__ = ["AuditLog"]

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

    def event(self, event: str, **fields: Any) -> None:
        record = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                  "event": event}
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
        self.flush()
        if self._owned:
            os.close(self._fd)
            self._owned = False
