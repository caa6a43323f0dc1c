"""The CA inventory: every certificate ever issued, in SQLite (HOME/index.db).

One row per certificate, keyed by serial (unique always). A row is
``current`` (the certificate that NAME refers to), ``superseded`` (replaced
by a renewal but still valid until it expires) or ``revoked``. A partial
unique index makes NAME unique among current rows, so two concurrent
``cert issue`` calls for one name cannot both succeed even if the home's file
lock were bypassed. The PEM of every certificate is kept, so the inventory
alone can rebuild the CRL and answer ``cert show`` for old serials.

Status (valid, expiring soon, expired, not yet valid, revoked) is computed
from the row and the clock, never stored, so it cannot go stale.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustwire.errors import InventoryError, NameInUse, StoreError
from trustwire.pki.ca import CertKind, fingerprint
from trustwire.pki.crl import RevocationReason, RevokedEntry
from trustwire.pki.info import pin_form
from trustwire.pki.keys import describe_public_key
from trustwire.pki.names import SubjectAltNames

__all__ = ["Inventory", "Record", "State", "Status", "kind_of"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certs (
    serial TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('server', 'client', 'both')),
    organizational_unit TEXT,
    sans TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    key_type TEXT NOT NULL,
    has_key INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('current', 'superseded', 'revoked')),
    revoked_at TEXT,
    revocation_reason TEXT,
    issued_at TEXT NOT NULL,
    pem TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS certs_current_name ON certs(name) WHERE state = 'current';
"""


class State(enum.Enum):
    """Where a certificate stands in the inventory."""

    CURRENT = "current"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"


class Status(enum.Enum):
    """What a certificate's status is right now."""

    VALID = "valid"
    EXPIRING_SOON = "expiring soon"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    REVOKED = "revoked"


