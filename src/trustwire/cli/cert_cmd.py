"""``trustwire cert``: issue, request, sign, list, show, lint, revoke and renew certificates."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from rich import box
from rich.table import Table

from trustwire.cli.common import (
    AppState,
    echo_json,
    fmt_time,
    kind_options,
    lifetime_options,
    out_console,
    passphrase_option,
    plain,
    print_table,
    quiet,
    read_passphrase,
    resolve_kind,
    resolve_lifetime,
    resolve_validity,
    validity_options,
    warn,
)
from trustwire.errors import ConfigError, PKIError
from trustwire.pki.ca import Validity, fingerprint, utcnow
from trustwire.pki.crl import RevocationReason
from trustwire.pki.export import P12Encryption, check_destination, export_pkcs12
from trustwire.pki.files import atomic_write, ensure_private_dir, staged_writes
from trustwire.pki.info import describe_certificate, pin_form
from trustwire.pki.inventory import Record, State, Status
from trustwire.pki.keys import KeyType, private_key_pem, signing_hash
from trustwire.pki.lint import Purpose, Severity, lint_certificate
from trustwire.pki.names import SubjectAltNames, validate_cert_name, validate_subject_text
from trustwire.pki.store import load_certificates

__all__ = ["cert"]

F = TypeVar("F", bound=Callable[..., Any])

KEY_TYPES = [k.value for k in KeyType]
DEFAULT_LIFETIME = dt.timedelta(days=90)
_STATUS_STYLE = {
    Status.VALID: "green", Status.EXPIRING_SOON: "yellow", Status.EXPIRED: "red",
    Status.NOT_YET_VALID: "yellow", Status.REVOKED: "red",
}


def _san_options(func: F) -> F:
    for flag, meta, text in (
        ("--uri", "URI", "URI SAN such as spiffe://example.org/service (repeatable)."),
        ("--ip", "ADDRESS", "IP address SAN (repeatable)."),
        ("--dns", "HOST", "DNS name SAN (repeatable)."),
    ):
        func = click.option(flag, multiple=True, metavar=meta, help=text)(func)
    return func


@click.group()
def cert() -> None:
    """Issue and manage leaf certificates."""


def _print_issued(record: Record, cert_path: Path, key_path: Path | None) -> None:
    console = out_console()
    names = plain(", ".join(record.sans.describe()) or "none")
    console.print(f"Issued [bold]{record.name}[/] ({record.kind.value}, serial {record.serial_hex})")
    console.print(f"  names:       {names}")
    console.print(f"  valid:       {fmt_time(record.not_before)} to {fmt_time(record.not_after)}")
    console.print(f"  fingerprint: {pin_form(record.fingerprint)}", soft_wrap=True)
    console.print(f"  certificate: {plain(cert_path)}")
    if key_path is not None:
        console.print(f"  key:         {plain(key_path)} (0600)")


@cert.command("issue")
@click.argument("name")
@kind_options
@_san_options
@lifetime_options
@validity_options
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ecdsa-p256", show_default=True)
@click.option("--ou", default=None, help="Organizational unit in the subject (for --allow-ou).")
@click.option("--org", default=None, help="Organization (O) in the subject.")
@passphrase_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the new record as JSON: name, serial, kind, organizational_unit, sans, "
                   "not_before, not_after, fingerprint(_sha256), key_type, key_in_home, state, "
                   "status, revoked_at, revocation_reason.")
@click.pass_obj
def cert_issue(
    state: AppState, name: str, server: bool, client: bool, both: bool, dns: tuple[str, ...],
    ip: tuple[str, ...], uri: tuple[str, ...], days: int | None, hours: int | None,
    not_before: str | None, not_after: str | None, key_type: str, ou: str | None,
    org: str | None, passphrase_file: Path | None, as_json: bool,
) -> None:
    """Issue a certificate and key named NAME (CN = NAME).

    A server certificate without --dns or --ip gets NAME as its DNS name. The printed
    fingerprint is what --allow-fingerprint takes.
    """
    kind = resolve_kind(server, client, both)
    validate_cert_name(name)
    if ou is not None:
        ou = validate_subject_text(ou)
    if org is not None:
        org = validate_subject_text(org, "organization")
    sans = SubjectAltNames.parse(dns=dns, ips=ip, uris=uri)
    now = utcnow()
    lifetime = resolve_validity(days, hours, not_before, not_after, now=now,
                                default=DEFAULT_LIFETIME)
    home = state.home
    record = home.issue(
        name, kind=kind, sans=sans, key_type=KeyType(key_type), lifetime=lifetime,
        organizational_unit=ou, organization=org, passphrase=read_passphrase(passphrase_file),
        now=now,
    )
    if isinstance(lifetime, Validity) and lifetime.not_after <= now:
        warn(f"the whole validity window ends in the past ({fmt_time(lifetime.not_after)}): "
             f"{name} is expired from the start")
    if as_json:
        echo_json(record.as_json(utcnow()))
        return
    _print_issued(record, home.cert_path(name), home.key_path(name))


@cert.command("request")
@click.argument("name")
@_san_options
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ecdsa-p256", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory for NAME.key (0600) and NAME.csr.")
def cert_request(
    name: str, dns: tuple[str, ...], ip: tuple[str, ...], uri: tuple[str, ...], key_type: str,
    out: Path,
) -> None:
    """Make a key and a CSR where the key will live; no CA needed.

    Send NAME.csr to the CA (`trustwire cert sign`); the key never leaves OUT.
    """
    validate_cert_name(name)
    sans = SubjectAltNames.parse(dns=dns, ips=ip, uris=uri)
    key_path, csr_path = out / f"{name}.key", out / f"{name}.csr"
    if key_path.exists():
        raise PKIError(f"{key_path} already exists; refusing to overwrite a private key",
                       hint="choose another --out directory or NAME")
    key = KeyType(key_type).generate()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
    )
    if not sans.is_empty():
        builder = builder.add_extension(sans.to_extension(), critical=False)
    csr = builder.sign(key, signing_hash(key))  # type: ignore[arg-type]
    ensure_private_dir(out)
    with staged_writes() as batch:
        batch.stage(key_path, private_key_pem(key), 0o600)
        batch.stage(csr_path, csr.public_bytes(serialization.Encoding.PEM), 0o644)
    click.echo(f"Key written to {key_path} (0600); it stays here.")
    click.echo(f"CSR written to {csr_path}; sign it with: trustwire cert sign {csr_path} --client")


@cert.command("sign")
@click.argument("csr", type=click.Path(path_type=Path, dir_okay=False))
@kind_options
@lifetime_options
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the certificate chain here.")
@passphrase_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the new record as JSON (the shape of `cert issue --json`).")
@click.pass_obj
def cert_sign(
    state: AppState, csr: Path, server: bool, client: bool, both: bool, days: int | None,
    hours: int | None, out: Path | None, passphrase_file: Path | None, as_json: bool,
) -> None:
    """Check a CSR (signature, names, name constraints) and sign it.

    --json prints the record as `cert issue --json` does (name, serial, kind, sans,
    not_before, not_after, fingerprint, key_in_home false, state, status, ...).
    """
    kind = resolve_kind(server, client, both)
    try:
        data = csr.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the CSR {csr}: {exc.strerror}") from exc
    home = state.home
    record, issued = home.sign_csr(
        data, source=str(csr), kind=kind,
        lifetime=resolve_lifetime(days, hours) or DEFAULT_LIFETIME,
        passphrase=read_passphrase(passphrase_file),
    )
    if out is not None:
        atomic_write(out, issued.cert_chain_pem.bytes(), mode=0o644)
    if as_json:
        echo_json(record.as_json(utcnow()))
        return
    _print_issued(record, home.cert_path(record.name), None)
    if out is not None:
        click.echo(f"  copy:        {out}")


def _export_passphrase(path: Path | None) -> bytes:
    """The PKCS#12 passphrase: from the file, else asked for (hidden, twice) on a terminal."""
    if path is not None:
        passphrase = read_passphrase(path)
        assert passphrase is not None  # noqa: S101 - read_passphrase returns bytes for a path
        return passphrase
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise ConfigError("a PKCS#12 file needs a passphrase, and there is no terminal to ask for one",
                          hint="give --passphrase-file FILE (its first line is the passphrase)")
    text: str = click.prompt("Passphrase for the PKCS#12 file", hide_input=True,
                             confirmation_prompt=True, err=True)
    return text.encode()


