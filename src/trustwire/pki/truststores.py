"""Putting the home's root CA into the trust stores programs use (as ``mkcert -install``).

Three kinds of store, each changed only through its own tool:

* the **system** store, which OpenSSL (curl, Python's ``ssl.create_default_context()``,
  wget, git) reads: Debian/Ubuntu (a file in /usr/local/share/ca-certificates, then
  ``update-ca-certificates``), Fedora/RHEL (/etc/pki/ca-trust/source/anchors, then
  ``update-ca-trust``), macOS (``security add-trusted-cert`` into the login keychain);
* **NSS** databases (Firefox profiles, Chrome/Chromium's ~/.pki/nssdb), via ``certutil``;
* a **Java** truststore, via ``keytool`` (password ``changeit``, Java's default).

Only the home's own root is ever installed: :meth:`TrustAnchor.from_home` refuses
anything but a self-signed CA certificate (basicConstraints CA:TRUE) read from the
home's ca.crt, and one the home cannot show is its own (:func:`prove_home_root`: the
matching ca.key, or the intermediate or CRL it signed, and trustwire's index.db).
Everything added is named after the root's SHA-256 fingerprint (file
``trustwire-<16 hex>.crt``, NSS nickname and Java alias ``trustwire-<16 hex>``), so
``uninstall`` removes exactly that and nothing else, and running either twice
changes nothing the second time. A root the user already had in an NSS database under
another nickname is found by its certificate and left as it is (install reports it,
uninstall does not remove what it did not add).

Each store ends up *done*, *skipped* (its tool or the store itself is absent, or
changing it needs root) or *failed* (its tool said why, in one line). A store
skipped for absence does not fail the run; one skipped for want of root does,
since the trust the user asked for is then not in place.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from trustwire.errors import PKIError
from trustwire.pki.anchor import (
    Action,
    Outcome,
    StoreKind,
    StoreReport,
    TrustAnchor,
    TrustReport,
    TrustStore,
    error_line,
    one_line,
    run_tool,
    which,
)
from trustwire.pki.files import atomic_write
from trustwire.pki.store import Home

__all__ = [
    "Action",
    "JavaStore",
    "NSSStore",
    "Outcome",
    "StoreKind",
    "StoreReport",
    "SystemStore",
    "TrustAnchor",
    "TrustReport",
    "TrustStore",
    "find_nss_databases",
    "install_root",
    "sudo_hint",
    "trust_stores",
    "uninstall_root",
]

JAVA_STORE_PASSWORD = "changeit"  # noqa: S105 - Java's well-known default; cacerts is public data

# -- the system store --------------------------------------------------------------------------

@dataclass(frozen=True)
class _SystemFlavor:
    name: str
    directory: Path
    tool: str
    install_args: tuple[str, ...]
    uninstall_args: tuple[str, ...]
    java_copy: Path | None = None
    """A Java keystore the tool's hooks copy roots into, as alias ``debian:NAME.pem``."""


# Debian: a removed local certificate only leaves /etc/ssl/certs (its symlink and hash link)
# with --fresh; its hooks never hear of the removal, so the Java copy is deleted by us.
_DEBIAN = _SystemFlavor("Debian/Ubuntu", Path("/usr/local/share/ca-certificates"),
                        "update-ca-certificates", (), ("--fresh",),
                        java_copy=Path("/etc/ssl/certs/java/cacerts"))
_FEDORA = _SystemFlavor("Fedora/RHEL", Path("/etc/pki/ca-trust/source/anchors"),
                        "update-ca-trust", ("extract",), ("extract",))


