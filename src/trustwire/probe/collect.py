"""Collect facts about a TLS endpoint: the probe's IO half.

Theory of operation: every question is one or more TLS handshakes, each with a
purpose-built client context (one version, one cipher suite, one group, one
client certificate...). ``SSLContext._msg_callback`` records the handshake
messages so :mod:`trustwire.probe.messages` can read what the server chose
*from its ServerHello*: an mTLS server that then refuses our anonymous client
has still told us which versions, suites and groups it accepts.

Handshakes run in a bounded thread pool (OpenSSL releases the GIL while it
works), each with its own timeout, so a local endpoint is probed in about a
second and a stalled one costs a few timeouts, not minutes. A first handshake
checks that the target answers TLS at all; if not, the probe stops there
(exit 2) instead of timing out a hundred times.

Nothing here judges: :mod:`trustwire.probe.checks` turns :class:`Observations`
into verdicts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import functools
import http.client
import socket
import ssl
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustwire.errors import ConfigError, Unreachable
from trustwire.pki.ca import Authority, CertKind, create_root
from trustwire.pki.keys import KeyType, load_private_key, public_keys_match, signing_hash
from trustwire.pki.names import SubjectAltNames
from trustwire.probe.messages import HandshakeLog, ServerHello
from trustwire.tls import native
from trustwire.tls.diagnose import Diagnosis, diagnose

__all__ = ["Attempt", "Observations", "ProbeOptions", "ProbeTarget", "Unreachable", "collect"]

VERSIONS = [("TLSv1", "TLSv1"), ("TLSv1.1", "TLSv1_1"), ("TLSv1.2", "TLSv1_2"),
            ("TLSv1.3", "TLSv1_3")]
TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"]
# OpenSSL spelling -> canonical name (as in messages.GROUP_NAMES)
GROUPS = {"X25519MLKEM768": "X25519MLKEM768", "X25519": "x25519", "X448": "x448",
          "P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1",
          "ffdhe2048": "ffdhe2048", "ffdhe3072": "ffdhe3072", "ffdhe4096": "ffdhe4096",
          "ffdhe6144": "ffdhe6144", "ffdhe8192": "ffdhe8192"}
EC_GROUPS = {"X25519", "X448", "P-256", "P-384", "P-521"}
ALL_LEGACY = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"


@dataclass(frozen=True)
class ProbeTarget:
    """``HOST:PORT`` or ``https://host[:port]/path``."""

    host: str
    port: int
    server_name: str
    https: bool
    path: str = "/"

    @classmethod
    def parse(cls, text: str, server_name: str | None = None) -> ProbeTarget:
        """Raises ConfigError for anything else."""
        value = text.strip()
        if "://" in value:
            url = urllib.parse.urlsplit(value)
            if url.scheme != "https" or not url.hostname:
                raise ConfigError(f"{text!r}: give HOST:PORT or an https:// URL")
            try:
                port = url.port or 443
            except ValueError:
                raise ConfigError(f"{text!r} has an invalid port") from None
            return cls(host=url.hostname, port=port, server_name=server_name or url.hostname,
                       https=True, path=(url.path or "/") + (f"?{url.query}" if url.query else ""))
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = value.rpartition(":")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"{text!r}: give HOST:PORT or an https:// URL")
        return cls(host=host, port=int(port_text), server_name=server_name or host, https=False)

    def describe(self) -> str:
        if self.https:
            return f"https://{self.host}:{self.port}{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class ProbeOptions:
    ca: Path | None = None
    """Trust anchor for the server's chain (default: the system store)."""
    cert: Path | None = None
    key: Path | None = None
    """Our own client identity, to check the server accepts it."""
    ca_key: Path | None = None
    """The key of the CA in ``ca``: lets the audit mint expired/revoked certificates the
    server should know to refuse."""
    crl: Path | None = None
    """The CRL the server checks (gives the audit a revoked serial to present)."""
    timeout: float = 5.0
    concurrency: int = 16
    check_redirect: bool = False
    http_port: int = 80


@dataclass
class Attempt:
    """One handshake and what came of it."""

    connected: bool = False
    connect_error: str | None = None
    log: HandshakeLog = field(default_factory=HandshakeLog)
    completed: bool = False
    """Our side finished the handshake."""
    refused: bool = False
    """The server ended it with an alert or a close before serving data."""
    timed_out: bool = False
    error: str | None = None
    diagnosis: Diagnosis | None = None
    served: bytes = b""
    version: str | None = None
    cipher: str | None = None

    @property
    def hello(self) -> ServerHello | None:
        return self.log.server_hello()

    @property
    def accepted(self) -> bool:
        """Completed and not refused: the server let this client in."""
        return self.completed and not self.refused