def kind_of(cert: x509.Certificate) -> CertKind:
    """Guess the kind of a leaf from its EKU (no EKU counts as both)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return CertKind.BOTH
    server = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    client = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    if server and client:
        return CertKind.BOTH
    return CertKind.SERVER if server else CertKind.CLIENT


@dataclass(frozen=True, kw_only=True)
class Record:
    """One issued certificate as the inventory knows it."""

    serial: int
    name: str
    kind: CertKind
    organizational_unit: str | None
    sans: SubjectAltNames
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str
    key_type: str
    has_key: bool
    """True when the private key was generated here and lives in HOME/certs."""
    state: State
    revoked_at: dt.datetime | None
    revocation_reason: RevocationReason | None
    issued_at: dt.datetime
    pem: bytes

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def status(self, now: dt.datetime) -> Status:
        """Revoked wins; then the validity window; expiring soon = under 1/3 of life left."""
        if self.state is State.REVOKED:
            return Status.REVOKED
        if now > self.not_after:
            return Status.EXPIRED
        if now < self.not_before:
            return Status.NOT_YET_VALID
        if self.not_after - now < self.lifetime / 3:
            return Status.EXPIRING_SOON
        return Status.VALID

    @classmethod
    def from_cert(
        cls, cert: x509.Certificate, *, name: str, kind: CertKind, has_key: bool,
        issued_at: dt.datetime,
    ) -> Record:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            sans = SubjectAltNames.from_extension(san)
        except x509.ExtensionNotFound:
            sans = SubjectAltNames()
        ous = cert.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATIONAL_UNIT_NAME)
        return cls(
            serial=cert.serial_number, name=name, kind=kind,
            organizational_unit=str(ous[0].value) if ous else None, sans=sans,
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            fingerprint=fingerprint(cert), key_type=describe_public_key(cert.public_key()),
            has_key=has_key, state=State.CURRENT, revoked_at=None, revocation_reason=None,
            issued_at=issued_at, pem=cert.public_bytes(serialization.Encoding.PEM),
        )

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem)

    def as_json(self, now: dt.datetime) -> dict[str, object]:
        return {
            "name": self.name,
            "serial": self.serial_hex,
            "kind": self.kind.value,
            "organizational_unit": self.organizational_unit,
            "sans": self.sans.as_dict(),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint_sha256": self.fingerprint,
            "fingerprint": pin_form(self.fingerprint),
            "key_type": self.key_type,
            "key_in_home": self.has_key,
            "state": self.state.value,
            "status": self.status(now).value,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revocation_reason": self.revocation_reason.value if self.revocation_reason else None,
        }


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


class Inventory:
    """Access to index.db. Every method raises InventoryError if the file is damaged.

    Args:
        path: the database file.
        create: create the schema (only ``ca init`` does); otherwise a missing
            file is an error, because a CA without its inventory cannot revoke.
        read_only: open with SQLite's ``mode=ro`` (for ``cert list``, ``cert show``,
            ``ca show``): works in a home the user may read but not write, and can
            never change it.
    """

    def __init__(self, path: Path, *, create: bool = False, read_only: bool = False) -> None:
        self.path = path
        if not create and not path.exists():
            raise InventoryError(
                f"the inventory {path} is missing",
                hint="restore index.db from a backup; the CA cannot track certificates without it",
            )
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
            if create:
                # The inventory names every identity: keep it private like the keys.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            if read_only:
                uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            else:
                self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            if create:
                with self.transaction():
                    # One statement at a time: executescript() would COMMIT first.
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta(key, value) VALUES ('crl_number', '0')",
                    )
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            integrity = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise self._damaged(exc) from exc
        if integrity != "ok":
            self._close_quietly()
            raise self._damaged(sqlite3.DatabaseError(integrity))
        if version != SCHEMA_VERSION:
            self._close_quietly()
            raise InventoryError(
                f"the inventory {path} has schema version {version}, expected {SCHEMA_VERSION}",
                hint="use the trustwire version that created this home",
            )

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _damaged(self, exc: sqlite3.Error) -> InventoryError | StoreError:
        text = str(exc)
        if "readonly" in text or "unable to open" in text:
            return StoreError(
                f"could not write the inventory {self.path}: {text}",
                hint="make the home writable, or choose another with --home or TRUSTWIRE_HOME",
            )
        if "full" in text:
            return StoreError(
                f"could not write the inventory {self.path}: {text}",
                hint="free some disk space and run the command again",
            )
        return InventoryError(
            f"the inventory {self.path} is damaged ({text})",
            hint="restore index.db from a backup; certificate files in the home are untouched",
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the write lock up front, so read-then-write
        sequences cannot interleave with another process."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc
        try:
            yield self._db
        except sqlite3.Error as exc:
            self._rollback_quietly()
            raise self._damaged(exc) from exc
        except BaseException:
            self._rollback_quietly()
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback_quietly()
            raise self._damaged(exc) from exc

    def _rollback_quietly(self) -> None:
        # SQLite rolls back by itself after SQLITE_FULL and some I/O errors;
        # a second ROLLBACK would fail and hide the real cause.
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[Record]:
        try:
            rows = self._db.execute(sql, args).fetchall()
            return [self._record(row) for row in rows]
        except (sqlite3.DatabaseError, ValueError, KeyError) as exc:
            err = exc if isinstance(exc, sqlite3.Error) else sqlite3.DatabaseError(str(exc))
            raise self._damaged(err) from exc

    @staticmethod
    def _record(row: tuple[object, ...]) -> Record:
        (serial, name, kind, ou, sans, nb, na, fp, key_type, has_key, state, revoked_at,
         reason, issued_at, pem) = row
        return Record(
            serial=int(str(serial), 16), name=str(name), kind=CertKind(kind),
            organizational_unit=str(ou) if ou is not None else None,
            sans=SubjectAltNames.from_dict(json.loads(str(sans))),
            not_before=_parse_ts(str(nb)), not_after=_parse_ts(str(na)), fingerprint=str(fp),
            key_type=str(key_type), has_key=bool(has_key), state=State(state),
            revoked_at=_parse_ts(str(revoked_at)) if revoked_at else None,
            revocation_reason=RevocationReason(reason) if reason else None,
            issued_at=_parse_ts(str(issued_at)), pem=str(pem).encode("ascii"),
        )

    _COLUMNS = (
        "serial, name, kind, organizational_unit, sans, not_before, not_after, fingerprint, "
        "key_type, has_key, state, revoked_at, revocation_reason, issued_at, pem"
    )

    def add(self, db: sqlite3.Connection, record: Record) -> None:
        """Insert a row inside a transaction.

        Raises:
            NameInUse: a current certificate already has this name.
        """
        try:
            db.execute(
                f"INSERT INTO certs ({self._COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                (
                    record.serial_hex, record.name, record.kind.value, record.organizational_unit,
                    json.dumps(record.sans.as_dict()), _ts(record.not_before),
                    _ts(record.not_after), record.fingerprint, record.key_type,
                    int(record.has_key), record.state.value, None, None, _ts(record.issued_at),
                    record.pem.decode("ascii"),
                ),
            )
        except sqlite3.IntegrityError as exc:
            if "certs.name" in str(exc) or "certs_current_name" in str(exc):
                raise NameInUse(
                    f"a certificate named {record.name!r} already exists",
                    hint=f"renew it with `trustwire cert renew {record.name}` or revoke it first",
                ) from exc
            raise InventoryError(f"could not record serial {record.serial_hex}: {exc}") from exc
        except sqlite3.Error as exc:
            raise self._damaged(exc) from exc

    def current(self, name: str) -> Record | None:
        rows = self._rows(
            f"SELECT {self._COLUMNS} FROM certs WHERE name = ? AND state = 'current'",  # noqa: S608
            (name,),
        )
        return rows[0] if rows else None

    def by_serial(self, serial: int) -> Record | None:
        rows = self._rows(
            f"SELECT {self._COLUMNS} FROM certs WHERE serial = ?",  # noqa: S608
            (format(serial, "x"),),
        )
        return rows[0] if rows else None

    def by_name(self, name: str) -> list[Record]:
        """Every certificate ever issued under ``name``, newest first."""
        return self._rows(
            f"SELECT {self._COLUMNS} FROM certs WHERE name = ? ORDER BY issued_at DESC",  # noqa: S608
            (name,),
        )

    def all(self) -> list[Record]:
        return self._rows(
            f"SELECT {self._COLUMNS} FROM certs ORDER BY name, issued_at",  # noqa: S608
        )

    def set_state(
        self, db: sqlite3.Connection, serial: int, state: State, *,
        revoked_at: dt.datetime | None = None, reason: RevocationReason | None = None,
    ) -> None:
        db.execute(
            "UPDATE certs SET state = ?, revoked_at = ?, revocation_reason = ? WHERE serial = ?",
            (
                state.value, _ts(revoked_at) if revoked_at else None,
                reason.value if reason else None, format(serial, "x"),
            ),
        )

    def revoked_entries(self) -> list[RevokedEntry]:
        return [
            RevokedEntry(
                serial=r.serial, revoked_at=r.revoked_at or r.issued_at,
                reason=r.revocation_reason or RevocationReason.UNSPECIFIED,
            )
            for r in self._rows(
                f"SELECT {self._COLUMNS} FROM certs WHERE state = 'revoked'",  # noqa: S608
            )
        ]

    def written_by_trustwire(self) -> bool:
        """True when the database has trustwire's tables and its CRL counter (``ca init``
        writes both), not merely a SQLite file with the right ``user_version``."""
        try:
            tables = {row[0] for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            counter = (self._db.execute("SELECT 1 FROM meta WHERE key = 'crl_number'").fetchone()
                       if "meta" in tables else None)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        return {"meta", "certs"} <= tables and counter is not None

    def crl_number(self) -> int:
        """The number of the newest CRL this CA signed (0 before the first)."""
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'crl_number'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        return int(row[0]) if row else 0

    def next_crl_number(self, db: sqlite3.Connection) -> int:
        """Increment and return the CRL number (RFC 5280: monotonically increasing)."""
        row = db.execute("SELECT value FROM meta WHERE key = 'crl_number'").fetchone()
        number = int(row[0]) + 1 if row else 1
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('crl_number', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(number),),
        )
        return number
