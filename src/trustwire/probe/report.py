"""Probe reports: a rich screen for people, JSON, SARIF and JUnit for machines.

The JSON schema is documented in docs/probe.md; its ``schema`` field
(``trustwire.probe/1``) changes only with incompatible changes.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trustwire import __version__
from trustwire.pki.info import describe_certificate
from trustwire.probe.checks import Check, Status, Verdict
from trustwire.probe.consequences import consequences
from trustwire.probe.observations import Observations
from trustwire.probe.profiles import GUIDELINES_HREF, Profile

__all__ = ["SCHEMA", "render_human", "to_json", "to_junit", "to_sarif"]

SCHEMA = "trustwire.probe/1"
_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red",
          Status.INFO: "cyan", Status.SKIP: "dim"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
"""What neither a terminal nor XML 1.0 may be handed: control characters (ESC included)
and what XML forbids. Details quote the server (HTTP bodies, certificate names)."""


def _clean(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``: safe for a terminal and for XML."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _shown(text: str) -> str:
    """Server-quoting ``text`` for the rich console: cleaned, and no markup of its own."""
    return escape(_clean(text))


def to_json(obs: Observations, profile: Profile, checks: list[Check], result: Verdict) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "trustwire", "version": __version__},
        "target": {"address": obs.target.describe(), "host": obs.target.host,
                   "port": obs.target.port, "server_name": obs.target.server_name,
                   "https": obs.target.https, "starttls": obs.target.starttls},
        "profile": {"name": profile.name, "source": profile.source, "guidelines": GUIDELINES_HREF},
        "started": obs.started.isoformat(),
        "duration_s": round(obs.duration, 3),
        "protocols": [{"version": v, "accepted": s.accepted, "note": s.note}
                      for v, s in obs.versions.items()],
        "cipher_suites": {v: [c["name"] for c in suites] for v, suites in obs.ciphers.items()},
        "server_enforces_order": obs.server_order,
        "server_cipher_order": obs.server_cipher_order,
        "groups": [{"name": g, "accepted": s.accepted, "note": s.note} for g, s in obs.groups.items()],
        "key_exchange": {"dh_param_size": obs.dh_param_size, "ecdh_param_size": obs.ecdh_param_size},
        "certificate": {
            "chain": [describe_certificate(c).as_json() for c in obs.chain],
            "trusted": obs.trusted, "trust_error": obs.trust_error,
            "ocsp_stapled": obs.ocsp_stapled,
        },
        "client_auth": {
            "requested": obs.client_auth_requested, "required": obs.client_auth_required,
            "our_certificate_accepted": obs.our_certificate_accepted,
            "enforcement": [{"case": e.case, "refused": e.refused, "detail": e.detail}
                            for e in obs.enforcement],
        },
        "http": None if not obs.target.https else {
            "status": obs.http_status, "verified": obs.http_verified, "error": obs.http_error,
            "headers": obs.http_headers,
            "redirect": None if obs.redirect is None else {"status": obs.redirect[0],
                                                            "location": obs.redirect[1]},
        },
        "known_attacks": {c.name: c.as_json() for c in consequences(obs)},
        "legacy": None if obs.legacy is None else obs.legacy.as_json(),
        "exploits": None if obs.exploits is None else obs.exploits.as_json(),
        "sessions": obs.sessions.as_json() if obs.sessions is not None else None,
        "untested": [{"what": what, "why": why} for what, why in obs.untested],
        "checks": [c.as_json() for c in checks],
        "verdict": {"pass": result.passed, "failures": result.failures,
                    "warnings": result.warnings},
    }


def render_human(console: Console, obs: Observations, profile: Profile, checks: list[Check],
                 result: Verdict) -> None:
    starttls = f", STARTTLS {obs.target.starttls}" if obs.target.starttls else ""
    console.print(f"[bold]trustwire probe[/] {_shown(obs.target.describe())}"
                  f"  (server name {_shown(obs.target.server_name)}{starttls}, "
                  f"{obs.duration:.1f}s)")
    console.print(f"profile: {_shown(profile.source)}  <{GUIDELINES_HREF}>")
    sections: dict[str, list[Check]] = {}
    for check in checks:
        sections.setdefault(check.section, []).append(check)
    for section, items in sections.items():
        table = Table(title=section, title_justify="left", box=box.SIMPLE_HEAD, show_header=False,
                      expand=True, pad_edge=False)
        table.add_column(width=4, no_wrap=True)
        table.add_column(style="bold", ratio=2)
        table.add_column(overflow="fold", ratio=5)
        for check in items:
            detail = _shown(check.detail) + (
                f"\n[dim]fix: {_shown(check.fix)}[/]" if check.fix and check.status
                in (Status.FAIL, Status.WARN) else "")
            table.add_row(f"[{_STYLE[check.status]}]{check.status.value.upper()}[/]",
                          _shown(check.title), detail)
        console.print(table)
    if obs.untested:
        console.print("[bold]Not tested[/]")
        for what, why in obs.untested:
            console.print(f"  [dim]-[/] {_shown(what)}: {_shown(why)}")
    colour = "green" if result.passed else "red"
    word = "PASS" if result.passed else "FAIL"
    console.print(f"\n[bold {colour}]{word}[/] against {_shown(profile.source)}: "
                  f"{result.failures} failed, {result.warnings} warning(s)")


def to_sarif(obs: Observations, profile: Profile, checks: list[Check]) -> dict[str, Any]:
    reported = [c for c in checks if c.status in (Status.FAIL, Status.WARN)]
    rules = {c.id: c for c in reported}
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "trustwire", "version": __version__,
                "informationUri": GUIDELINES_HREF,
                "rules": [{"id": rule_id, "name": check.title,
                           "shortDescription": {"text": f"{check.section}: {check.title}"},
                           "help": {"text": check.fix or check.detail}}
                          for rule_id, check in rules.items()],
            }},
            "properties": {"profile": profile.source},
            "results": [{
                "ruleId": c.id,
                "level": "error" if c.status is Status.FAIL else "warning",
                "message": {"text": c.detail + (f" Fix: {c.fix}" if c.fix else "")},
                "locations": [{"physicalLocation": {"artifactLocation": {
                    "uri": _location(obs)}}}],
            } for c in reported],
        }],
    }


def _location(obs: Observations) -> str:
    """A URI for SARIF (RFC 3986: ``127.0.0.1:443`` alone is not one): the https URL, else
    ``tls://host:port`` (``starttls+smtp://`` for STARTTLS targets)."""
    if obs.target.https:
        return obs.target.describe()
    scheme = f"starttls+{obs.target.starttls}" if obs.target.starttls else "tls"
    return f"{scheme}://{obs.target.describe()}"


def to_junit(obs: Observations, profile: Profile, checks: list[Check]) -> bytes:
    suite = ET.Element("testsuite", {
        "name": f"trustwire probe {obs.target.describe()} ({profile.name})",
        "tests": str(len(checks)),
        "failures": str(sum(c.status is Status.FAIL for c in checks)),
        "skipped": str(sum(c.status is Status.SKIP for c in checks)),
        "time": f"{obs.duration:.3f}",
    })
    for check in checks:
        detail = _clean(check.detail)
        case = ET.SubElement(suite, "testcase", {"classname": check.section,
                                                 "name": _clean(check.title)})
        if check.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", {"message": detail, "type": check.id})
            failure.text = _clean(check.fix) if check.fix else detail
        elif check.status is Status.SKIP:
            ET.SubElement(case, "skipped", {"message": detail})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{check.status.value}: {detail}"
    data: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str)