@dataclass
class Support:
    accepted: bool | None
    """None: could not be tested."""
    note: str | None = None


@dataclass
class EnforcementCase:
    case: str
    refused: bool | None
    detail: str


@dataclass
class Observations:
    """Everything collected about one endpoint."""

    target: ProbeTarget
    started: dt.datetime
    duration: float = 0.0
    versions: dict[str, Support] = field(default_factory=dict)
    ciphers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    server_order: bool | None = None
    groups: dict[str, Support] = field(default_factory=dict)
    chain: list[x509.Certificate] = field(default_factory=list)
    trusted: bool | None = None
    trust_error: str | None = None
    ocsp_stapled: bool | None = None
    client_auth_requested: bool | None = None
    client_auth_required: bool | None = None
    our_certificate_accepted: bool | None = None
    enforcement: list[EnforcementCase] = field(default_factory=list)
    http_status: int | None = None
    http_headers: dict[str, str] = field(default_factory=dict)
    http_verified: bool | None = None
    http_error: str | None = None
    redirect: tuple[int | None, str | None] | None = None
    untested: list[tuple[str, str]] = field(default_factory=list)


def _record(conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
            data: bytes) -> None:
    log = getattr(conn, "_trustwire_log", None)
    if log is not None:
        log.record(direction, int(content_type), int(msg_type), data)


