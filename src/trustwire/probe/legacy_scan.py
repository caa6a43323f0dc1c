"""Ask with hand-built hellos what the local OpenSSL cannot: the probe's legacy IO.

Theory of operation: OpenSSL 3 cannot offer SSL 2.0, SSL 3.0, RC4, DES, 3DES, EXPORT or static
(EC)DH, nor DEFLATE, so :func:`scan_legacy` writes those ClientHellos itself
(:mod:`trustwire.probe.hello`) and reads only the server's first answer
(:mod:`trustwire.probe.raw`): a ServerHello says what the server chose, an alert or a close
that it refused. No handshake is ever finished, so none of these suites needs an
implementation here. Each question is a task in the :class:`~trustwire.probe.attempt.Runner`'s
pool, all of them in one concurrent wave:

- SSL 2.0: one CLIENT-HELLO with every SSL 2.0 cipher spec; a SERVER-HELLO lists the server's;
- SSL 3.0 and TLS 1.0-1.2: every candidate suite in one hello; the server picks one, which is
  removed, and the next hello offers the rest, until the server refuses: one handshake per
  accepted suite plus one, so a server that refuses them all costs one per version. For SSL
  3.0 the candidates are every suite SSL 3.0 can carry; for TLS, only the suites
  :mod:`trustwire.probe.tls_scan` could not offer (compared by IANA id);
- one TLS <= 1.2 hello offering DEFLATE, extended_master_secret and renegotiation_info;
- when the server speaks two versions, a hello at the lower one carrying TLS_FALLBACK_SCSV.

The last two depend on the versions :func:`~trustwire.probe.tls_scan.scan_versions` found;
when only the legacy answers reveal a second version (a server whose SSL 3.0 or RC4-only TLS
1.0 OpenSSL cannot see), they run in a second wave. Every read is bounded by the probe's
timeout (:class:`~trustwire.probe.raw.RawConnection`). The answers are folded into
``Observations.versions`` and ``ciphers`` so the usual checks judge them.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trustwire.probe.attempt import STALLED, Runner
from trustwire.probe.connect import ConnectFailed, sni_for
from trustwire.probe.hello import HelloSpec, ServerFlight, client_hello, sslv2_client_hello
from trustwire.probe.legacy import LegacyFacts, Outcome, Reply, read_reply
from trustwire.probe.legacy_suites import LEGACY_SUITES, SSLV2_CIPHERS, SSLV2_SPECS, suite_by_id
from trustwire.probe.observations import Observations, Support
from trustwire.probe.raw import RawConnection
from trustwire.probe.tls_scan import _legacy_ciphers

__all__ = ["scan_legacy"]

FALLBACK_SCSV, EMPTY_RENEGOTIATION_INFO_SCSV = 0x5600, 0x00FF
_VERSIONS = {"SSLv3": 0x0300, "TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303}
_ORDER = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_LABEL = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2"}
_CIPHER_KEYS = ("name", "kea", "auth", "symmetric", "aead", "digest")


@dataclass(frozen=True)
class _Enumeration:
    version: str
    first: Reply
    chosen: list[int]
    handshakes: int


@dataclass
class _Local:
    """The suites the local OpenSSL offers, by IANA id, as tls_scan files them."""

    ciphers: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> _Local:
        return cls({c["id"] & 0xFFFF: c for c in _legacy_ciphers()})

    def ids(self, version: str) -> list[int]:
        """The local suites a ``version`` hello may offer (no TLS 1.2-only ones below 1.2)."""
        return [i for i, c in self.ciphers.items()
                if version == "TLSv1.2" or c["protocol"] != "TLSv1.2"]


def _legacy_ids(version: str, local: _Local) -> list[int]:
    return [s.id for s in LEGACY_SUITES if s.id not in local.ciphers
            and (version == "TLSv1.2" or not s.tls12_only)]


def _exchange(runner: Runner, hello: bytes) -> Reply:
    """Send one hello, read up to the server's first answer; the connection is then closed."""
    if runner.stalled:  # it would not be answered: do not wait out the timeout
        return Reply(outcome=Outcome.UNREACHABLE, detail=STALLED)
    try:
        conn = RawConnection(runner.target, runner.options.timeout)
    except ConnectFailed as exc:
        return Reply(outcome=Outcome.UNREACHABLE, detail=exc.reason)
    with conn:
        if conn.send(hello):
            conn.read_until(_answered)
    return read_reply(conn.flight, closed=conn.closed, timed_out=conn.timed_out)


