"""The home: where a CA lives on disk, and every operation that changes it.

Layout (DESIGN.md)::

    HOME/ca/ca.crt  ca.key (0600)  crl.pem  [intermediate.crt  intermediate.key]
    HOME/certs/NAME.crt (leaf + intermediates)  NAME.key (0600; absent for CSRs)
    HOME/index.db   the inventory
    HOME/.lock      serialises writers

Every mutating operation takes an exclusive ``flock`` on HOME/.lock, so two
``cert issue`` processes run one after the other; inside, files are staged,
the inventory transaction commits, and only then are files renamed into
place. A failure anywhere (disk full, read-only home, bad passphrase) leaves
the home as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustwire.errors import (
    CAExists,
    CANotFound,
    CertificateNotFound,
    CSRError,
    KeyFileError,
    NameInUse,
    PKIError,
    StoreError,
)
from trustwire.pki.ca import (
    BACKDATE,
    Authority,
    CertKind,
    IssuedCert,
    Validity,
    check_leaf_lifetime,
    create_intermediate,
    create_root,
    inspect_csr,
    organization_of,
    utcnow,
)
from trustwire.pki.crl import RevocationReason, build_crl
from trustwire.pki.files import (
    FileBatch,
    atomic_write,
    check_owned,
    ensure_private_dir,
    staged_writes,
    store_error,
)
from trustwire.pki.info import load_certificates, parse_serial
from trustwire.pki.inventory import Inventory, Record, State
from trustwire.pki.keys import (
    KeyType,
    PrivateKey,
    key_type_of,
    load_private_key,
    private_key_pem,
    public_keys_match,
)
from trustwire.pki.layout import IdentityFiles
from trustwire.pki.names import NameConstraints, SubjectAltNames, validate_cert_name

__all__ = ["Home", "IdentityFiles", "load_certificates", "parse_serial"]  # re-exported: pki.layout, pki.info

INTERMEDIATE_LIFETIME = dt.timedelta(days=5 * 365)
"""Intermediates live half as long as the default root, so one rotation fits inside it."""


class Home:
    """A trustwire home directory holding one CA.

    Args:
        root: the home directory (created on ``init_ca``).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    # -- layout -----------------------------------------------------------------------------

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert_path(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.ca_dir / "ca.key"

    @property
    def intermediate_cert_path(self) -> Path:
        return self.ca_dir / "intermediate.crt"

    @property
    def intermediate_key_path(self) -> Path:
        return self.ca_dir / "intermediate.key"

    @property
    def crl_path(self) -> Path:
        return self.ca_dir / "crl.pem"

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    @property
    def index_path(self) -> Path:
        return self.root / "index.db"

    def cert_path(self, name: str) -> Path:
        return self.certs_dir / f"{validate_cert_name(name)}.crt"

    def key_path(self, name: str) -> Path:
        return self.certs_dir / f"{validate_cert_name(name)}.key"

    def has_ca(self) -> bool:
        return self.ca_cert_path.exists()

    def has_intermediate(self) -> bool:
        return self.intermediate_cert_path.exists()

    # -- reading ----------------------------------------------------------------------------

    def check_safe(self) -> None:
        """Refuse a home (its ca/ and certs/, the CA's files and the inventory) that another
        user owns or others can write, and CA keys that others can read.

        Raises:
            StoreError: naming the directory, its owner or mode, and the fix.
        """
        for path in (self.root, self.ca_dir, self.certs_dir, self.ca_cert_path, self.crl_path,
                     self.intermediate_cert_path, self.index_path):
            check_owned(path)
        for path in (self.ca_key_path, self.intermediate_key_path):
            check_owned(path, secret=True)

    def _require_ca(self) -> None:
        self.check_safe()
        if not self.has_ca():
            raise CANotFound(
                f"there is no CA in {self.root}",
                hint="create one with `trustwire ca init` (or pick another home with --home)",
            )

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise PKIError(f"cannot read {path}: {exc.strerror}") from exc

    def _read_cert(self, path: Path) -> x509.Certificate:
        return load_certificates(self._read(path), source=str(path))[0]

    def root_cert(self) -> x509.Certificate:
        self._require_ca()
        return self._read_cert(self.ca_cert_path)

    def intermediate_cert(self) -> x509.Certificate | None:
        return self._read_cert(self.intermediate_cert_path) if self.has_intermediate() else None

    def _read_key(self, path: Path, passphrase: bytes | None) -> PrivateKey:
        if not path.exists():
            raise KeyFileError(
                f"the CA key {path} is not in the home (offline or missing)",
                hint="bring the key back into the home to sign with it",
            )
        return load_private_key(self._read(path), source=str(path), passphrase=passphrase)

    def key_is_encrypted(self) -> bool:
        path = self.intermediate_key_path if self.has_intermediate() else self.ca_key_path
        return path.exists() and b"ENCRYPTED" in self._read(path)

    def load_authority(self, passphrase: bytes | None = None) -> Authority:
        """The CA that signs leaves (the intermediate when there is one), with its key.

        Raises:
            CANotFound, KeyFileError, PassphraseError, PKIError
        """
        root = self.root_cert()
        if self.has_intermediate():
            cert_path, key_path = self.intermediate_cert_path, self.intermediate_key_path
            parents: tuple[x509.Certificate, ...] = (root,)
        else:
            cert_path, key_path = self.ca_cert_path, self.ca_key_path
            parents = ()
        cert = self._read_cert(cert_path)
        key = self._read_key(key_path, passphrase)
        if not public_keys_match(cert.public_key(), key.public_key()):
            raise KeyFileError(
                f"{key_path} does not belong to {cert_path}",
                hint="restore the matching key from a backup",
            )
        return Authority(cert=cert, key=key, parents=parents)

    def inventory(self, *, read_only: bool = False) -> Inventory:
        self._require_ca()
        return Inventory(self.index_path, read_only=read_only)

    def identity(self, name: str, *, server: bool = False, crl: bool = True) -> IdentityFiles:
        """Files for ``--identity NAME`` (``server``: wanted by a server, which the hint
        for a missing one follows; ``crl``: revocation will be checked, so the home's CRL
        must be there).

        Raises:
            CANotFound, CertificateNotFound, KeyFileError
            StoreError: the home's CRL is missing while ``crl`` is set (``init_ca`` writes
                one, so it was removed; without it every revoked certificate would pass).
        """
        self._require_ca()
        cert, key = self.cert_path(name), self.key_path(name)
        if not cert.exists():
            raise CertificateNotFound(
                f"there is no certificate named {name!r} in {self.root}",
                hint=(f"issue one with `trustwire cert issue {name} --server`" if server else
                      f"issue one with `trustwire cert issue {name} --client` (or --server)"),
            )
        if not key.exists():
            raise KeyFileError(
                f"the key for {name!r} is not in the home ({key})",
                hint="a certificate signed from a CSR has its key where the CSR was made",
            )
        check_owned(cert)
        check_owned(key, secret=True)
        if crl and not self.crl_path.exists():
            raise StoreError(
                f"the CA's CRL {self.crl_path} is missing, so revoked certificates would be "
                "admitted",
                hint="write a fresh one with `trustwire ca crl`",
            )
        return IdentityFiles(cert=cert, key=key, ca=self.ca_cert_path,
                             crl=self.crl_path if crl else None)

    def find(self, inventory: Inventory, target: str, *, newest: bool = False) -> Record:
        """The certificate NAME refers to, or the one with serial ``target``.

        Args:
            inventory: the open inventory.
            target: a NAME or a serial number.
            newest: when NAME has no current certificate, return its newest one
                (revoked or superseded) instead of failing, as ``cert show`` wants.

        Raises:
            CertificateNotFound: with a hint naming older serials if NAME has no current one.
        """
        record = inventory.current(target)
        if record is not None:
            return record
        if newest:
            older = inventory.by_name(target)
            if older:
                return older[0]
        serial = parse_serial(target)
        if serial is not None:
            record = inventory.by_serial(serial)
            if record is not None:
                return record
        older = inventory.by_name(target)
        if older:
            serials = ", ".join(r.serial_hex for r in older[:3])
            raise CertificateNotFound(
                f"{target!r} has no current certificate (older serials: {serials})",
                hint="name an older one by its serial",
            )
        raise CertificateNotFound(
            f"no certificate named or numbered {target!r}",
            hint="list them with `trustwire cert list --all`",
        )

    # -- writing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.check_safe()
        ensure_private_dir(self.root)
        lock_path = self.root / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise store_error(lock_path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def init_ca(
        self, *, name: str, key_type: KeyType = KeyType.ECDSA_P256,
        lifetime: dt.timedelta = dt.timedelta(days=3650), passphrase: bytes | None = None,
        intermediate: bool = False, constraints: NameConstraints | None = None,
        now: dt.datetime | None = None,
    ) -> Authority:
        """Create the CA (and optionally a name-constrained intermediate).

        Raises:
            CAExists: the home already has a CA (nothing is touched).
            StoreError: the home is not writable.
        """
        if constraints is not None and not constraints.is_empty() and not intermediate:
            raise PKIError(
                "name constraints belong on an intermediate",
                hint="add --intermediate to constrain the CA that signs leaves",
            )
        if lifetime <= dt.timedelta(days=400):
            raise PKIError("a CA must live longer than the 397 days a leaf may live")
        now = now or utcnow()
        with self._locked():
            if self.has_ca() or self.index_path.exists() or self.ca_key_path.exists():
                raise CAExists(
                    f"a CA already exists in {self.root}; refusing to overwrite it",
                    hint="pick another home with --home, or remove this one deliberately",
                )
            root = create_root(
                name=name, key_type=key_type, lifetime=lifetime,
                path_length=1 if intermediate else 0, now=now,
            )
            signer = root
            if intermediate:
                signer = create_intermediate(
                    root, name=f"{name} intermediate", key_type=key_type,
                    lifetime=min(lifetime, INTERMEDIATE_LIFETIME), constraints=constraints,
                    now=now,
                )
            ensure_private_dir(self.ca_dir)
            ensure_private_dir(self.certs_dir)
            tmp_db = self.root / ".index.db.init"
            tmp_db.unlink(missing_ok=True)
            try:
                inventory = Inventory(tmp_db, create=True)
                with inventory.transaction() as db:
                    number = inventory.next_crl_number(db)
                inventory.close()
                crl = build_crl(signer, [], number=number, now=now)
                with staged_writes() as batch:
                    batch.stage(self.ca_key_path, private_key_pem(root.key, passphrase), 0o600)
                    batch.stage(self.ca_cert_path, _pem(root.cert), 0o644)
                    if intermediate:
                        batch.stage(
                            self.intermediate_key_path, private_key_pem(signer.key, passphrase),
                            0o600,
                        )
                        batch.stage(self.intermediate_cert_path, _pem(signer.cert), 0o644)
                    batch.stage(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
                    batch.commit()
                    try:
                        os.replace(tmp_db, self.index_path)
                    except OSError as exc:
                        raise store_error(self.index_path, exc) from exc
            finally:
                tmp_db.unlink(missing_ok=True)
            return signer

    def _store_leaf(
        self, inventory: Inventory, record: Record, issued: IssuedCert,
        also: Callable[[sqlite3.Connection, FileBatch], None] | None = None,
    ) -> None:
        """Write a leaf's files and its inventory row together, or neither."""
        with staged_writes() as batch:
            if issued.private_key is not None:
                batch.stage(self.key_path(record.name), issued.private_key_pem.bytes(), 0o600)
            batch.stage(self.cert_path(record.name), issued.cert_chain_pem.bytes(), 0o644)
            with inventory.transaction() as db:
                if also is not None:
                    also(db, batch)
                inventory.add(db, record)
                batch.commit()
        stale_key = self.key_path(record.name)
        if issued.private_key is None and stale_key.exists():
            # The name was free, so this key belonged to a revoked certificate.
            stale_key.unlink()

    def issue(
        self, name: str, *, kind: CertKind, sans: SubjectAltNames | None = None,
        key_type: KeyType = KeyType.ECDSA_P256, lifetime: dt.timedelta | Validity = dt.timedelta(days=90),
        organizational_unit: str | None = None, passphrase: bytes | None = None,
        now: dt.datetime | None = None, organization: str | None = None,
    ) -> Record:
        """Issue a leaf with a fresh key, stored as HOME/certs/NAME.{crt,key}.

        Raises:
            NameInUse, CANotFound, PassphraseError, NameConstraintError, StoreError, ConfigError
        """
        validate_cert_name(name)
        if not isinstance(lifetime, Validity):  # a window is checked against the CA, when signing
            check_leaf_lifetime(lifetime)
        now = now or utcnow()
        with self._locked(), self.inventory() as inventory:
            self._require_free(inventory, name)
            authority = self.load_authority(passphrase)
            issued = authority.issue(
                name, kind=kind, sans=sans, key_type=key_type, lifetime=lifetime,
                organizational_unit=organizational_unit, now=now, organization=organization,
            )
            record = Record.from_cert(issued.cert, name=name, kind=kind, has_key=True, issued_at=now)
            self._store_leaf(inventory, record, issued)
            return record

    @staticmethod
    def _require_free(inventory: Inventory, name: str) -> None:
        existing = inventory.current(name)
        if existing is not None:
            raise NameInUse(
                f"a certificate named {name!r} already exists (serial {existing.serial_hex})",
                hint=f"renew it with `trustwire cert renew {name}` or revoke it first",
            )

    def sign_csr(
        self, csr_data: bytes, *, source: str, kind: CertKind,
        lifetime: dt.timedelta = dt.timedelta(days=90), passphrase: bytes | None = None,
        now: dt.datetime | None = None,
    ) -> tuple[Record, IssuedCert]:
        """Check a CSR and sign it; the certificate is stored as HOME/certs/CN.crt.

        Raises:
            CSRError: unreadable CSR, bad signature, unsupported names or key.
            NameInUse, NameConstraintError, PassphraseError, StoreError
        """
        try:
            if b"-----BEGIN" in csr_data:
                csr = x509.load_pem_x509_csr(csr_data)
            else:
                csr = x509.load_der_x509_csr(csr_data)
        except ValueError:
            raise CSRError(f"{source} is not a PEM or DER certificate signing request") from None
        name, _ = inspect_csr(csr)
        check_leaf_lifetime(lifetime)
        now = now or utcnow()
        with self._locked(), self.inventory() as inventory:
            self._require_free(inventory, name)
            issued = self.load_authority(passphrase).sign_csr(
                csr, kind=kind, lifetime=lifetime, now=now,
            )
            record = Record.from_cert(issued.cert, name=name, kind=kind, has_key=False, issued_at=now)
            self._store_leaf(inventory, record, issued)
            return record, issued

    def _stage_crl(
        self, inventory: Inventory, db: sqlite3.Connection, batch: FileBatch,
        authority: Authority, now: dt.datetime,
    ) -> None:
        number = inventory.next_crl_number(db)
        crl = build_crl(authority, inventory.revoked_entries(), number=number, now=now)
        batch.stage(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644)

    def revoke(
        self, target: str, *, reason: RevocationReason = RevocationReason.UNSPECIFIED,
        passphrase: bytes | None = None, now: dt.datetime | None = None,
    ) -> Record:
        """Revoke a certificate by NAME (its current one) or serial, and regenerate the CRL.

        Raises:
            CertificateNotFound, PassphraseError, StoreError
            PKIError: it is already revoked.
        """
        now = now or utcnow()
        with self._locked(), self.inventory() as inventory:
            record = self.find(inventory, target)
            if record.state is State.REVOKED:
                raise PKIError(f"{record.name} (serial {record.serial_hex}) is already revoked")
            authority = self.load_authority(passphrase)
            with staged_writes() as batch, inventory.transaction() as db:
                inventory.set_state(db, record.serial, State.REVOKED, revoked_at=now, reason=reason)
                self._stage_crl(inventory, db, batch, authority, now)
                batch.commit()
            revoked = inventory.by_serial(record.serial)
            assert revoked is not None  # noqa: S101 - just written in the same transaction
            return revoked

    def regenerate_crl(
        self, *, passphrase: bytes | None = None, now: dt.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        """Sign a fresh CRL (new number, new nextUpdate) and write HOME/ca/crl.pem."""
        now = now or utcnow()
        with self._locked(), self.inventory() as inventory:
            authority = self.load_authority(passphrase)
            with staged_writes() as batch, inventory.transaction() as db:
                self._stage_crl(inventory, db, batch, authority, now)
                batch.commit()
        return self.crl()

    def crl(self) -> x509.CertificateRevocationList:
        self._require_ca()
        data = self._read(self.crl_path)
        try:
            return x509.load_pem_x509_crl(data)
        except ValueError:
            raise PKIError(
                f"{self.crl_path} is not a valid PEM CRL",
                hint="regenerate it with `trustwire ca crl`",
            ) from None

    def renew(
        self, name: str, *, lifetime: dt.timedelta | None = None, revoke_old: bool = False,
        passphrase: bytes | None = None, now: dt.datetime | None = None,
    ) -> Record:
        """Issue NAME again with a fresh key, same kind, names and OU.

        The old certificate becomes ``superseded`` (still valid until it
        expires) or, with ``revoke_old``, revoked with reason superseded.

        Raises:
            CertificateNotFound, PassphraseError, StoreError
            PKIError: its key is not in the home.
        """
        now = now or utcnow()
        with self._locked(), self.inventory() as inventory:
            old = inventory.current(name)
            if old is None:
                raise CertificateNotFound(
                    f"there is no current certificate named {name!r} to renew",
                    hint="issue one with `trustwire cert issue`",
                )
            if not old.has_key:
                raise PKIError(
                    f"{name!r} was signed from a CSR, so its key is not in this home",
                    hint="make a key and CSR with `trustwire cert request`, then `trustwire cert sign` it",
                )
            if lifetime is None:
                lifetime = old.lifetime - BACKDATE
            check_leaf_lifetime(lifetime)
            old_cert = old.certificate()
            key_type = key_type_of(old_cert.public_key()) or KeyType.ECDSA_P256  # type: ignore[arg-type]
            authority = self.load_authority(passphrase)
            issued = authority.issue(
                name, kind=old.kind, sans=old.sans, key_type=key_type, lifetime=lifetime,
                organizational_unit=old.organizational_unit, now=now,
                organization=organization_of(old_cert),
            )
            record = Record.from_cert(
                issued.cert, name=name, kind=old.kind, has_key=True, issued_at=now,
            )

            def retire_old(db: sqlite3.Connection, batch: FileBatch) -> None:
                if revoke_old:
                    inventory.set_state(
                        db, old.serial, State.REVOKED, revoked_at=now,
                        reason=RevocationReason.SUPERSEDED,
                    )
                    self._stage_crl(inventory, db, batch, authority, now)
                else:
                    inventory.set_state(db, old.serial, State.SUPERSEDED)

            self._store_leaf(inventory, record, issued, also=retire_old)
            return record

    def export_root(self, out_dir: Path) -> Path:
        """Move the root key out of the home (copy, verify, then delete), for an offline root.

        Returns:
            The path of the exported key.

        Raises:
            PKIError: no intermediate (the root still signs), key already gone, or the
                destination exists.
        """
        with self._locked():
            self._require_ca()
            if not self.has_intermediate():
                raise PKIError(
                    "this CA has no intermediate: the root key signs every certificate, "
                    "so it must stay in the home",
                    hint="create a CA with `trustwire ca init --intermediate` to keep the root offline",
                )
            if not self.ca_key_path.exists():
                raise PKIError(f"the root key is already offline (no {self.ca_key_path})")
            dest = out_dir / "ca.key"
            if dest.exists():
                raise PKIError(f"{dest} already exists; refusing to overwrite it")
            ensure_private_dir(out_dir)
            data = self._read(self.ca_key_path)
            atomic_write(dest, data, mode=0o600)
            atomic_write(out_dir / "ca.crt", self._read(self.ca_cert_path), mode=0o644)
            if dest.read_bytes() != data:
                dest.unlink()
                raise StoreError(f"the copy at {dest} does not match; the root key stays in the home")
            try:
                self.ca_key_path.unlink()
            except OSError as exc:
                raise store_error(self.ca_key_path, exc) from exc
            return dest


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
