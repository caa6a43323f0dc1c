"""Reload certificates, keys, CA, CRL and policy without dropping anyone who is still admitted.

Theory of operation: a :class:`TrustSource` names the files a listener is built
from. :meth:`TrustSource.build` re-reads them and *validates* before anything
is swapped:

* the key matches the certificate (OpenSSL's ``load_cert_chain``);
* a server certificate chain verifies strictly against the CA, with the right
  key usage: a handshake over memory BIOs between the new context and a client
  that trusts only that CA;
* every CRL in the file (one per CA of a bundle) from a CA in the chain or the CA
  file is signed by it, is neither past its nextUpdate nor issued in the
  future, and is not older than the newest seen from the same CA
  (:func:`trustwire.ops.crls.check_not_older`, with the floors kept on disk by
  :mod:`trustwire.ops.floors`): copying an old, validly signed CRL over the
  current one would un-revoke certificates. A CRL
  from another issuer cannot be checked and is not used (its issuer's
  certificates are then refused, never admitted unchecked);
* the policy file parses.

A failed build raises :class:`ReloadError` with one sentence. A
:class:`Reloader` runs the whole cycle, for SIGHUP and the file watcher alike:
build, swap (:meth:`Listener.apply`), re-judge every open session
(:meth:`Listener.rejudge`: those no longer admitted are cut), count, and report;
on failure it keeps the old material and says why (stderr, audit log,
``/status``). :class:`Watcher` polls the files' (inode, size, mtime) every
``interval`` seconds, with no extra dependency.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustwire.authz.admission import TrustState, name_key
from trustwire.authz.policy import Policy
from trustwire.errors import InventoryError, ReloadError, TrustwireError
from trustwire.net.listener import Listener
from trustwire.net.material import CrlFacts, Material, certificate_facts
from trustwire.ops.crls import (
    CLOCK_SKEW,
    CRL_BLOCK,
    ca_key,
    cas_by_name,
    check_home_floor,
    check_none_dropped,
    check_not_older,
    crl_facts,
    load_certificates,
    load_crls,
    read_file,
    revoked_cas,
    signer_of,
)
from trustwire.ops.floors import FloorStore
from trustwire.pki.store import Home
from trustwire.tls.context import ClientTLS, ServerTLS

__all__ = ["ReloadOutcome", "Reloader", "TrustSource", "Watcher", "check_not_older"]


def _verify_server_chain(tls: ServerTLS) -> None:
    """Handshake the new certificate against a client that trusts only the CA."""
    if tls.ca is None:
        return
    server = ServerTLS(cert=tls.cert, key=tls.key, ca=tls.ca, client_auth=False,
                       profile=tls.profile).context()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    client.load_verify_locations(cafile=str(tls.ca))
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname=None)
    for _ in range(8):
        try:
            cli.do_handshake()
            return
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLCertVerificationError as exc:
            if "unsuitable certificate purpose" in str(exc.verify_message):
                raise ReloadError(
                    f"{tls.cert} is not a server certificate (unsuitable purpose: its extended "
                    "key usage lacks serverAuth)",
                    hint="issue one for servers: trustwire cert issue NAME --server (or --both)",
                ) from exc
            raise ReloadError(f"{tls.cert} does not verify against {tls.ca}: "
                              f"{exc.verify_message}") from exc
        except ssl.SSLError as exc:
            raise ReloadError(f"{tls.cert} cannot complete a handshake: {exc.reason}") from exc
        s_in.write(c_out.read())
        try:
            srv.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            pass  # the client side reports the reason
        c_in.write(s_out.read())
    raise ReloadError(f"{tls.cert} could not be checked (handshake did not finish)")


@dataclass(frozen=True, kw_only=True)
class TrustSource:
    """Where a listener's context and trust state come from: files, re-read on every reload.

    Args:
        tls: the TLS settings (certificate, key, CA, CRL files).
        policy: the access policy given as a value (flags).
        policy_file: a TOML policy file, merged with ``policy`` and re-read on reload.
    """

    tls: ServerTLS | ClientTLS
    policy: Policy = field(default_factory=Policy)
    policy_file: Path | None = None
    home: Home | None = None
    """The home the files come from (``--identity``): checked again on every reload (owner,
    modes), and its inventory's CRL number is the floor no CRL may fall below, so a rollback
    is refused after a restart too."""
    identity: str | None = None
    """The identity's name in ``home``."""
    floor_dir: Path | None = None
    """Where the CRL rollback floors are kept on disk (default: the user's state
    directory, one small file per CRL file: docs/operations.md, "No CRL rollback")."""

    @classmethod
    def of(cls, tls: ServerTLS | ClientTLS, policy: Policy | Path | None) -> TrustSource:
        """A source from TLS settings and a policy given as a value or as a TOML file."""
        if isinstance(policy, Path):
            return cls(tls=tls, policy_file=policy)
        return cls(tls=tls, policy=policy or Policy())

    def current_policy(self) -> Policy:
        """The policy as the files say now.

        Raises:
            ConfigError: the policy file is unreadable or invalid.
        """
        if self.policy_file is None:
            return self.policy
        return self.policy.merged(Policy.from_file(self.policy_file))

    def build(self, current: Material | None = None) -> Material:
        """Read and validate everything (never a half-built context).

        Args:
            current: the material in force, which a new CRL must not be older than.

        Raises:
            ReloadError: with one sentence saying what is wrong.
        """
        tls = self.tls
        now = dt.datetime.now(dt.UTC)
        try:
            if self.home is not None and self.identity is not None:
                # The home is still safe to read from, and its CRL still there if used.
                self.home.identity(self.identity, crl=tls.crl == self.home.crl_path)
            context = tls.context()
            policy = self.current_policy()
        except TrustwireError as exc:
            raise ReloadError(exc.message, hint=exc.hint) from exc
        chain, _ = load_certificates(tls.cert)
        anchors_certs, ca_bytes = load_certificates(tls.ca)
        if isinstance(tls, ServerTLS):
            _verify_server_chain(tls)
        revoked: frozenset[tuple[str, int]] = frozenset()
        crls: list[CrlFacts] = []
        floors = dict(current.crl_floors) if current is not None else {}
        crl_bytes = b""
        notices: tuple[str, ...] = ()
        store: FloorStore | None = None
        if tls.crl is not None:
            store = FloorStore(tls.crl, self.floor_dir)
            try:
                crls, revoked, floors, unused, crl_bytes = self._read_crls(
                    tls.crl, chain + anchors_certs, store.merged(floors), now)
            except ReloadError as exc:
                if "refusing to roll back" not in exc.message or not store.path.exists():
                    raise
                raise ReloadError(exc.message, hint=(
                    f"{exc.hint}; the newest CRL seen from each CA is recorded in "
                    f"{store.path} (delete that file to take an older CRL on purpose)")) from exc
            notices = tuple(
                f"the CRL from {name} in {tls.crl} is not used: that CA is in neither the CA "
                "file nor the certificate chain, so its CRL cannot be checked, and the "
                "certificates it issued are refused; add its certificate to the CA file"
                for name in unused)
            problem = store.problem()
            if problem is not None:
                notices += (f"the CRL rollback floors are kept in memory only, not in "
                            f"{store.path}: {problem}",)
            if current is not None:
                check_none_dropped(current, crls, chain + anchors_certs, tls.crl)
        anchors = {hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest():
                   c.subject.rfc4514_string() for c in anchors_certs}
        peer_required = tls.client_auth if isinstance(tls, ServerTLS) else True
        trust = TrustState(policy=policy, revoked=revoked, anchors=anchors,
                           revoked_cas=revoked_cas(chain + anchors_certs, revoked),
                           crl_not_before={c.key: c.this_update for c in crls
                                           if c.this_update > now},
                           crls={c.key: c.next_update for c in crls}
                           if tls.crl else None,
                           peer_required=peer_required)
        epoch = hashlib.sha256(len(ca_bytes).to_bytes(8, "big") + ca_bytes + crl_bytes).digest()
        files = tuple(p for p in (tls.cert, tls.key, tls.ca, tls.crl, self.policy_file)
                      if p is not None)
        if store is not None:
            store.save(floors)  # a restart or a replaced worker starts from here
        return Material(context=context, trust=trust, epoch=epoch,
                        certificate=certificate_facts(chain[0]) if chain else None,
                        crls=tuple(crls), crl_floors=floors, files=files, notices=notices)

    def _read_crls(self, path: Path, issuers: list[x509.Certificate],
                   floors: dict[str, CrlFacts], now: dt.datetime,
                   ) -> tuple[list[CrlFacts], frozenset[tuple[str, int]], dict[str, CrlFacts],
                              list[str], bytes]:
        """The CRL file, checked: its CRLs, the (issuer key, serial) pairs they revoke, the
        rollback floors with them (by issuer key), the issuers of CRLs not used, and the
        file's bytes."""
        loaded, unused, data = load_crls(path, issuers, now)
        issued_by = self._home_floor()
        crls: list[CrlFacts] = []
        revoked: set[tuple[str, int]] = set()
        floors = dict(floors)
        for crl, key in loaded:
            facts = crl_facts(crl, key)
            check_not_older(facts, floors.get(key), path)
            check_home_floor(facts, issued_by.get(key), path)
            crls.append(facts)
            floors[key] = facts
            revoked.update((key, entry.serial_number) for entry in crl)
        return crls, frozenset(revoked), floors, unused, data

    def _revocations(self, current: Material, trust: TrustState,
                    ) -> tuple[TrustState, dict[str, CrlFacts], int] | None:
        """After a failed :meth:`build`: the new revocations in the CRL file's validly signed
        CRLs (a broken policy file, a certificate caught mid-renewal or another CA's stale
        CRL must not hold back a revocation written at the same time). Only ever adds.

        Returns:
            The trust state with them, the rollback floors with the new CRLs, and how many
            were added; None when there is nothing to add or the CRL file is unusable too.
        """
        if self.tls.crl is None:
            return None
        try:
            chain, _ = load_certificates(self.tls.cert)
            anchors, _ = load_certificates(self.tls.ca)
            blocks = CRL_BLOCK.findall(read_file(self.tls.crl, "the CRL"))
            issued_by = self._home_floor()
        except TrustwireError:
            return None
        # CRL by CRL: one CA's unusable CRL (expired, rolled back, forged) must not hold
        # back another's revocation. A validly signed CRL's entries are revocations its CA
        # made, whatever else is wrong with it; only a CRL older than the floor is skipped
        # (its entries are in the newer one).
        by_name = cas_by_name(chain + anchors)
        now = dt.datetime.now(dt.UTC)
        store = FloorStore(self.tls.crl, self.floor_dir)
        floors = store.merged(current.crl_floors)
        revoked: set[tuple[str, int]] = set()
        for block in blocks:
            try:
                crl = x509.load_pem_x509_crl(block)
            except ValueError:
                continue
            signer = signer_of(crl, by_name.get(name_key(crl.issuer), []))
            if signer is None:
                continue
            key = ca_key(signer)
            facts = crl_facts(crl, key)
            try:
                check_not_older(facts, floors.get(key), self.tls.crl)
                check_home_floor(facts, issued_by.get(key), self.tls.crl)
            except ReloadError:
                continue
            revoked.update((key, entry.serial_number) for entry in crl)
            if crl.last_update_utc <= now + CLOCK_SKEW and (
                    crl.next_update_utc is None or crl.next_update_utc >= now):
                floors[key] = facts  # only a CRL a reload would take may become the floor
        added = revoked - trust.revoked
        if not added:
            return None
        store.save(floors)
        everything = trust.revoked | added
        return replace(trust, revoked=everything, revoked_cas=trust.revoked_cas
                       | revoked_cas(chain + anchors, everything)), floors, len(added)

    def _home_floor(self) -> dict[str, int]:
        """The newest CRL number the home's CA signed, by the CA's name (empty without a home)."""
        if self.home is None or not self.home.index_path.exists():
            return {}  # a server given copies of the certificates, without the inventory
        try:
            with self.home.inventory() as inventory:
                number = inventory.crl_number()
            signer = self.home.intermediate_cert() or self.home.root_cert()
        except InventoryError:
            return {}  # unreadable: the in-process floors still hold
        except TrustwireError as exc:
            raise ReloadError(exc.message, hint=exc.hint) from exc
        return {ca_key(signer): number}


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    sessions_cut: int = 0
    error: str | None = None


