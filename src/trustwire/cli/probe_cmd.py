"""``trustwire probe``: how sound is this endpoint's TLS, and what to fix."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn

from trustwire.cli.common import err_console, out_console
from trustwire.pki.files import atomic_write
from trustwire.probe.checks import INCOMPLETE, Status, evaluate, verdict
from trustwire.probe.collect import ProbeOptions, ProbeTarget, collect
from trustwire.probe.profiles import load_profile
from trustwire.probe.report import dumps, render_human, to_json, to_junit, to_sarif
from trustwire.probe.starttls import PROTOCOLS

__all__ = ["probe"]

_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


@click.command()
@click.argument("target")
@click.option("--server-name", metavar="NAME", help="SNI and the name to check the certificate for.")
@click.option("--starttls", type=click.Choice(PROTOCOLS, case_sensitive=False),
              help="Speak this protocol's plaintext dialogue (STARTTLS, STLS, AUTH TLS, "
                   "SSLRequest...) before each handshake; TARGET is HOST:PORT.")
@click.option("--ca", type=_FILE, help="Trust this CA instead of the system store.")
@click.option("--cert", type=_FILE, help="Our client certificate (checks that it is accepted).")
@click.option("--key", type=_FILE, help="Its key.")
@click.option("--ca-key", type=_FILE,
              help="Key of --ca: mint expired, revoked and wrong-usage client certificates "
                   "from the server's own CA for the mTLS audit.")
@click.option("--crl", type=_FILE, help="The CRL the server checks (gives a revoked serial).")
@click.option("--profile", default="intermediate", show_default=True,
              help="modern, intermediate (Mozilla 6.0) or a TOML profile file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--sarif", type=click.Path(path_type=Path, dir_okay=False), help="Write SARIF 2.1.0 here.")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML here.")
@click.option("--timeout", type=click.FloatRange(min=0.2), default=5.0, show_default=True,
              help="Seconds per handshake.")
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=16, show_default=True,
              help="Handshakes in flight at once.")
@click.option("--check-redirect", is_flag=True, help="Check that http:// redirects to https://.")
@click.option("--http-port", type=click.IntRange(min=1, max=65535), default=80, show_default=True)
def probe(target: str, server_name: str | None, starttls: str | None, ca: Path | None, cert: Path | None,
          key: Path | None, ca_key: Path | None, crl: Path | None, profile: str, as_json: bool,
          sarif: Path | None, junit: Path | None, timeout: float, concurrency: int,
          check_redirect: bool, http_port: int) -> int:
    """Audit TARGET (HOST:PORT or https://URL): versions, suites, groups, certificate,
    client authentication (does it REFUSE bad certificates?) and HTTP security headers.

    With --starttls PROTO (smtp, imap, pop3, ftp, ldap, postgres, mysql), every connection
    first asks the server to start TLS in that protocol, as testssl -t does.

    Exit 0 when the verdict passes, 1 when it fails, 2 when TARGET could not be probed (or
    stopped answering partway and nothing that was tested failed).
    """
    if (cert is None) != (key is None):
        raise click.UsageError("give both --cert and --key")
    rules = load_profile(profile)
    if starttls is not None and "://" in target:
        raise click.UsageError("--starttls takes HOST:PORT, not a URL")
    where = ProbeTarget.parse(target, server_name, starttls=starttls and starttls.lower())
    options = ProbeOptions(ca=ca, cert=cert, key=key, ca_key=ca_key, crl=crl, timeout=timeout,
                           concurrency=concurrency, check_redirect=check_redirect,
                           http_port=http_port)
    if sys.stderr.isatty() and not as_json:
        with Progress(TextColumn("probing {task.description}"), BarColumn(),
                      TextColumn("{task.completed} handshakes"), console=err_console(),
                      transient=True) as progress:
            task = progress.add_task(where.describe(), total=None)
            obs = collect(where, options, progress=lambda n: progress.advance(task, n))
    else:
        obs = collect(where, options)
    checks = evaluate(obs, rules)
    result = verdict(checks)
    if sarif is not None:
        atomic_write(sarif, dumps(to_sarif(obs, rules, checks)).encode(), mode=0o644)
    if junit is not None:
        atomic_write(junit, to_junit(obs, rules, checks), mode=0o644)
    if as_json:
        click.echo(dumps(to_json(obs, rules, checks, result)))
    else:
        render_human(out_console(), obs, rules, checks, result)
    if result.passed:
        return 0
    only_incomplete = all(c.id == INCOMPLETE for c in checks if c.status is Status.FAIL)
    return 2 if only_incomplete else 1  # 2: could not be (fully) probed, nothing else failed