class SystemStore:
    """The operating system's store: Debian/Ubuntu, Fedora/RHEL or macOS, whichever is here."""

    kind = StoreKind.SYSTEM

    def __init__(self, *, is_root: bool | None = None, macos_keychain: Path | None = None) -> None:
        self._is_root = os.geteuid() == 0 if is_root is None else is_root
        self._macos = sys.platform == "darwin"
        self._keychain = macos_keychain or Path.home() / "Library/Keychains/login.keychain-db"
        self._flavor = next((f for f in (_DEBIAN, _FEDORA) if f.directory.parent.is_dir()
                             and which(f.tool)), None)

    @property
    def location(self) -> str:
        if self._macos:
            return str(self._keychain)
        return str(self._flavor.directory) if self._flavor else "system trust store"

    def _file(self, anchor: TrustAnchor) -> Path:
        assert self._flavor is not None  # noqa: S101 - only called when available
        return self._flavor.directory / f"{anchor.nickname}.crt"

    def unavailable(self, action: Action) -> StoreReport | None:
        if self._macos:
            if which("security") is None:
                return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.SKIPPED,
                                   detail="the macOS `security` tool is not on PATH", absent=True)
            return None
        if self._flavor is None:
            return StoreReport(
                kind=self.kind, location=self.location, outcome=Outcome.SKIPPED, absent=True,
                detail="no supported system trust store here (update-ca-certificates or "
                       "update-ca-trust)",
                hint="install the ca-certificates package",
            )
        if not self._is_root:
            return StoreReport(
                kind=self.kind, location=self.location, outcome=Outcome.SKIPPED,
                detail=f"changing the {self._flavor.name} system store needs root",
                rerun=("--store", "system"),
            )
        return None

    def plan(self, anchor: TrustAnchor, action: Action) -> str:
        if self._macos:
            verb = "add" if action is Action.INSTALL else "remove"
            return f"{verb} {anchor.subject} as a trusted root in {self._keychain} (security)"
        assert self._flavor is not None  # noqa: S101
        tool = " ".join((self._flavor.tool, *self._args(action)))
        if action is Action.INSTALL:
            return f"write {self._file(anchor)} and run {tool}"
        return f"remove {self._file(anchor)} (if present) and run {tool}"

    def apply(self, anchor: TrustAnchor, action: Action) -> StoreReport:
        if self._macos:
            return self._apply_macos(anchor, action)
        assert self._flavor is not None  # noqa: S101
        path = self._file(anchor)
        try:
            if action is Action.INSTALL:
                if path.is_file() and path.read_bytes() == anchor.pem:
                    return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.DONE,
                                       detail=f"the root was already there ({path})")
                path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                atomic_write(path, anchor.pem, mode=0o644)
                detail = f"added {path}"
            elif path.exists():
                path.unlink()
                detail = f"removed {path}"
            else:
                return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.DONE,
                                   detail=f"{path} was not there; nothing to remove")
        except (OSError, PKIError) as exc:
            return self._failed(str(exc))
        result = run_tool([which(self._flavor.tool) or self._flavor.tool, *self._args(action)])
        if result.returncode != 0:
            return self._failed(f"{self._flavor.tool} failed: {one_line(result)}")
        copy = self._flavor.java_copy
        if action is Action.UNINSTALL and copy is not None and copy.exists():
            java = JavaStore(copy, alias=f"debian:{anchor.nickname}.pem")
            if java.unavailable(action) is None:
                removed = java.apply(anchor, action)
                if removed.outcome is Outcome.FAILED:
                    return self._failed(f"removing the Java copy in {copy}: {removed.detail}")
        return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.DONE,
                           detail=f"{detail} and ran {self._flavor.tool}")

    def _args(self, action: Action) -> tuple[str, ...]:
        assert self._flavor is not None  # noqa: S101
        return self._flavor.install_args if action is Action.INSTALL else self._flavor.uninstall_args

    def _apply_macos(self, anchor: TrustAnchor, action: Action) -> StoreReport:
        security = which("security") or "security"
        if action is Action.INSTALL:
            result = run_tool([security, "add-trusted-cert", "-r", "trustRoot", "-k",
                           str(self._keychain), str(anchor.source)])
        else:
            # The SHA-1 here is the identifier `security` takes, not a security measure.
            sha1 = anchor.cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
            found = run_tool([security, "find-certificate", "-a", "-Z", str(self._keychain)])
            if sha1 not in found.stdout:
                return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.DONE,
                                   detail="the root was not in the keychain; nothing to remove")
            result = run_tool([security, "delete-certificate", "-Z", sha1, str(self._keychain)])
        if result.returncode != 0:
            return self._failed(f"security failed: {one_line(result)}")
        done = "added to" if action is Action.INSTALL else "removed from"
        return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.DONE,
                           detail=f"{anchor.subject} {done} {self._keychain}")

    def _failed(self, detail: str) -> StoreReport:
        return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.FAILED,
                           detail=detail)


# -- NSS ---------------------------------------------------------------------------------------

_NSS_ROW = re.compile(r"^(\S.*?)\s+([A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")
"""A ``certutil -L`` row: the nickname, then trust flags such as ``C,,`` or ``CT,C,C``."""