def _answered(flight: ServerFlight) -> bool:
    return flight.server_hello is not None or flight.hello_done


def _spec(runner: Runner, version: str, ciphers: list[int], **extra: Any) -> bytes:
    suites = tuple(ciphers) + ((EMPTY_RENEGOTIATION_INFO_SCSV,) if version == "SSLv3" else ())
    return client_hello(HelloSpec(version=_VERSIONS[version], ciphers=suites,
                                  server_name=sni_for(runner.target), **extra))


def _ask(runner: Runner, version: str, ciphers: list[int], **extra: Any) -> Reply:
    return _exchange(runner, _spec(runner, version, ciphers, **extra))


def _enumerate(runner: Runner, version: str, candidates: list[int]) -> _Enumeration:
    """Offer all ``candidates``, drop the one the server picks, again until it refuses."""
    remaining = list(candidates)
    chosen: list[int] = []
    first: Reply | None = None
    handshakes = 0
    while remaining:  # bounded: every round removes a suite or ends
        reply = _ask(runner, version, remaining)
        handshakes += 1
        first = first or reply
        pick = reply.chose(_VERSIONS[version], remaining)
        if pick is None:
            break
        chosen.append(pick)
        remaining.remove(pick)
    return _Enumeration(version, first or Reply(outcome=Outcome.CLOSED), chosen, handshakes)


def _accepted(obs: Observations, facts: LegacyFacts) -> list[str]:
    """The versions known to be accepted, oldest first (SSL 2.0 has no place in a fallback)."""
    found = {v for v, s in obs.versions.items() if s.accepted}
    found |= {v for v, ids in facts.suites.items() if ids}
    return [v for v in _ORDER[1:] if v in found]


def _fallback_plan(versions: list[str]) -> tuple[str, str] | None:
    """(the version to offer with TLS_FALLBACK_SCSV, the highest); None with fewer than two."""
    return (versions[-2], versions[-1]) if len(versions) >= 2 else None


def _features_version(versions: list[str]) -> str | None:
    """The newest TLS <= 1.2 version accepted (TLS 1.2 when it can)."""
    candidates = [v for v in versions if v in ("TLSv1", "TLSv1.1", "TLSv1.2")]
    return candidates[-1] if candidates else None