def _context(
    *, minimum: str | None = None, maximum: str | None = None, ciphers: str | None = None,
    suites: str | None = None, groups: str | None = None, ca: Path | None = None,
    verify: bool = False, cert: tuple[Path, Path] | None = None, ocsp: bool = False,
) -> ssl.SSLContext:
    """A client context for one question. Raises ValueError when the local OpenSSL cannot."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is why we test them
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum:
            ctx.minimum_version = getattr(ssl.TLSVersion, minimum)
        if maximum:
            ctx.maximum_version = getattr(ssl.TLSVersion, maximum)
    if ciphers is not None:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise ValueError(f"the local OpenSSL cannot offer {ciphers}") from exc
    if suites is not None and not native.set_ciphersuites(ctx, suites):
        raise ValueError(f"cannot offer only {suites} from Python here")
    if groups is not None and not native.set_groups(ctx, groups):
        raise ValueError(f"the local OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer {groups}")
    if ocsp:
        native.request_ocsp(ctx)
    if verify:
        if ca is not None:
            ctx.load_verify_locations(cafile=str(ca))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False  # the probe checks names itself, to report them separately
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    ctx._msg_callback = _record  # type: ignore[attr-defined]
    return ctx


def attempt(target: ProbeTarget, ctx: ssl.SSLContext, *, timeout: float, verdict: bool = False,
            send: bytes | None = None) -> Attempt:
    """One handshake. With ``verdict``, wait for the server's decision on our certificate
    (TLS 1.3 refuses after the handshake): a ticket or data means accepted, an alert or
    a close before any data means refused."""
    result = Attempt()
    try:
        raw = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        result.connect_error = exc.strerror or str(exc)
        if isinstance(exc, socket.gaierror):
            result.connect_error = f"cannot resolve {target.host}: {exc.strerror}"
        return result
    result.connected = True
    sni = target.server_name if not _is_ip(target.server_name) else None
    tls = ctx.wrap_socket(raw, server_hostname=sni, do_handshake_on_connect=False,
                          suppress_ragged_eofs=False)
    tls._trustwire_log = result.log  # type: ignore[attr-defined]
    try:
        tls.do_handshake()
        result.completed = True
        result.version = tls.version()
        cipher = tls.cipher()
        result.cipher = cipher[0] if cipher else None
        if verdict:
            _await_verdict(tls, result, timeout, send)
    except TimeoutError:
        result.timed_out = True
        result.error = "timeout"
    except (ssl.SSLError, OSError) as exc:
        result.refused = True
        result.error = str(getattr(exc, "reason", None) or exc)
        result.diagnosis = diagnose(exc, role="client")
    finally:
        tls._trustwire_log = None  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            tls.close()
    return result


def _await_verdict(tls: ssl.SSLSocket, result: Attempt, timeout: float, send: bytes | None) -> None:
    if send is not None:
        tls.sendall(send)
    deadline = time.monotonic() + timeout
    grace_until: float | None = None
    while time.monotonic() < deadline:
        wait = max(0.01, min(deadline, grace_until or deadline) - time.monotonic())
        tls.settimeout(wait)
        try:
            data = tls.recv(65536)
        except TimeoutError:
            if grace_until is not None or result.version != "TLSv1.3" or send is None:
                return  # no refusal arrived: the server let us in
            continue
        except ssl.SSLEOFError:
            result.refused = not result.served
            return
        if not data:
            result.refused = not result.served
            return
        result.served += data
        if len(result.served) > 16384 or (send is not None and b"\r\n\r\n" in result.served):
            return
        if result.log.ticket_received and grace_until is None:
            grace_until = time.monotonic() + 0.3
    if not result.served and not result.log.ticket_received and result.version == "TLSv1.3":
        result.refused = False  # silence is not refusal: no ticket, no alert, no close


def _is_ip(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return False
    return True


def _legacy_ciphers() -> list[dict[str, Any]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(ALL_LEGACY)
    return [dict(c) for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


class _Runner:
    def __init__(self, target: ProbeTarget, options: ProbeOptions,
                 progress: Callable[[int], None] | None) -> None:
        self.target = target
        self.options = options
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=options.concurrency)
        self.progress = progress or (lambda n: None)

    def run(self, jobs: list[tuple[Any, Callable[[], Attempt]]]) -> list[tuple[Any, Attempt]]:
        futures = {self.pool.submit(fn): key for key, fn in jobs}
        results = []
        for future in concurrent.futures.as_completed(futures):
            results.append((futures[future], future.result()))
            self.progress(1)
        return results

    def one(self, ctx: ssl.SSLContext, **kwargs: Any) -> Attempt:
        return attempt(self.target, ctx, timeout=self.options.timeout, **kwargs)


def collect(target: ProbeTarget, options: ProbeOptions,
            progress: Callable[[int], None] | None = None) -> Observations:
    """Probe ``target``. Raises Unreachable when it cannot be probed at all."""
    started = time.monotonic()
    obs = Observations(target=target, started=dt.datetime.now(dt.UTC))
    runner = _Runner(target, options, progress)
    try:
        _baseline(runner)
        _versions(runner, obs)
        _ciphers(runner, obs)
        _groups(runner, obs)
        _certificate(runner, obs)
        _client_auth(runner, obs)
        if target.https:
            _http(runner, obs)
    finally:
        runner.pool.shutdown(wait=False, cancel_futures=True)
    obs.duration = time.monotonic() - started
    return obs


def _baseline(runner: _Runner) -> None:
    result = runner.one(_context())
    runner.progress(1)
    where = runner.target.describe()
    if not result.connected:
        raise Unreachable(f"cannot connect to {where}: {result.connect_error}",
                          hint="check the address and that the service is running")
    if result.hello is not None:
        return
    if result.timed_out:
        raise Unreachable(f"{where} did not answer the TLS handshake within "
                          f"{runner.options.timeout:g} seconds",
                          hint="is it a TLS service? raise --timeout for slow links")
    if result.diagnosis is not None and result.diagnosis.reason == "not-tls":
        raise Unreachable(f"{where} does not speak TLS (it answered with something else)",
                          hint="point the probe at the TLS port")
    raise Unreachable(f"{where} closed the connection without a TLS answer "
                      f"({result.error or 'no reason given'})")


def _versions(runner: _Runner, obs: Observations) -> None:
    obs.versions["SSLv3"] = Support(None, f"the local OpenSSL ({ssl.OPENSSL_VERSION}) was built "
                                           "without SSL 3.0, so it cannot offer it")
    obs.untested.append(("SSL 3.0", obs.versions["SSLv3"].note or ""))
    jobs: list[tuple[Any, Callable[[], Attempt]]] = []
    for name, attr in VERSIONS:
        try:
            ctx = _context(minimum=attr, maximum=attr,
                           ciphers=ALL_LEGACY if name != "TLSv1.3" else None)
        except ValueError as exc:
            obs.versions[name] = Support(None, str(exc))
            continue
        jobs.append((name, functools.partial(runner.one, ctx)))
    for name, result in runner.run(jobs):
        hello = result.hello
        obs.versions[name] = Support(bool(hello and hello.version == name and not hello.retry))


def _accepted_versions(obs: Observations) -> list[str]:
    return [v for v, s in obs.versions.items() if s.accepted]


def _ciphers(runner: _Runner, obs: Observations) -> None:
    candidates = _legacy_ciphers()
    by_id = {c["id"] & 0xFFFF: c for c in candidates}
    jobs: list[tuple[Any, Callable[[], Attempt]]] = []
    for version in _accepted_versions(obs):
        attr = dict(VERSIONS)[version]
        if version == "TLSv1.3":
            for suite in TLS13_SUITES:
                try:
                    ctx = _context(minimum=attr, maximum=attr, suites=suite)
                except ValueError as exc:
                    obs.untested.append((f"TLS 1.3 suite {suite}", str(exc)))
                    continue
                jobs.append(((version, suite), functools.partial(runner.one, ctx)))
            continue
        for cipher in candidates:
            ctx = _context(minimum=attr, maximum=attr, ciphers=f"{cipher['name']}:@SECLEVEL=0")
            jobs.append(((version, cipher["name"]), functools.partial(runner.one, ctx)))
    accepted: dict[str, list[dict[str, Any]]] = {}
    suite_ids = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
                 0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256",
                 0x1305: "TLS_AES_128_CCM_8_SHA256"}
    for (version, name), result in runner.run(jobs):
        hello = result.hello
        if hello is None or hello.retry or hello.version != version:
            continue
        chosen = suite_ids.get(hello.cipher_id) or by_id.get(hello.cipher_id, {}).get("name")
        if chosen != name:
            continue
        info = by_id.get(hello.cipher_id, {"name": name, "kea": "any", "auth": "any",
                                           "symmetric": name.lower(), "aead": True,
                                           "digest": None})
        accepted.setdefault(version, []).append(
            {k: info.get(k) for k in ("name", "kea", "auth", "symmetric", "aead", "digest")}
            | {"name": name})
    for suites in accepted.values():
        suites.sort(key=lambda c: str(c["name"]))
    obs.ciphers = accepted
    offered = {c["name"] for c in candidates}
    missing = [label for label, needle in (("RC4", "RC4"), ("EXPORT", "EXP"), ("NULL", "NULL"),
                                            ("3DES", "DES-CBC3"))
               if not any(needle in name for name in offered)]
    if missing:
        obs.untested.append((f"{', '.join(missing)} cipher suites",
                             f"the local OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer them"))
    _server_order(runner, obs)


def _server_order(runner: _Runner, obs: Observations) -> None:
    tls12 = [c["name"] for c in obs.ciphers.get("TLSv1.2", [])]
    if len(tls12) < 2:
        return
    first, second = tls12[0], tls12[-1]
    jobs: list[tuple[Any, Callable[[], Attempt]]] = [
        (order, functools.partial(runner.one, _context(
            minimum="TLSv1_2", maximum="TLSv1_2", ciphers=":".join(order) + ":@SECLEVEL=0")))
        for order in ((first, second), (second, first))]
    chosen = {}
    for order, result in runner.run(jobs):
        hello = result.hello
        chosen[order] = hello.cipher_id if hello else None
    values = list(chosen.values())
    if None not in values:
        obs.server_order = values[0] == values[1]


def _groups(runner: _Runner, obs: Observations) -> None:
    versions = _accepted_versions(obs)
    version = "TLSv1.3" if "TLSv1.3" in versions else ("TLSv1.2" if "TLSv1.2" in versions else None)
    if version is None:
        return
    attr = dict(VERSIONS)[version]
    jobs: list[tuple[Any, Callable[[], Attempt]]] = []
    for group, canonical in GROUPS.items():
        if version == "TLSv1.2" and group not in EC_GROUPS:
            continue
        try:
            ctx = _context(minimum=attr, maximum=attr, groups=group,
                           ciphers=ALL_LEGACY if version == "TLSv1.2" else None)
        except ValueError as exc:
            obs.groups[canonical] = Support(None, str(exc))
            obs.untested.append((f"key exchange group {group}", str(exc)))
            continue
        jobs.append((canonical, functools.partial(runner.one, ctx)))
    for canonical, result in runner.run(jobs):
        hello = result.hello
        chosen = result.log.group()
        obs.groups[canonical] = Support(bool(hello and not hello.retry and chosen == canonical))


def _certificate(runner: _Runner, obs: Observations) -> None:
    jobs: list[tuple[Any, Callable[[], Attempt]]] = [
        ("chain", lambda: runner.one(_context(ocsp=True))),
        ("verify", lambda: runner.one(_context(verify=True, ca=runner.options.ca))),
    ]
    results = dict(runner.run(jobs))
    chain_der, ocsp = results["chain"].log.chain_and_ocsp()
    obs.chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    obs.ocsp_stapled = (ocsp is not None) if native.available() else None
    if obs.ocsp_stapled is None:
        obs.untested.append(("OCSP stapling", "this Python cannot ask for a stapled response"))
    verify = results["verify"]
    if verify.diagnosis is not None and verify.error == "CERTIFICATE_VERIFY_FAILED":
        obs.trusted = False
        obs.trust_error = verify.diagnosis.why
    elif verify.log.first(11) is not None:  # the chain arrived and verification did not object
        obs.trusted = True
    obs.client_auth_requested = results["chain"].log.certificate_requested or (
        verify.log.certificate_requested)


# -- client authentication ----------------------------------------------------------------------

def _http_request(target: ProbeTarget) -> bytes:
    return (f"GET {target.path} HTTP/1.1\r\nHost: {target.server_name}\r\n"
            "User-Agent: trustwire-probe\r\nConnection: close\r\n\r\n").encode()


def _client_auth(runner: _Runner, obs: Observations) -> None:
    target, options = runner.target, runner.options
    send = _http_request(target) if target.https else None
    with tempfile.TemporaryDirectory(prefix="trustwire-probe-") as tmp:
        identities = _bad_identities(Path(tmp), options, obs)
        jobs: list[tuple[Any, Callable[[], Attempt]]] = [
            ("no certificate", lambda: runner.one(_context(), verdict=True, send=send)),
        ]
        for case, pair in identities.items():
            jobs.append((case, functools.partial(runner.one, _context(cert=pair), verdict=True,
                                                 send=send)))
        if options.cert is not None and options.key is not None:
            jobs.append(("ours", functools.partial(
                runner.one, _context(cert=(options.cert, options.key)), verdict=True, send=send)))
        results = dict(runner.run(jobs))
    anonymous = results.pop("no certificate")
    obs.client_auth_requested = bool(obs.client_auth_requested or anonymous.log.certificate_requested)
    obs.client_auth_required = anonymous.refused
    if "ours" in results:
        ours = results.pop("ours")
        obs.our_certificate_accepted = ours.accepted
    if not obs.client_auth_requested:
        return  # nothing to enforce: the server never asks for certificates
    order = ["no certificate", *identities]
    outcomes = {"no certificate": anonymous, **results}
    for case in order:
        result = outcomes[case]
        if case == "a valid certificate from your CA":
            detail = "accepted, as it should be" if result.accepted else (
                f"refused ({result.error or 'closed'}): the audit's other results may be "
                "refusals for other reasons")
        elif result.refused:
            detail = f"refused ({result.diagnosis.reason if result.diagnosis else 'closed'})"
        elif result.completed:
            detail = "got in: the server completed the handshake" + (
                " and served data" if result.served else "")
        else:
            detail = f"no verdict ({result.error or 'timeout'})"
        refused = result.refused if (result.completed or result.refused) else None
        obs.enforcement.append(EnforcementCase(case=case, refused=refused, detail=detail))


def _bad_identities(tmp: Path, options: ProbeOptions, obs: Observations) -> dict[str, tuple[Path, Path]]:
    """Certificates the server must refuse, made on the fly (plus, with --ca-key, a good one)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stranger = create_root(name="trustwire probe: unknown CA", lifetime=dt.timedelta(days=3650))
    made: dict[str, tuple[Any, Any]] = {}
    self_signed = create_root(name="trustwire probe: self-signed", lifetime=dt.timedelta(days=30))
    made["a self-signed certificate"] = (self_signed.cert, self_signed.key)
    unknown = stranger.issue("probe-unknown-ca", kind=CertKind.CLIENT)
    made["a certificate from an unknown CA"] = (unknown.cert, unknown.private_key)
    expired = stranger.issue("probe-expired", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=1),
                             now=now - dt.timedelta(days=30))
    made["an expired certificate (unknown CA)"] = (expired.cert, expired.private_key)
    no_eku = stranger.issue("probe-no-client-eku", kind=CertKind.SERVER,
                            sans=SubjectAltNames.parse(dns=["probe.invalid"]))
    made["a certificate without clientAuth (unknown CA)"] = (no_eku.cert, no_eku.private_key)
    authority = _own_authority(options)
    if authority is not None:
        good = authority.issue("probe-good", kind=CertKind.CLIENT)
        made["a valid certificate from your CA"] = (good.cert, good.private_key)
        old = authority.issue("probe-expired", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=1),
                              now=now - dt.timedelta(days=30))
        made["an expired certificate from your CA"] = (old.cert, old.private_key)
        wrong = authority.issue("probe-no-client-eku", kind=CertKind.SERVER,
                                sans=SubjectAltNames.parse(dns=["probe.invalid"]))
        made["a certificate without clientAuth from your CA"] = (wrong.cert, wrong.private_key)
        revoked = _revoked_identity(authority, options, obs)
        if revoked is not None:
            made["a revoked certificate from your CA"] = revoked
    else:
        obs.untested.append(("expired and revoked certificates from the server's own CA",
                             "pass --ca and --ca-key (and --crl) to mint them"))
    paths = {}
    for index, (case, (cert, key)) in enumerate(made.items()):
        certfile, keyfile = tmp / f"{index}.crt", tmp / f"{index}.key"
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        keyfile.chmod(0o600)
        paths[case] = (certfile, keyfile)
    return paths


