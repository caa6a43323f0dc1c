"""Known attacks that follow from what was enumerated: no extra handshake. Pure.

POODLE, BEAST, SWEET32, LUCKY13, FREAK, LOGJAM, DROWN and the RC4 biases are not separate
scans (testssl's take minutes): each is a consequence of the versions, suites and key
sizes the probe has already seen, stated with the reason, or "not tested" when what it
depends on could not be tested here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustwire.probe.findings import Check, Findings, Status
from trustwire.probe.observations import Observations

__all__ = ["Consequence", "consequences", "judge_consequences"]

SECTION = "Vulnerabilities"


@dataclass(frozen=True)
class Consequence:
    name: str
    """Stable id part (``poodle``) and JSON key."""
    title: str
    vulnerable: bool | None
    """None: what it depends on could not be tested."""
    because: str
    fix: str
    severe: bool = True
    """False: clients mitigate it (BEAST, LUCKY13): a warning, not a failure."""

    def as_json(self) -> dict[str, Any]:
        return {"vulnerable": self.vulnerable, "because": self.because}


def _suites(obs: Observations, *versions: str) -> list[dict[str, Any]]:
    return [c for v in versions for c in obs.ciphers.get(v, [])]


def _cbc(suite: dict[str, Any]) -> bool:
    return str(suite.get("symmetric") or "").endswith("-cbc") or "CBC" in str(suite["name"])


def _block64(suite: dict[str, Any]) -> bool:
    name, symmetric = str(suite["name"]), str(suite.get("symmetric") or "")
    return any(s in symmetric for s in ("des", "idea", "rc2")) or any(
        s in name for s in ("DES", "IDEA", "RC2"))


def _names(suites: list[dict[str, Any]]) -> str:
    found = sorted({str(s["name"]) for s in suites})
    return ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")


def _accepted(obs: Observations, version: str) -> bool | None:
    support = obs.versions.get(version)
    return None if support is None else support.accepted


def _untested(obs: Observations, word: str) -> str | None:
    return next((f"{what}: {why}" for what, why in obs.untested if word in what), None)


_LABEL = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2"}


def _gap(obs: Observations, *versions: str) -> str | None:
    """Why the suites of TLS ``versions`` are not all known: a version that got no answer, or
    suites of an accepted one that did not; None when they are known. (An untested SSL 3.0
    is POODLE's to report: servers that ignore SSL 3.0 hellos would lose every verdict.)"""
    for version in versions:
        support = obs.versions.get(version)
        if support is not None and support.accepted is None:
            return f"{_LABEL[version]} could not be tested ({support.note or 'no answer'})"
        if version in obs.untested_suites:
            return f"{_LABEL[version]} suites could not all be tested " \
                   f"({obs.untested_suites[version]})"
    return None


def consequences(obs: Observations) -> list[Consequence]:
    """Every known attack, judged from the enumeration."""
    tls = ("TLSv1", "TLSv1.1", "TLSv1.2")
    found: list[Consequence] = []

    ssl3 = _accepted(obs, "SSLv3")
    ssl3_cbc = [s for s in _suites(obs, "SSLv3") if _cbc(s)]
    found.append(Consequence(
        "poodle", "POODLE (SSL 3.0, CVE-2014-3566)",
        None if ssl3 is None else bool(ssl3 and (ssl3_cbc or not obs.ciphers.get("SSLv3"))),
        "SSL 3.0 could not be tested here" if ssl3 is None else
        (f"SSL 3.0 is accepted with CBC suites ({_names(ssl3_cbc)})" if ssl3_cbc else
         "SSL 3.0 is accepted" if ssl3 else "SSL 3.0 is refused"),
        "disable SSL 3.0"))

    tls10_cbc = [s for s in _suites(obs, "SSLv3", "TLSv1") if _cbc(s)]
    gap = _gap(obs, "TLSv1")
    found.append(Consequence(
        "beast", "BEAST (CVE-2011-3389)", True if tls10_cbc else (None if gap else False),
        f"TLS 1.0 or older with CBC suites ({_names(tls10_cbc)}); modern clients split records "
        "to defend themselves" if tls10_cbc else gap or "no CBC suite in TLS 1.0 or older",
        "disable TLS 1.0 (or its CBC suites)", severe=False))

    block64 = [s for s in _suites(obs, "SSLv3", *tls) if _block64(s)]
    gap = _gap(obs, *tls)
    untested = _untested(obs, "3DES") or gap
    found.append(Consequence(
        "sweet32", "SWEET32 (64-bit block ciphers, CVE-2016-2183)",
        True if block64 else (None if untested else False),
        f"64-bit block suites accepted: {_names(block64)}" if block64 else
        (untested or "no 3DES, DES, IDEA or RC2 suite is accepted"),
        "remove 3DES, DES, IDEA and RC2 suites"))

    cbc = [s for s in _suites(obs, *tls) if _cbc(s)]
    found.append(Consequence(
        "lucky13", "LUCKY13 (CBC timing, CVE-2013-0169)",
        True if cbc else (None if _gap(obs, *tls) else False),
        f"CBC suites accepted ({_names(cbc)}): safe only with a patched, constant-time "
        "implementation" if cbc else _gap(obs, *tls) or "no CBC suite is accepted",
        "prefer AEAD suites (AES-GCM, ChaCha20-Poly1305) and drop CBC", severe=False))

    everything = _suites(obs, "SSLv3", *tls)
    export_rsa = [s for s in everything if "EXP" in str(s["name"]) and "DH" not in str(s["name"])]
    export_dh = [s for s in everything if "EXP" in str(s["name"]) and "DH" in str(s["name"])]
    untested = _untested(obs, "EXPORT") or gap
    found.append(Consequence(
        "freak", "FREAK (RSA EXPORT, CVE-2015-0204)",
        True if export_rsa else (None if untested else False),
        f"RSA EXPORT suites accepted: {_names(export_rsa)}" if export_rsa else
        (untested or "no RSA EXPORT suite is accepted"), "remove EXPORT suites"))

    dh = obs.dh_param_size
    weak_dh = dh is not None and dh <= 1024
    found.append(Consequence(
        "logjam", "LOGJAM (weak or EXPORT DH, CVE-2015-4000)",
        True if (export_dh or weak_dh) else (None if untested and not dh else False),
        f"DH EXPORT suites accepted: {_names(export_dh)}" if export_dh else
        f"the DH prime is {dh} bits" if weak_dh else
        (f"the DH prime is {dh} bits" if dh else untested or "no DHE key exchange with a weak prime"),
        "use 2048-bit or larger DH primes (RFC 7919 ffdhe) and remove EXPORT suites"))

    ssl2 = _accepted(obs, "SSLv2")
    found.append(Consequence(
        "drown", "DROWN (SSL 2.0, CVE-2016-0800)", ssl2,
        "SSL 2.0 could not be tested here" if ssl2 is None else
        ("SSL 2.0 is accepted: its RSA key can decrypt this server's TLS sessions" if ssl2 else
         "SSL 2.0 is refused (a server sharing this key elsewhere is not checked)"),
        "disable SSL 2.0 everywhere this key is used"))

    rc4 = [s for s in everything if "RC4" in str(s["name"]) or "rc4" in str(s.get("symmetric"))]
    untested = _untested(obs, "RC4") or gap
    found.append(Consequence(
        "rc4", "RC4 (CVE-2013-2566, CVE-2015-2808)", True if rc4 else (None if untested else False),
        f"RC4 suites accepted: {_names(rc4)}" if rc4 else (untested or "no RC4 suite is accepted"),
        "remove RC4 suites"))
    return found


def judge_consequences(obs: Observations) -> list[Check]:
    """One check per known attack (``vuln.poodle`` ...)."""
    findings = Findings(SECTION)
    for item in consequences(obs):
        if item.vulnerable is None:
            findings.add(f"vuln.{item.name}", item.title, Status.SKIP, f"not tested: {item.because}")
        elif item.vulnerable:
            findings.add(f"vuln.{item.name}", item.title,
                         Status.FAIL if item.severe else Status.WARN, item.because, fix=item.fix)
        else:
            findings.add(f"vuln.{item.name}", item.title, Status.PASS, item.because)
    return findings.checks