def find_nss_databases(user_home: Path) -> list[Path]:
    """NSS databases of Firefox profiles and Chrome/Chromium under ``user_home``."""
    patterns = [".mozilla/firefox/*/", "snap/firefox/common/.mozilla/firefox/*/", ".pki/nssdb/"]
    found: list[Path] = []
    for pattern in patterns:
        for match in sorted(glob.glob(str(user_home / pattern))):
            directory = Path(match)
            if (directory / "cert9.db").exists() or (directory / "cert8.db").exists():
                found.append(directory)
    return found


class NSSStore:
    """One NSS database (``sql:`` for cert9.db, ``dbm:`` for the old cert8.db)."""

    kind = StoreKind.NSS

    def __init__(self, directory: Path, *, explicit: bool = False) -> None:
        self.directory = directory.absolute()
        self.explicit = explicit
        self._certutil = which("certutil")

    @property
    def location(self) -> str:
        return str(self.directory)

    @property
    def _db(self) -> str:
        prefix = "dbm:" if (self.directory / "cert8.db").exists() and not (
            self.directory / "cert9.db").exists() else "sql:"
        return f"{prefix}{self.directory}"

    def unavailable(self, action: Action) -> StoreReport | None:
        if self._certutil is None:
            # Asked for by --nss-db: the trust the user wanted is not in place, so it fails the run.
            return StoreReport(
                kind=self.kind, location=self.location, outcome=Outcome.SKIPPED,
                absent=not self.explicit,
                detail="certutil is not installed, so NSS databases (Firefox, Chrome) cannot "
                       "be changed",
                hint="install it: apt-get install libnss3-tools (Fedora: dnf install nss-tools; "
                     "macOS: brew install nss)",
            )
        return None

    def plan(self, anchor: TrustAnchor, action: Action) -> str:
        if action is Action.INSTALL:
            return f"add {anchor.nickname} (trusted for TLS servers) to the NSS database {self._db}"
        return f"remove {anchor.nickname} from the NSS database {self._db}"

    def _certutil_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self._certutil is not None  # noqa: S101
        return run_tool([self._certutil, "-d", self._db, *args])

    def installed(self, anchor: TrustAnchor) -> bool:
        """True when the database holds this root under its nickname."""
        return self._holds(anchor, anchor.nickname)

    def _holds(self, anchor: TrustAnchor, nickname: str) -> bool:
        listed = self._certutil_run("-L", "-n", nickname, "-a")
        return listed.returncode == 0 and anchor.matches_pem(listed.stdout.encode())

    def nicknames(self) -> list[str]:
        """Every nickname in the database (``certutil -L``: a nickname, then its trust flags)."""
        listed = self._certutil_run("-L")
        if listed.returncode != 0:
            return []
        return [m.group(1) for m in map(_NSS_ROW.match, listed.stdout.splitlines()) if m]

    def held_as(self, anchor: TrustAnchor) -> str | None:
        """The nickname the database holds this root under, whatever added it; None if absent.

        By certificate, not by name: NSS keeps one entry per certificate, so ``certutil -A``
        of a root already there as "My Own" only rewrites that entry's trust flags."""
        nicknames = self.nicknames()
        ordered = sorted(nicknames, key=lambda n: n != anchor.nickname)  # ours first: one call
        return next((n for n in ordered if self._holds(anchor, n)), None)

    def apply(self, anchor: TrustAnchor, action: Action) -> StoreReport:
        if not ((self.directory / "cert9.db").exists() or (self.directory / "cert8.db").exists()):
            return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.FAILED,
                               detail=f"{self.directory} is not an NSS database (no cert9.db)",
                               hint=f"create one with: certutil -N -d sql:{self.directory}")
        held = self.held_as(anchor)
        if action is Action.INSTALL:
            if held == anchor.nickname:
                return self._done("the root was already there")
            if held is not None:
                return self._done(f"the root is already there as {held!r}; its trust flags "
                                  "were left as they are")
            result = self._certutil_run("-A", "-t", "C,,", "-n", anchor.nickname,
                                        "-i", str(anchor.source))
            if result.returncode != 0:
                return self._failed(result)
            return self._done(f"added {anchor.nickname}")
        if held is not None and held != anchor.nickname:
            return self._done(f"the root is there as {held!r}, which trustwire did not add; "
                              "left alone")
        removed = 0
        for _ in range(8):  # bounded: duplicates under one nickname are possible in old DBs
            if not self.installed(anchor):
                break
            result = self._certutil_run("-D", "-n", anchor.nickname)
            if result.returncode != 0:
                return self._failed(result)
            removed += 1
        return self._done(f"removed {anchor.nickname}" if removed
                          else "the root was not there; nothing to remove")

    def _done(self, detail: str) -> StoreReport:
        return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.DONE,
                           detail=detail)

    def _failed(self, result: subprocess.CompletedProcess[str]) -> StoreReport:
        return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.FAILED,
                           detail=f"certutil failed: {one_line(result)}")


