"""The root CA as a trust anchor to install, and the vocabulary of trust-store changes.

:class:`TrustAnchor` is the home's root, checked fit to install; :class:`TrustStore`
is what one store (system, NSS, Java: see :mod:`trustwire.pki.truststores`) offers;
:class:`StoreReport` and :class:`TrustReport` say what happened, store by store.
The helpers at the end run a store's own tool and boil its error down to one line.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from trustwire.errors import KeyFileError, PassphraseError, PKIError
from trustwire.pki.ca import fingerprint
from trustwire.pki.keys import load_private_key, public_keys_match
from trustwire.pki.store import Home

__all__ = [
    "Action",
    "Outcome",
    "StoreKind",
    "StoreReport",
    "TrustAnchor",
    "TrustReport",
    "TrustStore",
    "error_line",
    "one_line",
    "prove_home_root",
    "run_tool",
    "which",
]

_log = logging.getLogger("trustwire.truststores")

TOOL_TIMEOUT = 120.0
"""Seconds a store tool may take (update-ca-certificates runs Java hooks: ~1-2 s)."""


class StoreKind(enum.Enum):
    SYSTEM = "system"
    NSS = "nss"
    JAVA = "java"


class Action(enum.Enum):
    INSTALL = "install"
    UNINSTALL = "uninstall"


class Outcome(enum.Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class StoreReport:
    """What happened to one store."""

    kind: StoreKind
    location: str
    """The file, directory or keychain changed (or that would have been)."""
    outcome: Outcome
    detail: str
    """One sentence: what changed, why it was skipped, or the tool's error."""
    hint: str | None = None
    absent: bool = False
    """Skipped because the store or its tool is not on this machine (does not fail a run)."""
    rerun: tuple[str, ...] = ()
    """Skipped for want of root: the ``ca install``/``uninstall`` options that retry just this
    store (the hint, built from them, runs it under sudo with the home named)."""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.DONE or (self.outcome is Outcome.SKIPPED and self.absent)

    def as_json(self) -> dict[str, object]:
        return {"store": self.kind.value, "location": self.location, "outcome": self.outcome.value,
                "detail": self.detail, "hint": self.hint, "absent": self.absent}


@dataclass(frozen=True)
class TrustReport:
    """Every store's outcome for one ``install`` or ``uninstall``."""

    action: Action
    anchor: TrustAnchor
    stores: tuple[StoreReport, ...]

    @property
    def ok(self) -> bool:
        """True when every store was done or skipped for absence (exit 0)."""
        return all(s.ok for s in self.stores)

    def as_json(self) -> dict[str, object]:
        return {"action": self.action.value, "subject": self.anchor.subject,
                "fingerprint": self.anchor.pin, "ok": self.ok,
                "stores": [s.as_json() for s in self.stores]}


@dataclass(frozen=True)
class TrustAnchor:
    """The home's root CA certificate, checked fit to install."""

    cert: x509.Certificate
    source: Path

    @classmethod
    def from_home(cls, home: Home, *, prove: bool = True) -> TrustAnchor:
        """The home's ca.crt, refused unless it is a self-signed CA certificate and (with
        ``prove``, as for install) shown to be this home's root by :func:`prove_home_root`.

        Raises:
            CANotFound, StoreError: no CA in the home, or an unsafe home.
            PKIError: ca.crt is not a self-signed CA:TRUE certificate, or not this home's.
        """
        cert = home.root_cert()
        source = home.ca_cert_path
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = constraints.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not (is_ca and _signed_by(cert, cert)):
            raise PKIError(
                f"{source} is not a self-signed CA certificate (CA:TRUE), so it is not this "
                "home's trustwire root; refusing to install it",
                hint=_RESTORE_HINT,
            )
        if prove:
            prove_home_root(home, cert)
        return cls(cert=cert, source=source)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @property
    def pin(self) -> str:
        return "sha256:" + self.fingerprint.upper()

    @property
    def short(self) -> str:
        return self.fingerprint[:16]

    @property
    def nickname(self) -> str:
        """The NSS nickname and Java alias: unique to this root."""
        return f"trustwire-{self.short}"

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def matches_pem(self, data: bytes) -> bool:
        try:
            return any(fingerprint(c) == self.fingerprint for c in x509.load_pem_x509_certificates(data))
        except ValueError:
            return False


