"""Safe files: atomic writes, private directories, staged multi-file commits.

A write goes to a temporary file in the same directory (created 0600 by
``mkstemp``, so a key is never readable by others, not even for a moment), is
fsync'd, gets its final mode, and is renamed over the target; the directory is
fsync'd so the rename survives a crash. Several files that must change
together are *staged* first and renamed only when every one was written; the
renames happen inside the inventory's transaction and are reverted (from
hard-link backups) if the transaction fails to commit, so disk-full or a
read-only home leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trustwire.errors import StoreError

__all__ = ["FileBatch", "Staged", "atomic_write", "check_owned", "ensure_private_dir", "staged_writes",
           "store_error"]

_OTHERS_WRITE = 0o022
_OTHERS_READ = 0o044


def store_error(path: Path, exc: OSError) -> StoreError:
    """Turn an OSError into one sentence with a hint fitting its cause."""
    reason = exc.strerror or str(exc)
    hint = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free some disk space and run the command again"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "make the home writable, or choose another with --home or TRUSTWIRE_HOME"
    elif exc.errno == errno.ENOENT and not path.parent.exists():
        hint = f"create the directory first (mkdir -p {path.parent}), or write somewhere else"
    return StoreError(f"could not write {path}: {reason}", hint=hint)


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_owned(path: Path, *, secret: bool = False) -> None:
    """Refuse an existing directory or file that another user owns or that others may write
    (or, for a ``secret`` such as a private key, read).

    A CA key, CRL and trust anchor written into (or read from) such a directory are
    that user's to swap: they could replace the CA certificate a server trusts, or
    read keys written there. Owned by us or by root, and writable by neither group
    nor others, is safe (as OpenSSH's StrictModes demands of ~/.ssh). A directory
    that does not exist yet is fine: we create it 0700.

    A symbolic link is followed, and the directory it points into must pass too: a link
    into a directory another user controls lets that user swap the file behind it.

    Raises:
        StoreError: naming the directory and what is wrong with it.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise store_error(path, exc) from exc
    if path.is_symlink():
        target = path.resolve()
        check_owned(target.parent)
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise StoreError(
            f"{path} belongs to {_owner_name(st.st_uid)}, not to you ({_owner_name(me)}), "
            "so that user could replace the CA's files",
            hint=f"use a home you own (--home DIR or TRUSTWIRE_HOME), or take it over: "
                 f"chown -R {me} {path}",
        )
    if st.st_mode & _OTHERS_WRITE:
        raise StoreError(
            f"{path} can be written by other users (mode {st.st_mode & 0o777:o}), so they "
            "could replace the CA's files",
            hint=f"chmod go-w {path} (trustwire keeps its directories at 700)",
        )
    if secret and st.st_mode & _OTHERS_READ:
        raise StoreError(
            f"the private key {path} can be read by other users (mode {st.st_mode & 0o777:o})",
            hint=f"chmod 600 {path}, and consider it exposed: renew what it signs",
        )


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700.

    Raises:
        StoreError: when it cannot be created.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o777 != 0o700:
            path.chmod(0o700)
    except OSError as exc:
        raise store_error(path, exc) from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staged:
    """A file written under a temporary name, waiting to be renamed into place.

    Raises:
        StoreError: when the temporary file cannot be written (disk full, read-only).
    """

    def __init__(self, path: Path, data: bytes, mode: int) -> None:
        self.path = path
        self.backup: Path | None = None
        self.committed = False
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise store_error(path, exc) from exc
        self.tmp = Path(tmp)
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            self.tmp.unlink(missing_ok=True)
            raise store_error(path, exc) from exc
        os.close(fd)

    def commit(self) -> None:
        """Rename into place, keeping the previous file as a hard-link backup until finish()."""
        try:
            if self.path.exists():
                backup = self.tmp.with_suffix(".old")
                os.link(self.path, backup)
                self.backup = backup
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise store_error(self.path, exc) from exc
        self.committed = True

    def revert(self) -> None:
        """Undo commit() (restore the previous file), or drop the temporary file."""
        if self.committed:
            if self.backup is not None:
                os.replace(self.backup, self.path)
            else:
                self.path.unlink(missing_ok=True)
            self.committed = False
        self.tmp.unlink(missing_ok=True)

    def finish(self) -> None:
        if self.backup is not None:
            self.backup.unlink(missing_ok=True)


class FileBatch:
    """Files that change together: stage them all, then commit them all, or none."""

    def __init__(self) -> None:
        self.files: list[Staged] = []

    def stage(self, path: Path, data: bytes, mode: int) -> None:
        """Write ``data`` beside ``path`` under a temporary name (raises StoreError)."""
        self.files.append(Staged(path, data, mode))

    def commit(self) -> None:
        """Rename every staged file into place (idempotent)."""
        for staged in self.files:
            if not staged.committed:
                staged.commit()


@contextlib.contextmanager
def staged_writes() -> Iterator[FileBatch]:
    """A two-phase batch of file writes, to pair with a database transaction.

    Use it as::

        with staged_writes() as batch:
            batch.stage(key_path, key_pem, 0o600)
            batch.stage(crt_path, crt_pem, 0o644)
            with inventory.transaction() as db:
                inventory.add(db, record)
                batch.commit()            # renames; a failure rolls the transaction back
            # a failing COMMIT raises here and the renames are reverted

    Files not committed explicitly are committed when the block ends. On any
    exception every file is restored to what it was before.

    Raises:
        StoreError: when a file cannot be written or renamed.
    """
    batch = FileBatch()
    try:
        yield batch
        batch.commit()
    except BaseException:
        for staged in reversed(batch.files):
            with contextlib.suppress(OSError):
                staged.revert()
        raise
    for staged in batch.files:
        with contextlib.suppress(OSError):
            staged.finish()
    for directory in {s.path.parent for s in batch.files}:
        with contextlib.suppress(OSError):  # durability only; the renames already happened
            _fsync_dir(directory)


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Atomically replace ``path`` with ``data`` at permission ``mode``.

    Raises:
        StoreError: when the file cannot be written.
    """
    with staged_writes() as batch:
        batch.stage(path, data, mode)