class Reloader:
    """The one reload path: validate, swap, re-judge, count, report.

    Args:
        listener: what to reload.
        source: the files to build from.
        keep_sessions: do not re-judge open sessions (``--keep-revoked-sessions``).
        say: where one-line reports go (the CLI's stderr), or None.
    """

    def __init__(self, listener: Listener, source: TrustSource, *, keep_sessions: bool = False,
                 say: Callable[[str], None] | None = None) -> None:
        self.listener = listener
        self.source = source
        self.keep_sessions = keep_sessions
        self.say = say

    def reload(self, reason: str) -> ReloadOutcome:
        listener = self.listener
        try:
            material = self.source.build(listener.material)
        except ReloadError as exc:
            listener.stats.reloads_failed += 1
            message = exc.message
            salvaged = self.source._revocations(listener.material, listener.gate.trust)
            cut = 0
            if salvaged is not None:  # revocations never wait for the rest to be fixed
                trust, floors, added = salvaged
                listener.gate.update(trust)
                listener.material = replace(listener.material, crl_floors=floors)
                cut = 0 if self.keep_sessions else listener.rejudge()
                message += (f"; the CRL's {added} new revocation(s) are in force all the same "
                            f"({cut} session(s) cut)")
            listener.last_reload_error = message
            if listener.observer is not None:
                listener.observer.reload_failed(reason, message)
            if self.say is not None:
                self.say(f"reload ({reason}) failed, keeping the previous certificates: "
                         f"{message}")
            return ReloadOutcome(ok=False, error=message, sessions_cut=cut)
        listener.apply(material)
        listener.stats.reloads_ok += 1
        listener.last_reload_error = None
        listener.last_reload_at = material.loaded_at
        cut = 0 if self.keep_sessions else listener.rejudge()
        if listener.observer is not None:
            listener.observer.reloaded(reason, cut)
        if self.say is not None:
            self.say(f"reloaded ({reason}); {cut} session(s) cut")
        notify = self.say or listener.say
        if notify is not None:
            for notice in material.notices:
                notify(f"warning: {notice}")
        return ReloadOutcome(ok=True, sessions_cut=cut)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Watcher:
    """Poll the listener's files and reload when any of them changed (and settled).

    Args:
        reloader: what to call.
        interval: seconds between polls.
    """

    def __init__(self, reloader: Reloader, interval: float) -> None:
        self._reloader = reloader
        self.interval = interval
        self._stamps = self._snapshot()
        self._task: asyncio.Task[None] | None = None

    def _snapshot(self) -> dict[Path, tuple[int, int, int] | None]:
        return {path: _stamp(path) for path in self._reloader.listener.material.files}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def reload(self, reason: str) -> ReloadOutcome:
        """Reload now, remembering the files as they were *before* they were read: a change
        that lands while the reload runs (a second CRL written right after the first) is
        seen at the next poll instead of being taken for the one just loaded."""
        stamps = self._snapshot()
        outcome = self._reloader.reload(reason)
        self._stamps = stamps
        return outcome

    def changed(self) -> list[str]:
        now = self._snapshot()
        return [p.name for p in now if now[p] != self._stamps.get(p)]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            changed = self.changed()
            if not changed:
                continue
            # Writers replace several files in turn: wait for them to settle first.
            await asyncio.sleep(min(0.2, self.interval))
            self.reload(f"changed on disk: {', '.join(changed)}")
