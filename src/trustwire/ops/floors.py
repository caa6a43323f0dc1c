"""The newest CRL seen from each CA, kept on disk: the rollback floor outlives the process.

A listener refuses a CRL older than the newest it has seen from the same CA
(:func:`trustwire.ops.crls.check_not_older`). Kept in memory only, that floor died
with the process: a restarted server, or a worker the supervisor replaced, took an
old CRL copied back that its siblings refused. So the floor is also written to a
small JSON file in the user's state directory, one per CRL file
(``$XDG_STATE_HOME/trustwire/crl-floors/<SHA-256 of the CRL's absolute path>.json``),
read at every build and merged so that it only ever rises. Writing is best effort: a
state directory that cannot be written leaves the in-memory floor, as before; one that
another user owns or can write is neither read nor written (:meth:`FloorStore.problem`),
and entries of the wrong shape are ignored.

To take an older CRL on purpose (a CA restored from a backup that re-issues old
numbers), delete that file; the refusal names it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from trustwire.net.material import CrlFacts

__all__ = ["FloorStore", "newer"]


def newer(a: CrlFacts, b: CrlFacts) -> bool:
    """Whether CRL ``a`` supersedes ``b`` from the same CA (both numbered: a higher
    number; otherwise a later thisUpdate, as :func:`trustwire.ops.crls.check_not_older`
    judges)."""
    if a.number is not None and b.number is not None:
        return a.number > b.number
    return a.this_update > b.this_update


def _entry(key: object, entry: object) -> CrlFacts | None:
    """One floor from the file, or None when any field has the wrong type."""
    if not isinstance(key, str) or not isinstance(entry, dict):
        return None
    number, issuer = entry.get("number"), entry.get("issuer")
    when, fingerprint = entry.get("this_update"), entry.get("fingerprint")
    if (isinstance(number, bool) or not isinstance(number, int | None)
            or not isinstance(issuer, str) or not isinstance(when, str)
            or not isinstance(fingerprint, str)):
        return None
    try:
        this_update = dt.datetime.fromisoformat(when)
    except ValueError:
        return None
    if this_update.tzinfo is None:
        return None
    return CrlFacts(issuer=issuer, key=key, number=number, this_update=this_update,
                    next_update=None, revoked=0, fingerprint=fingerprint)


class FloorStore:
    """The floors of one CRL file on disk.

    Args:
        crl: the CRL file the floors belong to.
        directory: where floor files live (default: the user's state directory).
    """

    def __init__(self, crl: Path, directory: Path | None = None) -> None:
        base = directory or platformdirs.user_state_path("trustwire") / "crl-floors"
        digest = hashlib.sha256(str(crl.absolute()).encode()).hexdigest()[:32]
        self.path = base / f"{digest}.json"

    def problem(self) -> str | None:
        """Why the floor file must not be trusted (another user could lower, raise or
        plant floors there), or None."""
        for path in (self.path.parent.parent, self.path.parent, self.path):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            except OSError as exc:
                return f"{path} cannot be read ({exc.strerror})"
            if st.st_uid not in (os.geteuid(), 0):
                return f"{path} belongs to another user"
            if st.st_mode & 0o022:
                return f"{path} can be written by others"
        return None

    def load(self) -> dict[str, CrlFacts]:
        """The floors on disk (none when the file is missing, unreadable, malformed or not
        safe: see :meth:`problem`)."""
        if self.problem() is not None:
            return {}
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError):  # RecursionError: [[[[... nested
            return {}
        floors: dict[str, CrlFacts] = {}
        for key, entry in raw.items() if isinstance(raw, dict) else ():
            facts = _entry(key, entry)
            if facts is not None:
                floors[key] = facts
        return floors

    def merged(self, floors: Mapping[str, CrlFacts]) -> dict[str, CrlFacts]:
        """``floors`` raised to what the disk knows."""
        out = dict(floors)
        for key, facts in self.load().items():
            if key not in out or newer(facts, out[key]):
                out[key] = facts
        return out

    def save(self, floors: Mapping[str, CrlFacts]) -> None:
        """Raise the floors on disk to ``floors`` (atomically; best effort; never where
        :meth:`problem` objects)."""
        if self.problem() is not None:
            return
        merged = self.merged(floors)
        data = {key: {"issuer": f.issuer, "number": f.number,
                      "this_update": f.this_update.isoformat(), "fingerprint": f.fingerprint}
                for key, f in sorted(merged.items())}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".floor-")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(data, out, indent=1)
                os.replace(tmp, self.path)
            except OSError:
                os.unlink(tmp)
                raise