@cert.command("export")
@click.argument("name")
@click.option("--p12", "p12_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              metavar="FILE", help="Write a PKCS#12 file (key, certificate, chain; 0600).")
@click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False),
              help="File whose first line protects the PKCS#12 file (default: ask on the terminal).")
@click.option("--legacy", is_flag=True,
              help="3DES and a SHA-1 MAC, for older Windows, macOS and Java importers "
                   "(default: AES-256 with PBKDF2/SHA-256 and an HMAC-SHA256 MAC).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists (never a file in the home).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_obj
def cert_export(state: AppState, name: str, p12_path: Path, passphrase_file: Path | None,
                legacy: bool, force: bool, as_json: bool) -> None:
    """Export NAME's key, certificate and chain (to the root) as PKCS#12, friendly name NAME.

    For browsers, the Windows and macOS stores, Java keystores and curl --cert-type P12.
    The passphrase is what protects a stolen file: each guess is checked against the
    file's MAC (2048 iterations, in either encryption), so use a long random one.
    """
    encryption = P12Encryption.LEGACY if legacy else P12Encryption.MODERN
    check_destination(state.home, p12_path, overwrite=force)  # before asking for a passphrase
    passphrase = _export_passphrase(passphrase_file)
    export = export_pkcs12(state.home, name, p12_path, passphrase=passphrase, encryption=encryption,
                           overwrite=force)
    if export.leaf.not_valid_after_utc <= utcnow():
        warn(f"{name} expired on {fmt_time(export.leaf.not_valid_after_utc)}: importers will hold "
             f"a certificate no peer accepts; `trustwire cert renew {name}` makes a fresh one")
    if as_json:
        echo_json({"name": name, "file": str(p12_path), "encryption": encryption.value,
                   "fingerprint": pin_form(fingerprint(export.leaf)),
                   "chain": [c.subject.rfc4514_string() for c in export.chain]})
        return
    if quiet():
        return
    click.echo(f"Exported {name} to {p12_path} (0600, {encryption.value} encryption): key, "
               f"certificate and {len(export.chain)} CA certificate(s).")


@cert.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all", "show_all", is_flag=True, help="Include superseded certificates.")
@click.pass_obj
def cert_list(state: AppState, as_json: bool, show_all: bool) -> None:
    """List certificates with their status (valid, expiring soon, expired, revoked)."""
    now = utcnow()
    with state.home.inventory(read_only=True) as inventory:
        records = [r for r in inventory.all() if show_all or r.state is not State.SUPERSEDED]
    if as_json:
        echo_json([r.as_json(now) for r in records])
        return
    console = out_console()
    if not records:
        console.print("No certificates yet; issue one with `trustwire cert issue NAME --client`.")
        return
    table = Table(title=f"Certificates in {plain(state.home.root)}", box=box.SIMPLE_HEAD)
    for column in ("name", "kind", "status", "expires", "names", "serial"):
        table.add_column(column, overflow="fold")
    for r in records:
        status = r.status(now)
        label = status.value + (" (superseded)" if r.state is State.SUPERSEDED else "")
        table.add_row(
            r.name, r.kind.value, f"[{_STATUS_STYLE[status]}]{label}[/]",
            f"{r.not_after:%Y-%m-%d %H:%M}", plain(", ".join(r.sans.describe())), r.serial_hex[:12],
        )
    print_table(table)


@cert.command("show")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def cert_show(state: AppState, target: str, as_json: bool) -> None:
    """Show a certificate by NAME or serial from the inventory, or any certificate FILE."""
    now = utcnow()
    path = Path(target)
    record: Record | None = None
    if path.is_file():
        certificate = load_certificates(path.read_bytes(), source=target)[0]
    else:
        home = state.home
        with home.inventory(read_only=True) as inventory:
            record = home.find(inventory, target, newest=True)
        certificate = record.certificate()
    info = describe_certificate(certificate)
    data: dict[str, object] = info.as_json()
    if record is not None:
        data.update(name=record.name, kind=record.kind.value, state=record.state.value,
                    status=record.status(now).value,
                    revoked_at=record.revoked_at.isoformat() if record.revoked_at else None,
                    revocation_reason=(record.revocation_reason.value
                                       if record.revocation_reason else None))
    if as_json:
        echo_json(data)
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("name", "status", "subject", "issuer", "serial", "not_before", "not_after", "key",
                "signature_algorithm", "extended_key_usage", "sans", "fingerprint",
                "revoked_at", "revocation_reason"):
        value = data.get(key)
        if value in (None, [], {}):
            continue
        if key == "sans":
            value = ", ".join(info.sans.describe()) or "none"
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        table.add_row(key.replace("_", " "), plain(value))
    print_table(table)


@cert.command("lint")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--purpose", type=click.Choice([p.value for p in Purpose]), default="auto",
              show_default=True, help="Intended use of the first certificate.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cert_lint(file: Path, purpose: str, as_json: bool) -> int:
    """Explain why a certificate would fail strict verification (exit 1 if it would).

    The first certificate in FILE is checked for PURPOSE; any further ones as CAs.
    """
    certs = load_certificates(file.read_bytes(), source=str(file))
    results = []
    for index, certificate in enumerate(certs):
        findings = lint_certificate(
            certificate, purpose=Purpose(purpose) if index == 0 else Purpose.CA,
        )
        results.append((certificate, findings))
    errors = sum(1 for _, fs in results for f in fs if f.severity is Severity.ERROR)
    if as_json:
        echo_json({
            "file": str(file),
            "ok": errors == 0,
            "certificates": [
                {"subject": c.subject.rfc4514_string(), "serial": format(c.serial_number, "x"),
                 "findings": [f.as_json() for f in fs]}
                for c, fs in results
            ],
        })
        return 1 if errors else 0
    console = out_console()
    for certificate, findings in results:
        console.print(f"[bold]{plain(certificate.subject.rfc4514_string() or '(empty subject)')}[/]")
        if not findings:
            console.print("  [green]clean[/]: strict verification has nothing to object to")
        for f in findings:
            colour = "red" if f.severity is Severity.ERROR else "yellow"
            console.print(f"  [{colour}]{f.severity.value}[/] {f.code}: {plain(f.message)}")
            console.print(f"      [dim]({plain(f.reference)})[/]")
    console.print(
        f"{errors} error(s): strict verification would fail" if errors
        else "No errors: strict verification would pass.",
    )
    return 1 if errors else 0


@cert.command("revoke")
@click.argument("target", metavar="NAME|SERIAL")
@click.option("--reason", default="unspecified", show_default=True,
              help="RFC 5280 reason: " + ", ".join(r.value for r in RevocationReason) + ".")
@click.option("--dry-run", is_flag=True, help="Show what would be revoked; change nothing.")
@click.option("--status", "status_urls", multiple=True, metavar="URL",
              help="With --dry-run: a running server's /status URL (repeatable); lists the live "
                   "connections the revocation would cut.")
@passphrase_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the revoked (or, with --dry-run, the targeted) record as JSON.")
@click.pass_obj
def cert_revoke(
    state: AppState, target: str, reason: str, dry_run: bool, status_urls: tuple[str, ...],
    passphrase_file: Path | None, as_json: bool,
) -> None:
    """Revoke a certificate and regenerate the CRL that servers load.

    --json prints {"dry_run": bool, "record": <as `cert show --json` of NAME>, "crl": PATH,
    "live_connections": {URL: [...]}} (live_connections only with --dry-run --status).
    """
    why = RevocationReason.parse(reason)
    home = state.home
    if status_urls and not dry_run:
        raise click.UsageError("--status goes with --dry-run")
    if dry_run:
        with home.inventory() as inventory:
            record = home.find(inventory, target)
        if record.state is State.REVOKED:
            raise PKIError(f"{record.name} (serial {record.serial_hex}) is already revoked")
        if as_json:
            echo_json({"dry_run": True, "record": record.as_json(utcnow()), "crl": str(home.crl_path),
                       "live_connections": {
                           url: [c for c in _fetch_status(url)["connections"]
                                 if c.get("serial") == record.serial_hex]
                           for url in status_urls}})
            return
        click.echo(f"Would revoke {record.name} (serial {record.serial_hex}, "
                   f"{record.status(utcnow()).value}) with reason {why.value}; nothing changed.")
        for url in status_urls:
            connections = _fetch_status(url)["connections"]
            live = [c for c in connections if c.get("serial") == record.serial_hex]
            click.echo(f"{url}: {len(live)} live connection(s) would be cut"
                       + "".join(f"\n  {c.get('peer')} (CN={c.get('cn')}, open {c.get('age_s')}s)"
                                 for c in live))
        return
    record = home.revoke(target, reason=why, passphrase=read_passphrase(passphrase_file))
    if as_json:
        echo_json({"dry_run": False, "record": record.as_json(utcnow()), "crl": str(home.crl_path),
                   "live_connections": {}})
        return
    click.echo(f"Revoked {record.name} (serial {record.serial_hex}, reason {why.value}).")
    click.echo(f"CRL updated: {home.crl_path}; servers that load it refuse this certificate.")


@cert.command("renew")
@click.argument("name")
@lifetime_options
@click.option("--revoke-old", is_flag=True, help="Revoke the old certificate (reason superseded).")
@passphrase_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the new record as JSON (the shape of `cert issue --json`).")
@click.pass_obj
def cert_renew(
    state: AppState, name: str, days: int | None, hours: int | None, revoke_old: bool,
    passphrase_file: Path | None, as_json: bool,
) -> None:
    """Issue NAME again with a fresh key; same kind and names.

    --json prints the new record as `cert issue --json` does.
    """
    home = state.home
    record = home.renew(
        name, lifetime=resolve_lifetime(days, hours), revoke_old=revoke_old,
        passphrase=read_passphrase(passphrase_file),
    )
    if as_json:
        echo_json(record.as_json(utcnow()))
        return
    _print_issued(record, home.cert_path(name), home.key_path(name))
    click.echo("  old certificate: " + ("revoked (superseded)" if revoke_old
                                        else "still valid until it expires"))


def _fetch_status(url: str) -> dict[str, list[dict[str, object]]]:
    """GET a /status document.

    Raises:
        ConfigError: not an http:// URL, unreachable, or not a trustwire status document.
    """
    import json
    import urllib.error
    import urllib.request

    if not url.startswith("http://"):
        raise ConfigError(f"--status {url!r}: give the http:// URL of a /status endpoint")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http(s) only, checked above
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {url}: {getattr(exc, 'reason', exc)}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("connections"), list):
        raise ConfigError(f"{url} is not a trustwire /status document")
    return data
