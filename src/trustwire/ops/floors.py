"""The newest CRL seen from each CA, kept on disk: the rollback floor outlives the process.

A listener refuses a CRL older than the newest it has seen from the same CA
(:func:`trustwire.ops.crls.check_not_older`). Kept in memory only, that floor died
with the process: a restarted server, or a worker the supervisor replaced, took an
old CRL copied back that its siblings refused. So the floor is also written to a
small JSON file in the user's state directory, one per CRL file
(``$XDG_STATE_HOME/trustwire/crl-floors/<SHA-256 of the CRL's absolute path>.json``),
read at every build and merged so that it only ever rises. Writing is best effort: a
state directory that cannot be written leaves the in-memory floor, as before.

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
    """Whether CRL ``a`` supersedes ``b`` from the same CA (a higher number; for CRLs
    without numbers, a later thisUpdate)."""
    if a.number is not None and b.number is not None:
        return a.number > b.number
    if a.number is not None or b.number is not None:
        return a.number is not None  # a numbered CRL supersedes an unnumbered one
    return a.this_update > b.this_update


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

    def load(self) -> dict[str, CrlFacts]:
        """The floors on disk (none when the file is missing or unreadable)."""
        try:
            raw = json.loads(self.path.read_text())
            return {key: CrlFacts(
                issuer=entry["issuer"], key=key, number=entry["number"],
                this_update=dt.datetime.fromisoformat(entry["this_update"]),
                next_update=None, revoked=0, fingerprint=entry["fingerprint"])
                for key, entry in raw.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def merged(self, floors: Mapping[str, CrlFacts]) -> dict[str, CrlFacts]:
        """``floors`` raised to what the disk knows."""
        out = dict(floors)
        for key, facts in self.load().items():
            if key not in out or newer(facts, out[key]):
                out[key] = facts
        return out

    def save(self, floors: Mapping[str, CrlFacts]) -> None:
        """Raise the floors on disk to ``floors`` (atomically; best effort)."""
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