def _own_authority(options: ProbeOptions) -> Authority | None:
    if options.ca_key is None:
        return None
    if options.ca is None:
        raise ConfigError("--ca-key needs --ca: the CA certificate that key belongs to")
    try:
        cert = x509.load_pem_x509_certificates(options.ca.read_bytes())[0]
        key = load_private_key(options.ca_key.read_bytes(), source=str(options.ca_key))
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    if not public_keys_match(cert.public_key(), key.public_key()):
        raise ConfigError(f"{options.ca_key} is not the key of {options.ca}")
    return Authority(cert=cert, key=key, parents=())


def _revoked_identity(authority: Authority, options: ProbeOptions,
                      obs: Observations) -> tuple[Any, Any] | None:
    """A certificate reusing a serial the server's CRL lists: the server must refuse it."""
    if options.crl is None:
        obs.untested.append(("a revoked certificate", "pass --crl with the CRL the server checks"))
        return None
    crl = x509.load_pem_x509_crl(options.crl.read_bytes())
    serials = [entry.serial_number for entry in crl]
    if not serials:
        obs.untested.append(("a revoked certificate", "the CRL lists no revoked serial"))
        return None
    key = KeyType.ECDSA_P256.generate()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "probe-revoked")]))
            .issuer_name(authority.cert.subject).public_key(key.public_key())
            .serial_number(serials[0])
            .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
            .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                authority.key.public_key()), critical=False)
            .sign(authority.key, signing_hash(authority.key)))  # type: ignore[arg-type]
    return cert, key