class _Wave:
    """Tasks in the runner's pool, each returning a result and its number of handshakes."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.futures: dict[concurrent.futures.Future[Any], str] = {}

    def submit(self, key: str, task: Callable[[], Any]) -> None:
        self.futures[self.runner.pool.submit(task)] = key

    def results(self) -> list[tuple[str, Any]]:
        done = []
        for future in concurrent.futures.as_completed(self.futures):
            result = future.result()
            count = result.handshakes if isinstance(result, _Enumeration) else 1
            self.runner.progress(count)
            done.append((self.futures[future], result))
        return done


def scan_legacy(runner: Runner, obs: Observations) -> None:
    """SSL 2.0/3.0, the suites OpenSSL 3 lacks, compression, EMS, renegotiation_info and
    TLS_FALLBACK_SCSV, by hand-built hellos. Needs :func:`~trustwire.probe.tls_scan.scan_ciphers`
    first (it folds into what that found)."""
    local = _Local.load()
    facts = LegacyFacts()
    runner_versions = _accepted(obs, facts)
    wave = _Wave(runner)
    specs = tuple(c.spec for c in SSLV2_CIPHERS)
    wave.submit("SSLv2", functools.partial(_exchange, runner, sslv2_client_hello(specs)))
    sslv3 = local.ids("SSLv3") + _legacy_ids("SSLv3", local)
    wave.submit("enumerate", functools.partial(_enumerate, runner, "SSLv3", sslv3))
    for version in ("TLSv1", "TLSv1.1", "TLSv1.2"):
        candidates = _legacy_ids(version, local)
        wave.submit("enumerate", functools.partial(_enumerate, runner, version, candidates))
    planned = _submit_dependent(wave, runner, local, facts, runner_versions)
    _collect(wave, facts)
    versions = _accepted(obs, facts)
    if versions != runner_versions:  # the legacy answers revealed more versions
        second = _Wave(runner)
        _submit_dependent(second, runner, local, facts, versions, skip=planned)
        _collect(second, facts)
    _fold(obs, facts, local)
    facts.versions_unknown = [v for v in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
                              if obs.versions.get(v) is not None and obs.versions[v].accepted is None]
    obs.legacy = facts


def _submit_dependent(wave: _Wave, runner: Runner, local: _Local, facts: LegacyFacts,
                      versions: list[str], skip: set[str] | None = None) -> set[str]:
    """Submit the fallback and features hellos that ``versions`` make possible."""
    planned: set[str] = set()
    fallback = _fallback_plan(versions)
    if fallback is not None and "fallback" not in (skip or set()):
        facts.fallback_versions = fallback
        offered = fallback[0]
        ciphers = [*local.ids(offered), *_legacy_ids(offered, local), FALLBACK_SCSV]
        wave.submit("fallback", functools.partial(_ask, runner, offered, ciphers))
        planned.add("fallback")
    version = _features_version(versions)
    if version is not None and "features" not in (skip or set()):
        facts.features_version = version
        wave.submit("features", functools.partial(
            _ask, runner, version, local.ids(version) + _legacy_ids(version, local),
            compression=(1, 0)))
        planned.add("features")
    return planned


def _collect(wave: _Wave, facts: LegacyFacts) -> None:
    for key, result in wave.results():
        if isinstance(result, _Enumeration):
            facts.handshakes += result.handshakes
            if result.version == "SSLv3":
                facts.sslv3 = result.first
            if result.chosen:
                facts.suites[result.version] = result.chosen
            elif not result.first.outcome.answered and result.version != "SSLv3":
                facts.unanswered.append(result.version)
            continue
        facts.handshakes += 1
        if key == "SSLv2":
            facts.sslv2 = result
        elif key == "fallback":
            facts.fallback = result
        else:
            facts.features = result


def _fold(obs: Observations, facts: LegacyFacts, local: _Local) -> None:
    """Put what the hellos found where the protocol and cipher checks look."""
    sslv2 = facts.sslv2
    obs.versions["SSLv2"] = _support("SSL 2.0", sslv2, obs,
                                     sslv2 is not None and sslv2.version == 0x0002)
    sslv3 = facts.sslv3
    obs.versions["SSLv3"] = _support("SSL 3.0", sslv3, obs,
                                     sslv3 is not None and sslv3.version == 0x0300)
    if sslv2 is not None and obs.versions["SSLv2"].accepted:
        obs.ciphers["SSLv2"] = [SSLV2_SPECS[s].as_cipher() if s in SSLV2_SPECS
                                else _unknown(f"0x{s:06x}") for s in sslv2.sslv2_ciphers]
    for version in facts.unanswered:
        obs.untested_suites.setdefault(version, "the hand-built hello with the suites the local "
                                                "OpenSSL cannot offer got no answer")
        obs.untested.append((f"{_LABEL[version]} suites the local OpenSSL cannot offer",
                             "the server did not answer the hand-built hello"))
    for version, ids in facts.suites.items():
        if version != "SSLv3" and not (obs.versions.get(version) or Support(None)).accepted:
            obs.versions[version] = Support(True, "accepted only with suites the local "
                                                  "OpenSSL cannot offer")
        found = {str(c["name"]): c for c in obs.ciphers.get(version, [])}
        for suite_id in ids:
            cipher = _describe(suite_id, local)
            found.setdefault(str(cipher["name"]), cipher)
        obs.ciphers[version] = sorted(found.values(), key=lambda c: str(c["name"]))
    obs.versions = {v: obs.versions[v] for v in sorted(obs.versions, key=_rank)}
    obs.ciphers = {v: obs.ciphers[v] for v in sorted(obs.ciphers, key=_rank)}


def _rank(version: str) -> int:
    return _ORDER.index(version) if version in _ORDER else len(_ORDER)


def _support(label: str, reply: Reply | None, obs: Observations, accepted: bool) -> Support:
    if reply is None or not reply.outcome.answered:
        why = f"the server {reply.describe() if reply else 'was not asked'}"
        obs.untested.append((label, why))
        return Support(None, why)
    return Support(reply.outcome is Outcome.HELLO and accepted)


def _describe(suite_id: int, local: _Local) -> dict[str, Any]:
    suite = suite_by_id(suite_id)
    if suite is not None:
        return suite.as_cipher()
    known = local.ciphers.get(suite_id)
    if known is not None:
        return {k: known.get(k) for k in _CIPHER_KEYS}
    return _unknown(f"0x{suite_id:04x}")


def _unknown(name: str) -> dict[str, Any]:
    return {"name": name, "kea": None, "auth": None, "symmetric": None, "aead": False,
            "digest": None}