_RESTORE_HINT = "restore the home's ca.crt from a backup, or pick the right home with --home"


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _crl_signed_by(home: Home, root: x509.Certificate) -> bool:
    try:
        crl = x509.load_pem_x509_crl(home.crl_path.read_bytes())
        return crl.issuer == root.subject and crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    except (OSError, ValueError, TypeError):
        return False


def _key_verdict(home: Home, root: x509.Certificate) -> bool | None:
    """Whether ca.key is ca.crt's key; None when that cannot be told without a passphrase
    (encrypted), or the key is offline or unreadable by this user."""
    try:
        data = home.ca_key_path.read_bytes()
        key = load_private_key(data, source=str(home.ca_key_path))
    except (OSError, PassphraseError):
        return None
    except KeyFileError:
        return False
    return public_keys_match(key.public_key(), root.public_key())


def prove_home_root(home: Home, root: x509.Certificate) -> None:
    """Refuse ``root`` unless this home shows it is its trustwire CA: the inventory
    (index.db) is trustwire's, and ca.key is the root's key, or (offline or encrypted key)
    the home's intermediate, else its CRL, carries the root's signature. A root copied over
    ca.crt (``cp ISRG_Root_X1.crt HOME/ca/ca.crt``) has none of these.

    Raises:
        PKIError: no such proof; nothing is installed.
    """
    source = home.ca_cert_path
    try:
        with home.inventory(read_only=True) as inventory:
            ours = inventory.written_by_trustwire()
    except PKIError:
        ours = False
    if not ours:
        raise PKIError(
            f"{home.index_path} is missing or was not written by trustwire, so {source} cannot "
            "be shown to be this home's root; refusing to install it",
            hint="install only from a home made by `trustwire ca init` (pick it with --home), "
                 "or restore index.db from a backup",
        )
    verdict = _key_verdict(home, root)
    if verdict is False:
        raise PKIError(f"{home.ca_key_path} does not belong to {source}, so {source} is not "
                       "this home's root; refusing to install it", hint=_RESTORE_HINT)
    if verdict:
        return
    intermediate = home.intermediate_cert()
    proven = (_signed_by(intermediate, root) if intermediate is not None
              else _crl_signed_by(home, root))
    if not proven:
        what = home.intermediate_cert_path if intermediate is not None else home.crl_path
        raise PKIError(f"{what} was not signed by {source}, so {source} is not this home's "
                       "root; refusing to install it", hint=_RESTORE_HINT)


class TrustStore(Protocol):
    """One store: whether it can be changed here, what would change, and the change."""

    kind: StoreKind

    @property
    def location(self) -> str: ...

    def unavailable(self, action: Action) -> StoreReport | None:
        """A skip report when this store cannot be changed here (tool missing, not root)."""

    def plan(self, anchor: TrustAnchor, action: Action) -> str:
        """What :meth:`apply` will change, in one sentence (printed before touching it)."""

    def apply(self, anchor: TrustAnchor, action: Action) -> StoreReport: ...


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    for text in (result.stderr, result.stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[0]
    return f"exit status {result.returncode}"


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The line of a failed tool's output that says why: the first mentioning an error or
    exception, else the last one. keytool prints ``Certificate was added to keystore`` on
    stderr even when it then fails, and its ``keytool error: ...`` on stdout."""
    lines = [line.strip() for text in (result.stderr, result.stdout)
             for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "exception" in line.lower():
            return line
    return lines[-1] if lines else f"exit status {result.returncode}"


def run_tool(args: Sequence[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a store tool; an OSError (not executable, ...) comes back as a failed result."""
    _log.debug("running %s", " ".join(args))
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                                check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(list(args), 127, "", f"{args[0]}: {exc}")
    _log.debug("%s exited with %d: %s", args[0], result.returncode, one_line(result))
    return result


def which(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        # Administrators' tools (update-ca-certificates) live in sbin, which a user's PATH
        # often lacks; a user's tools (certutil, keytool) are looked up on PATH only.
        for directory in ("/usr/sbin", "/sbin"):
            candidate = Path(directory) / name
            if candidate.exists() and os.access(candidate, os.X_OK):
                return str(candidate)
    return found