# -- HTTP ---------------------------------------------------------------------------------------

def _http(runner: _Runner, obs: Observations) -> None:
    target, options = runner.target, runner.options
    cert = (str(options.cert), str(options.key)) if options.cert and options.key else None
    for verified in (True, False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verified:
            if options.ca:
                ctx.load_verify_locations(cafile=str(options.ca))
            else:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*cert)
        connection = http.client.HTTPSConnection(target.host, target.port, context=ctx,
                                                 timeout=options.timeout)
        try:
            connection.request("GET", target.path, headers={"Host": target.server_name,
                                                            "User-Agent": "trustwire-probe"})
            response = connection.getresponse()
            obs.http_status = response.status
            obs.http_headers = {k.lower(): v for k, v in response.getheaders()}
            obs.http_verified = verified
            response.read(65536)
            break
        except ssl.SSLCertVerificationError:
            continue  # read the headers anyway, over an unverified connection, and say so
        except (OSError, http.client.HTTPException) as exc:
            obs.http_error = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            break
        finally:
            connection.close()
        runner.progress(1)
    if options.check_redirect:
        plain = http.client.HTTPConnection(target.host, options.http_port, timeout=options.timeout)
        try:
            plain.request("GET", target.path, headers={"Host": target.server_name})
            response = plain.getresponse()
            obs.redirect = (response.status, response.getheader("Location"))
        except (OSError, http.client.HTTPException) as exc:
            obs.redirect = (None, f"cannot reach http://{target.host}:{options.http_port}: {exc}")
        finally:
            plain.close()