# -- Java --------------------------------------------------------------------------------------

class JavaStore:
    """A Java truststore: ``keystore`` if given, else $JAVA_HOME's cacerts, else
    ``keytool -cacerts`` (the running JDK's own)."""

    kind = StoreKind.JAVA

    def __init__(self, keystore: Path | None = None, *, explicit: bool = False,
                 alias: str | None = None) -> None:
        self._alias = alias
        java_home = Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None
        own = java_home / "bin" / "keytool" if java_home else None
        self._keytool = str(own) if own and own.exists() else which("keytool")
        default = java_home / "lib" / "security" / "cacerts" if java_home else None
        self.keystore = keystore or (default if default and default.exists() else None)
        self.explicit = explicit or keystore is not None

    @property
    def location(self) -> str:
        return str(self.keystore) if self.keystore else "keytool -cacerts"

    def alias(self, anchor: TrustAnchor) -> str:
        return self._alias or anchor.nickname

    def _store_args(self) -> list[str]:
        where = ["-keystore", str(self.keystore)] if self.keystore else ["-cacerts"]
        return [*where, "-storepass", JAVA_STORE_PASSWORD]

    def unavailable(self, action: Action) -> StoreReport | None:
        if self._keytool is None:
            return StoreReport(
                kind=self.kind, location=self.location, outcome=Outcome.SKIPPED, absent=True,
                detail="keytool is not installed, so no Java truststore was changed",
                hint="install a JDK or JRE (apt-get install default-jre-headless) if Java "
                     "programs must trust this CA",
            )
        if self.keystore is not None and not self.keystore.exists():
            return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.FAILED,
                               detail=f"the Java keystore {self.keystore} does not exist",
                               hint="check --java-store")
        target = self.target()
        if target is not None and not os.access(target, os.W_OK):
            detail = (f"{target} is not writable by this user" if self.keystore is not None
                      else f"changing the JDK's truststore {target} needs root")
            given = ("--java-store", str(self.keystore)) if self.explicit and self.keystore else ()
            return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.SKIPPED,
                               detail=detail, rerun=("--store", "java", *given))
        return None

    def target(self) -> Path | None:
        """The file keytool changes: the keystore given (or $JAVA_HOME's), else the cacerts of
        the JDK that keytool belongs to (what ``keytool -cacerts`` opens); None if not found."""
        if self.keystore is not None:
            return self.keystore.resolve()
        if self._keytool is None:
            return None
        cacerts = Path(self._keytool).resolve().parent.parent / "lib" / "security" / "cacerts"
        return cacerts.resolve() if cacerts.exists() else None

    def plan(self, anchor: TrustAnchor, action: Action) -> str:
        verb = "import" if action is Action.INSTALL else "delete"
        return f"{verb} alias {self.alias(anchor)} in the Java truststore {self.location} (keytool)"

    def _keytool_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self._keytool is not None  # noqa: S101
        return run_tool([self._keytool, *args, *self._store_args()])

    def installed(self, anchor: TrustAnchor) -> bool:
        listed = self._keytool_run("-list", "-rfc", "-alias", self.alias(anchor))
        return listed.returncode == 0 and anchor.matches_pem(listed.stdout.encode())

    def apply(self, anchor: TrustAnchor, action: Action) -> StoreReport:
        if action is Action.INSTALL:
            if self.installed(anchor):
                return self._report(Outcome.DONE, "the root was already there")
            result = self._keytool_run("-importcert", "-noprompt", "-trustcacerts",
                                       "-alias", self.alias(anchor), "-file", str(anchor.source))
            if result.returncode != 0:
                return self._report(Outcome.FAILED, f"keytool failed: {error_line(result)}")
            return self._report(Outcome.DONE, f"imported alias {self.alias(anchor)}")
        if not self.installed(anchor):
            return self._report(Outcome.DONE, "the root was not there; nothing to remove")
        result = self._keytool_run("-delete", "-alias", self.alias(anchor))
        if result.returncode != 0:
            return self._report(Outcome.FAILED, f"keytool failed: {error_line(result)}")
        return self._report(Outcome.DONE, f"deleted alias {self.alias(anchor)}")

    def _report(self, outcome: Outcome, detail: str) -> StoreReport:
        return StoreReport(kind=self.kind, location=self.location, outcome=outcome, detail=detail)


