"""Reload certificates, keys, CA, CRL and policy without dropping anyone.

Theory of operation: a :class:`Material` is everything a listener needs to
accept new connections: the SSLContext, the policy, the revoked serials, and
facts for ``/status``. ``build`` re-reads the files and *validates* before
anything is swapped:

* the key matches the certificate (OpenSSL's ``load_cert_chain``);
* a server certificate chain verifies strictly against the CA, with the right
  key usage: a handshake over memory BIOs between the new context and a client
  that trusts only that CA;
* the CRL is signed by a CA in the chain or the CA file, and is not past its
  nextUpdate (an expired CRL makes OpenSSL refuse every client);
* the policy file parses.

A failed build raises :class:`ReloadError` with one sentence; the caller keeps
the old material, logs the reason and reports it in ``/status``. New
handshakes use the new context; established connections keep theirs.

:class:`Watcher` polls the files' (inode, size, mtime) every ``interval``
seconds, no extra dependency, and SIGHUP calls the same reload.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from trustwire.authz.policy import Policy
from trustwire.errors import ReloadError, TrustwireError
from trustwire.tls.context import ClientTLS, ServerTLS

__all__ = ["Material", "ReloadError", "Watcher", "build_material"]


@dataclass(frozen=True)
class Material:
    """What a listener accepts new connections with."""

    context: ssl.SSLContext
    policy: Policy
    revoked: frozenset[tuple[str, int]]
    """(issuer, serial) pairs from the CRL: live sessions with these are cut."""
    certificate: x509.Certificate | None
    crl_this_update: dt.datetime | None
    crl_next_update: dt.datetime | None
    files: tuple[Path, ...]
    """The files behind this material, watched for changes."""
    loaded_at: float = field(default_factory=time.time)

    def certificate_facts(self) -> dict[str, Any]:
        cert = self.certificate
        if cert is None:
            return {}
        left = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds()
        return {"subject": cert.subject.rfc4514_string(), "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "days_left": round(left / 86400, 3)}


def _certificates(path: Path | None) -> list[x509.Certificate]:
    if path is None:
        return []
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise ReloadError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ReloadError(f"{path} is not a valid PEM certificate file") from exc


def _check_crl(crl_path: Path, issuers: list[x509.Certificate],
               now: dt.datetime) -> tuple[x509.CertificateRevocationList, frozenset[tuple[str, int]]]:
    try:
        crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    except OSError as exc:
        raise ReloadError(f"cannot read the CRL {crl_path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ReloadError(f"{crl_path} is not a valid PEM CRL") from exc
    issuer = next((c for c in issuers if c.subject == crl.issuer), None)
    if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise ReloadError(f"the CRL {crl_path} is not signed by this CA "
                          f"(it names {crl.issuer.rfc4514_string()})")
    if crl.next_update_utc is not None and crl.next_update_utc < now:
        raise ReloadError(f"the CRL {crl_path} expired on {crl.next_update_utc:%Y-%m-%d %H:%M} UTC; "
                          "every client would be refused",
                          hint="regenerate it with `trustwire ca crl`")
    name = crl.issuer.rfc4514_string()
    return crl, frozenset((name, entry.serial_number) for entry in crl)


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


def build_material(tls: ServerTLS | ClientTLS, policy: Callable[[], Policy],
                   extra_files: tuple[Path, ...] = ()) -> Material:
    """Read and validate everything; raises ReloadError (never a half-built context)."""
    now = dt.datetime.now(dt.UTC)
    try:
        context = tls.context()
        new_policy = policy()
    except TrustwireError as exc:
        raise ReloadError(exc.message, hint=exc.hint) from exc
    chain = _certificates(tls.cert)
    if isinstance(tls, ServerTLS):
        _verify_server_chain(tls)
    revoked: frozenset[tuple[str, int]] = frozenset()
    this_update = next_update = None
    if tls.crl is not None:
        crl, revoked = _check_crl(tls.crl, chain + _certificates(tls.ca), now)
        this_update, next_update = crl.last_update_utc, crl.next_update_utc
    files = tuple(p for p in (tls.cert, tls.key, tls.ca, tls.crl, *extra_files) if p is not None)
    return Material(context=context, policy=new_policy, revoked=revoked,
                    certificate=chain[0] if chain else None, crl_this_update=this_update,
                    crl_next_update=next_update, files=files)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Watcher:
    """Poll files and call ``reload`` when any of them changed (and settled).

    Args:
        files: what to watch (re-read from ``current()`` after each reload).
        reload: called with a reason; returns True on success.
        interval: seconds between polls.
    """

    def __init__(self, current: Callable[[], tuple[Path, ...]], reload: Callable[[str], bool],
                 interval: float) -> None:
        self._current = current
        self._reload = reload
        self.interval = interval
        self._stamps = self._snapshot()
        self._task: asyncio.Task[None] | None = None

    def _snapshot(self) -> dict[Path, tuple[int, int, int] | None]:
        return {path: _stamp(path) for path in self._current()}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def mark(self) -> None:
        """Remember the files as they are now (after a reload from any trigger)."""
        self._stamps = self._snapshot()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = self._snapshot()
            if now == self._stamps:
                continue
            changed = [p.name for p in now if now[p] != self._stamps.get(p)]
            # Writers replace several files in turn: wait for them to settle first.
            await asyncio.sleep(min(0.2, self.interval))
            self._reload(f"changed on disk: {', '.join(changed)}")
            self.mark()
