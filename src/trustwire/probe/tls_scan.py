"""Enumerate what an endpoint's TLS accepts: versions, cipher suites, server order, groups, chain.

Each function asks one family of questions through a :class:`~trustwire.probe.attempt.Runner`
and writes the answers into :class:`~trustwire.probe.observations.Observations`, reading the
server's choices from its ServerHello (so an mTLS server that then refuses our anonymous
client still answers). :func:`check_baseline` comes first: it checks that the target answers
TLS at all and raises :class:`~trustwire.errors.Unreachable` if not, so the probe stops
there (exit 2) instead of timing out a hundred times.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ssl
from typing import Any

from cryptography import x509

from trustwire.errors import Unreachable
from trustwire.probe.attempt import OVERFLOWED, STALLED, Job, Offer, Runner, client_context
from trustwire.probe.checks import VERSION_LABEL
from trustwire.probe.connect import ConnectFailed, sni_for
from trustwire.probe.hello import HelloSpec, client_hello
from trustwire.probe.messages import GROUP_BITS, GROUP_NAMES
from trustwire.probe.observations import Observations, Support
from trustwire.probe.raw import exchange_hello
from trustwire.tls import native

__all__ = [
    "ALL_LEGACY",
    "EC_GROUPS",
    "GROUPS",
    "TLS13_SUITES",
    "VERSIONS",
    "check_baseline",
    "offer_for",
    "scan_certificate",
    "scan_key_sizes",
    "scan_ciphers",
    "scan_groups",
    "scan_versions",
]

VERSIONS = [("TLSv1", "TLSv1"), ("TLSv1.1", "TLSv1_1"), ("TLSv1.2", "TLSv1_2"),
            ("TLSv1.3", "TLSv1_3")]
TLS13_IDS = (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)
TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"]
# OpenSSL spelling -> canonical name (as in messages.GROUP_NAMES)
GROUPS = {"X25519MLKEM768": "X25519MLKEM768", "X25519": "x25519", "X448": "x448",
          "P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1",
          "ffdhe2048": "ffdhe2048", "ffdhe3072": "ffdhe3072", "ffdhe4096": "ffdhe4096",
          "ffdhe6144": "ffdhe6144", "ffdhe8192": "ffdhe8192"}
EC_GROUPS = {"X25519", "X448", "P-256", "P-384", "P-521"}
ALL_LEGACY = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"


def check_baseline(runner: Runner) -> None:
    """One plain handshake. Raises Unreachable when the target does not answer TLS."""
    result = runner.one(client_context())
    runner.progress(1)
    where = runner.target.describe()
    if not result.connected:
        raise Unreachable(f"cannot connect to {where}: {result.connect_error}",
                          hint="check the address and that the service is running")
    if result.hello is not None:
        return
    if not result.timed_out:
        # A legacy-only server refuses a modern offer: ask again with everything we can offer.
        wide = runner.one(client_context(minimum="TLSv1", ciphers=ALL_LEGACY))
        runner.progress(1)
        if wide.hello is not None or wide.log.alerts or result.log.alerts:
            if wide.hello is not None:
                runner.offer = {"minimum": "TLSv1", "ciphers": ALL_LEGACY}
            return  # it speaks TLS: the scans find what it accepts, the checks judge it
    if result.timed_out:
        raise Unreachable(f"{where} did not answer the TLS handshake within "
                          f"{runner.options.timeout:g} seconds",
                          hint="is it a TLS service? raise --timeout for slow links")
    if result.diagnosis is not None and result.diagnosis.reason == "not-tls":
        raise Unreachable(f"{where} does not speak TLS (it answered with something else)",
                          hint="point the probe at the TLS port")
    if result.error == OVERFLOWED:
        raise Unreachable(f"{where} {OVERFLOWED} and was cut off",
                          hint="this is not a TLS server anyone can talk to")
    raise Unreachable(f"{where} closed the connection without a TLS answer "
                      f"({result.error or 'no reason given'})")


def scan_versions(runner: Runner, obs: Observations) -> None:
    """Which protocol versions the server accepts, one handshake per version (SSL 2.0 and 3.0,
    which OpenSSL 3 cannot offer, are asked by :mod:`trustwire.probe.legacy_scan`)."""
    jobs: list[Job] = []
    for name, attr in VERSIONS:
        try:
            ctx = client_context(minimum=attr, maximum=attr,
                                 ciphers=ALL_LEGACY if name != "TLSv1.3" else None)
        except ValueError as exc:
            obs.versions[name] = Support(None, str(exc))
            continue
        jobs.append((name, functools.partial(runner.one, ctx)))
    silent = []
    for name, result in runner.run(jobs):
        hello = result.hello
        accepted = bool(hello and hello.version == name and not hello.retry)
        why = None if accepted else runner.silence(result)
        obs.versions[name] = Support(None, why) if why else Support(accepted)
        if why:
            silent.append(name)
    if jobs and len(silent) == len(jobs):
        raise Unreachable(f"{runner.target.describe()} answered the first handshake and then "
                          f"stopped answering (no TLS version got an answer within "
                          f"{runner.options.timeout:g} seconds)",
                          hint="raise --timeout, or lower --concurrency for a server that "
                               "takes few connections at once")
    runner.offer = offer_for(obs.versions, runner.offer)


def offer_for(versions: dict[str, Support], fallback: Offer | None = None) -> Offer:
    """What to offer for a handshake the server accepts: the default (TLS 1.2+) when it takes
    TLS 1.2 or 1.3, else its newest legacy version with every suite; ``fallback`` when it
    accepts none of them."""
    if any((versions.get(v) or Support(None)).accepted for v in ("TLSv1.2", "TLSv1.3")):
        return {}
    for name, attr in reversed(VERSIONS[:2]):
        if (versions.get(name) or Support(None)).accepted:
            return {"minimum": attr, "maximum": attr, "ciphers": ALL_LEGACY}
    return fallback or {}


def _accepted_versions(obs: Observations) -> list[str]:
    return [v for v, s in obs.versions.items() if s.accepted]


def _legacy_ciphers() -> list[dict[str, Any]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(ALL_LEGACY)
    return [dict(c) for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


def scan_ciphers(runner: Runner, obs: Observations) -> None:
    """Which cipher suites each accepted version takes, one suite per handshake; then
    whether the server imposes its own order. Needs :func:`scan_versions` first."""
    candidates = _legacy_ciphers()
    by_id = {c["id"] & 0xFFFF: c for c in candidates}
    jobs: list[Job] = []
    for version in _accepted_versions(obs):
        attr = dict(VERSIONS)[version]
        if version == "TLSv1.3":
            for suite in TLS13_SUITES:
                try:
                    ctx = client_context(minimum=attr, maximum=attr, suites=suite)
                except ValueError as exc:
                    obs.untested.append((f"TLS 1.3 suite {suite}", str(exc)))
                    continue
                jobs.append(((version, suite), functools.partial(runner.one, ctx)))
            continue
        for cipher in candidates:
            ctx = client_context(minimum=attr, maximum=attr,
                                 ciphers=f"{cipher['name']}:@SECLEVEL=0")
            jobs.append(((version, cipher["name"]), functools.partial(runner.one, ctx)))
    accepted: dict[str, list[dict[str, Any]]] = {}
    suite_ids = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
                 0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256",
                 0x1305: "TLS_AES_128_CCM_8_SHA256"}
    silent: dict[str, list[str]] = {}
    for (version, name), result in runner.run(jobs):
        hello = result.hello
        why = runner.silence(result)
        if why is not None:
            silent.setdefault(version, []).append(why)
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
    offered = {v: sum(1 for (version, _), _ in jobs if version == v) for v in silent}
    for version, reasons in silent.items():
        obs.untested_suites[version] = (f"{len(reasons)} of {offered[version]} suites got no "
                                        f"answer: {reasons[0]}")
        obs.untested.append((f"{VERSION_LABEL[version]} suites", obs.untested_suites[version]))
    obs.ciphers = accepted  # legacy_scan adds the suites the local OpenSSL cannot offer
    _server_order(runner, obs)


def _server_order(runner: Runner, obs: Observations) -> None:
    tls12 = [c["name"] for c in obs.ciphers.get("TLSv1.2", [])]
    if len(tls12) < 2:
        return
    first, second = tls12[0], tls12[-1]
    jobs: list[Job] = [
        (order, functools.partial(runner.one, client_context(
            minimum="TLSv1_2", maximum="TLSv1_2", ciphers=":".join(order) + ":@SECLEVEL=0")))
        for order in ((first, second), (second, first))]
    chosen = {}
    for order, result in runner.run(jobs):
        hello = result.hello
        chosen[order] = hello.cipher_id if hello else None
    values = list(chosen.values())
    if None not in values:
        obs.server_order = values[0] == values[1]
    if obs.server_order:
        obs.server_cipher_order = _preference_order(runner, tls12)


def _preference_order(runner: Runner, suites: list[str]) -> list[str]:
    """The server's own order of ``suites``: offer them all, note its pick, drop it, again.
    One handshake per suite, one after the other (each depends on the last)."""
    by_id = {c["id"] & 0xFFFF: str(c["name"]) for c in _legacy_ciphers()}
    remaining = list(suites)
    order: list[str] = []
    while len(remaining) > 1:
        offer = ":".join(reversed(remaining)) + ":@SECLEVEL=0"  # our order is not its order
        hello = runner.one(client_context(minimum="TLSv1_2", maximum="TLSv1_2",
                                          ciphers=offer)).hello
        runner.progress(1)
        pick = by_id.get(hello.cipher_id) if hello is not None else None
        if pick not in remaining:
            return []  # no answer, or an answer outside the offer: no order to report
        order.append(pick)
        remaining.remove(pick)
    return order + remaining


def scan_groups(runner: Runner, obs: Observations) -> None:
    """Which key exchange groups the newest accepted version takes, one group per handshake.
    Needs :func:`scan_versions` first."""
    versions = _accepted_versions(obs)
    version = "TLSv1.3" if "TLSv1.3" in versions else ("TLSv1.2" if "TLSv1.2" in versions else None)
    if version is None:
        return
    if version == "TLSv1.3":
        _groups_by_retry_request(runner, obs)
        return
    attr = dict(VERSIONS)[version]
    jobs: list[Job] = []
    for group, canonical in GROUPS.items():
        if group not in EC_GROUPS:
            continue
        try:
            ctx = client_context(minimum=attr, maximum=attr, groups=group, ciphers=ALL_LEGACY)
        except ValueError as exc:
            obs.groups[canonical] = Support(None, str(exc))
            obs.untested.append((f"key exchange group {group}", str(exc)))
            continue
        jobs.append((canonical, functools.partial(runner.one, ctx)))
    for canonical, result in runner.run(jobs):
        hello = result.hello
        chosen = result.log.group()
        taken = bool(hello and not hello.retry and chosen == canonical)
        why = None if taken else runner.silence(result)
        obs.groups[canonical] = Support(None, why) if why else Support(taken)


def _groups_by_retry_request(runner: Runner, obs: Observations) -> None:
    """TLS 1.3: offer one group and no key share; a server that takes the group must answer
    with a HelloRetryRequest naming it (RFC 8446 4.1.4). No key is generated on either side,
    so ffdhe8192 costs what x25519 does, and groups the local OpenSSL cannot offer
    (X25519MLKEM768 on OpenSSL 3.0) are tested too."""
    ids = {name: gid for gid, name in GROUP_NAMES.items()}
    futures = {runner.pool.submit(_retry_request, runner, ids[canonical]): canonical
               for canonical in GROUPS.values()}
    for future in concurrent.futures.as_completed(futures):
        canonical = futures[future]
        obs.groups[canonical] = future.result()
        runner.progress(1)
    obs.groups = {canonical: obs.groups[canonical] for canonical in GROUPS.values()}


def _retry_request(runner: Runner, group: int) -> Support:
    if runner.stalled:
        return Support(None, STALLED)
    spec = HelloSpec(ciphers=tuple(TLS13_IDS), server_name=sni_for(runner.target), groups=(group,),
                     extensions=((43, b"\x02\x03\x04"), (51, b"\x00\x00"), (45, b"\x01\x01")))
    try:
        conn = exchange_hello(runner.target, client_hello(spec), runner.options.timeout)
    except ConnectFailed as exc:
        return Support(None, f"no connection ({exc.reason})")
    hello = conn.flight.server_hello
    if hello is not None and hello.version == 0x0304:
        share = hello.extensions.get(51, b"")
        return Support(share[:2] == group.to_bytes(2, "big"))
    if conn.flight.alert is not None or conn.closed:
        return Support(False)
    return Support(None, f"no answer within {runner.options.timeout:g}s" if conn.timed_out else
                   (conn.flight.malformed or "an answer that is not TLS 1.3"))


def scan_key_sizes(runner: Runner, obs: Observations) -> None:
    """The smallest DH prime and EC group the server uses. Needs :func:`scan_ciphers` and
    :func:`scan_groups` first: one more handshake when the server takes DHE suites."""
    ec = [GROUP_BITS[g] for g, s in obs.groups.items()
          if s.accepted and g in GROUP_BITS and not g.startswith("ffdhe")]
    dh = [GROUP_BITS[g] for g, s in obs.groups.items() if s.accepted and g.startswith("ffdhe")]
    jobs: list[Job] = []
    for version, suites in obs.ciphers.items():
        dhe = [str(c["name"]) for c in suites if c.get("kea") == "kx-dhe"]
        if dhe and version != "TLSv1.3":
            attr = dict(VERSIONS)[version]
            ctx = client_context(minimum=attr, maximum=attr, ciphers=":".join(dhe) + ":@SECLEVEL=0")
            jobs.append((version, functools.partial(runner.one, ctx)))
    for _, result in runner.run(jobs):
        bits = result.log.dh_bits()
        if bits is not None:
            dh.append(bits)
    obs.dh_param_size = min(dh) if dh else None
    obs.ecdh_param_size = min(ec) if ec else None


def scan_certificate(runner: Runner, obs: Observations) -> None:
    """The chain the server sends, whether it verifies, whether OCSP is stapled, and whether
    the server asks for a client certificate; with :attr:`Runner.offer`, so a legacy-only
    server is asked what it accepts. A handshake that got no answer says nothing about any
    of them (``obs.chain_untested``, ``trust_error`` with ``trusted`` None)."""
    offer = runner.offer
    jobs: list[Job] = [
        ("chain", lambda: runner.one(client_context(**offer, ocsp=True))),
        ("verify", lambda: runner.one(client_context(**offer, verify=True,
                                                     ca=runner.options.ca))),
    ]
    results = dict(runner.run(jobs))
    chain, verify = results["chain"], results["verify"]
    chain_der, ocsp = chain.log.chain_and_ocsp()
    silent = runner.silence(chain)
    if not chain_der and verify.log.first(11) is not None:
        chain_der, silent = verify.log.chain_and_ocsp()[0], None  # the same chain, no OCSP ask
    obs.chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    if not chain_der and silent is not None:
        obs.chain_untested = silent
    if native.available() and runner.silence(chain) is None:
        obs.ocsp_stapled = ocsp is not None
    elif not native.available():
        obs.untested.append(("OCSP stapling", "this Python cannot ask for a stapled response"))
    obs.trust_store = str(runner.options.ca) if runner.options.ca else _system_store()
    if verify.diagnosis is not None and verify.error == "CERTIFICATE_VERIFY_FAILED":
        obs.trusted = False
        obs.trust_error = verify.diagnosis.why
        obs.trust_code = verify.verify_code
    elif verify.log.first(11) is not None:  # the chain arrived and verification did not object
        obs.trusted = True
    else:
        why = runner.silence(verify)
        obs.trust_error = why or (
            f"the verifying handshake failed before the chain arrived "
            f"({verify.error or 'no reason given'})")
    asked = chain.log.certificate_requested or verify.log.certificate_requested
    obs.client_auth_requested = True if asked else (None if obs.chain_untested else False)


def _system_store() -> str:
    paths = ssl.get_default_verify_paths()
    return f"the system store ({paths.cafile or paths.capath or paths.openssl_cafile})"