# -- running them ------------------------------------------------------------------------------

def trust_stores(
    kinds: Iterable[StoreKind] = tuple(StoreKind), *, nss_dbs: Sequence[Path] = (),
    java_store: Path | None = None, user_home: Path | None = None,
) -> list[TrustStore]:
    """The stores to change: for NSS, ``nss_dbs`` plus those found under ``user_home``
    (default ``~``); an absent kind is still listed so it is reported as skipped."""
    wanted = set(kinds)
    stores: list[TrustStore] = []
    if StoreKind.SYSTEM in wanted:
        stores.append(SystemStore())
    if StoreKind.NSS in wanted:
        found = find_nss_databases(user_home or Path.home())
        explicit = [Path(d) for d in nss_dbs]
        for directory in explicit:
            stores.append(NSSStore(directory, explicit=True))
        stores.extend(NSSStore(d) for d in found
                      if d.resolve() not in {e.resolve() for e in explicit})
        if not explicit and not found:
            stores.append(_NoNSS())
    if StoreKind.JAVA in wanted:
        stores.append(JavaStore(java_store))
    return stores


class _NoNSS:
    """Stands for "no NSS database here", so the report says so."""

    kind = StoreKind.NSS
    location = "~/.mozilla/firefox, ~/.pki/nssdb"

    def unavailable(self, action: Action) -> StoreReport | None:
        return StoreReport(kind=self.kind, location=self.location, outcome=Outcome.SKIPPED,
                           absent=True, detail="no NSS database found (no Firefox profile, no "
                                               "~/.pki/nssdb)",
                           hint="give one with --nss-db DIR")

    def plan(self, anchor: TrustAnchor, action: Action) -> str:
        return "nothing: there is no NSS database"

    def apply(self, anchor: TrustAnchor, action: Action) -> StoreReport:
        report = self.unavailable(action)
        assert report is not None  # noqa: S101 - always a skip
        return report


def sudo_hint(home: Home, action: Action, args: Sequence[str]) -> str:
    """The command that retries a store as root. It names the home (absolute): sudo
    resets the environment, TRUSTWIRE_HOME included, and root's default home is not this."""
    words = ["sudo", "trustwire", "--home", str(home.root.resolve()), "ca", action.value, *args]
    return "rerun with sudo: " + shlex.join(words)


def _run_stores(home: Home, anchor: TrustAnchor, action: Action, stores: Sequence[TrustStore],
                announce: Callable[[StoreKind, str], None] | None) -> TrustReport:
    reports: list[StoreReport] = []
    for store in stores:
        skipped = store.unavailable(action)
        if skipped is not None:
            if skipped.rerun and skipped.hint is None:
                skipped = dataclasses.replace(skipped, hint=sudo_hint(home, action, skipped.rerun))
            reports.append(skipped)
            continue
        if announce is not None:
            announce(store.kind, store.plan(anchor, action))
        reports.append(store.apply(anchor, action))
    return TrustReport(action=action, anchor=anchor, stores=tuple(reports))


def install_root(
    home: Home, *, stores: Sequence[TrustStore] | None = None,
    announce: Callable[[StoreKind, str], None] | None = None,
) -> TrustReport:
    """Add the home's root CA to ``stores`` (default: every kind, see :func:`trust_stores`).

    Args:
        home: the home whose ca.crt is installed (checked by :meth:`TrustAnchor.from_home`).
        stores: where to install.
        announce: called with what will change, before each store is touched.

    Raises:
        CANotFound, StoreError, PKIError: no CA, an unsafe home, or not a root to install.
    """
    anchor = TrustAnchor.from_home(home)
    return _run_stores(home, anchor, Action.INSTALL, trust_stores() if stores is None else stores,
                       announce)


def uninstall_root(
    home: Home, *, stores: Sequence[TrustStore] | None = None,
    announce: Callable[[StoreKind, str], None] | None = None,
) -> TrustReport:
    """Remove exactly what :func:`install_root` added for this home's root; idempotent.
    Works on a home whose proof of its root (see :func:`prove_home_root`) is lost, so what
    was installed can still be taken out."""
    anchor = TrustAnchor.from_home(home, prove=False)
    return _run_stores(home, anchor, Action.UNINSTALL, trust_stores() if stores is None else stores,
                       announce)
