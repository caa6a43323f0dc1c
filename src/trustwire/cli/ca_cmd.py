"""``trustwire ca``: create, inspect and maintain the certificate authority."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.table import Table

from trustwire.cli.common import (
    AppState,
    echo_json,
    fmt_time,
    info,
    out_console,
    passphrase_option,
    plain,
    print_table,
    quiet,
    read_passphrase,
)
from trustwire.errors import PKIError
from trustwire.pki.ca import name_constraints_of, utcnow
from trustwire.pki.crl import crl_number
from trustwire.pki.files import atomic_write
from trustwire.pki.info import describe_certificate
from trustwire.pki.inventory import Status
from trustwire.pki.keys import KeyType
from trustwire.pki.names import NameConstraints
from trustwire.pki.store import Home
from trustwire.pki.truststores import (
    Action,
    StoreKind,
    TrustReport,
    install_root,
    trust_stores,
    uninstall_root,
)

__all__ = ["ca"]

KEY_TYPES = [k.value for k in KeyType]


@click.group()
def ca() -> None:
    """Create and manage the certificate authority."""


@ca.command("init")
@click.option("--name", default="trustwire CA", show_default=True, help="The CA's common name.")
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ecdsa-p256", show_default=True)
@click.option("--days", type=click.IntRange(min=401), default=3650, show_default=True,
              help="Lifetime of the root.")
@passphrase_option
@click.option("--intermediate", is_flag=True,
              help="Also create an intermediate that signs leaves, so the root key can go offline.")
@click.option("--permit-dns", multiple=True, metavar="DOMAIN",
              help="Intermediate may only sign names in this DNS domain (repeatable).")
@click.option("--permit-ip", multiple=True, metavar="CIDR",
              help="Intermediate may only sign IPs in this network (repeatable).")
@click.option("--permit-uri", multiple=True, metavar="URI",
              help="Intermediate may only sign URIs with this host, e.g. spiffe://example.org.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the new CA as JSON (the shape of `ca show --json`).")
@click.pass_obj
def ca_init(
    state: AppState, name: str, key_type: str, days: int, passphrase_file: Path | None,
    intermediate: bool, permit_dns: tuple[str, ...], permit_ip: tuple[str, ...],
    permit_uri: tuple[str, ...], as_json: bool,
) -> None:
    """Create a new root CA (and optionally a name-constrained intermediate).

    --json prints what `ca show --json` would: home, root, key_encrypted, intermediate
    (when made), crl and certificates.
    """
    if (permit_dns or permit_ip or permit_uri) and not intermediate:
        raise click.UsageError("--permit-* constrains the intermediate: add --intermediate")
    constraints = NameConstraints.parse(dns=permit_dns, ips=permit_ip, uris=permit_uri)
    home = state.home
    signer = home.init_ca(
        name=name, key_type=KeyType(key_type), lifetime=dt.timedelta(days=days),
        passphrase=read_passphrase(passphrase_file), intermediate=intermediate,
        constraints=constraints,
    )
    if as_json:
        echo_json(_ca_summary(home))
        return
    console = out_console()
    root = home.root_cert()
    console.print(f"Created CA [bold]{plain(name)}[/] in {plain(home.root)}")
    console.print(f"  root:         {plain(home.ca_cert_path)} ({describe_certificate(root).key}, "
                  f"valid until {fmt_time(root.not_valid_after_utc)})")
    console.print(f"  root key:     {plain(home.ca_key_path)} (0600"
                  f"{', encrypted' if passphrase_file else ''})")
    if intermediate:
        console.print(f"  intermediate: {plain(home.intermediate_cert_path)} (signs leaves, valid until "
                      f"{fmt_time(signer.cert.not_valid_after_utc)})")
        if not constraints.is_empty():
            console.print(f"  permitted:    {plain(', '.join(constraints.describe()))}")
    console.print(f"  CRL:          {plain(home.crl_path)}")
    console.print("Next: trustwire cert issue server --server --dns localhost")


def _key_encrypted(home: Home) -> bool | None:
    """Whether the signing key is encrypted; None when this user may not read it."""
    try:
        return home.key_is_encrypted()
    except PKIError:
        return None


def _crl_summary(home: Home, crl: x509.CertificateRevocationList,
                 now: dt.datetime) -> dict[str, object]:
    return {
        "path": str(home.crl_path),
        "number": crl_number(crl),
        "this_update": crl.last_update_utc.isoformat(),
        "next_update": crl.next_update_utc.isoformat() if crl.next_update_utc else None,
        "revoked": len(list(crl)),
        "stale": bool(crl.next_update_utc and crl.next_update_utc < now),
    }


def _ca_summary(home: Home) -> dict[str, object]:
    now = utcnow()
    root = describe_certificate(home.root_cert())
    summary: dict[str, object] = {
        "home": str(home.root),
        "root": {**root.as_json(), "key_in_home": home.ca_key_path.exists()},
        "key_encrypted": _key_encrypted(home),
    }
    inter = home.intermediate_cert()
    if inter is not None:
        info = describe_certificate(inter)
        constraints = name_constraints_of(inter)
        summary["intermediate"] = {
            **info.as_json(),
            "permitted": constraints.describe() if constraints else [],
        }
    summary["crl"] = _crl_summary(home, home.crl(), now)
    counts = {s.value: 0 for s in Status}
    with home.inventory(read_only=True) as inventory:
        for record in inventory.all():
            counts[record.status(now).value] += 1
    summary["certificates"] = counts
    return summary


@ca.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ca_show(state: AppState, as_json: bool) -> None:
    """Show the CA, its intermediate, CRL and certificate counts."""
    summary = _ca_summary(state.home)
    if as_json:
        echo_json(summary)
        return
    root = summary["root"]
    assert isinstance(root, dict)  # noqa: S101
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("home", plain(summary["home"]))
    table.add_row("root", plain(root["subject"]))
    table.add_row("  key", f"{root['key']}, "
                  + ("in the home" if root["key_in_home"] else "offline")
                  + (", encrypted" if summary["key_encrypted"] else
                     ", not readable by you" if summary["key_encrypted"] is None else ""))
    table.add_row("  valid until", str(root["not_after"]))
    table.add_row("  fingerprint", str(root["fingerprint"]))
    inter = summary.get("intermediate")
    if isinstance(inter, dict):
        table.add_row("intermediate", plain(inter["subject"]))
        table.add_row("  valid until", str(inter["not_after"]))
        if inter["permitted"]:
            table.add_row("  permitted", plain(", ".join(inter["permitted"])))
    crl = summary["crl"]
    assert isinstance(crl, dict)  # noqa: S101
    table.add_row("CRL", f"#{crl['number']}, {crl['revoked']} revoked, next update "
                  f"{crl['next_update']}" + (" [red](STALE: run `trustwire ca crl`)[/]"
                                             if crl["stale"] else ""))
    counts = summary["certificates"]
    assert isinstance(counts, dict)  # noqa: S101
    table.add_row("certificates", ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none")
    print_table(table)


@ca.command("crl")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the CRL here.")
@passphrase_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the new CRL as JSON (the crl part of `ca show --json`, and out).")
@click.pass_obj
def ca_crl(state: AppState, out: Path | None, passphrase_file: Path | None, as_json: bool) -> None:
    """Sign a fresh CRL (new number and nextUpdate) into HOME/ca/crl.pem.

    --json prints {"path", "number", "this_update", "next_update", "revoked", "stale", "out"}.
    """
    home = state.home
    crl = home.regenerate_crl(passphrase=read_passphrase(passphrase_file))
    if out is not None:
        atomic_write(out, crl.public_bytes(serialization.Encoding.PEM), mode=0o644)
    if as_json:
        echo_json({**_crl_summary(home, crl, utcnow()), "out": str(out) if out else None})
        return
    next_update = crl.next_update_utc
    click.echo(
        f"CRL #{crl_number(crl)} with {len(list(crl))} revoked certificate(s) written to "
        f"{home.crl_path}" + (f" and {out}" if out else "")
        + (f"; next update {fmt_time(next_update)}" if next_update else ""),
    )


@ca.command("export-root")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory to move the root key (and a copy of ca.crt) into.")
@click.pass_obj
def ca_export_root(state: AppState, out: Path) -> None:
    """Move the root key out of the home so it can be kept offline."""
    dest = state.home.export_root(out)
    click.echo(f"Root key moved to {dest} (0600); the intermediate keeps signing certificates.")
    click.echo("Keep it offline; the home now holds only ca.crt for the root.")


def _trust_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--store", "kinds", multiple=True, type=click.Choice([k.value for k in StoreKind]),
                     help="Only these stores (repeatable; default: system, nss and java)."),
        click.option("--nss-db", "nss_dbs", multiple=True,
                     type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
                     help="Also this NSS database directory (repeatable); Firefox profiles and "
                          "~/.pki/nssdb are found by themselves."),
        click.option("--java-store", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
                     help="Java truststore (password changeit) instead of $JAVA_HOME's cacerts "
                          "or keytool -cacerts."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
    ]):
        func = option(func)
    return func


def _run_trust(state: AppState, action: Action, kinds: tuple[str, ...], nss_dbs: tuple[Path, ...],
               java_store: Path | None, as_json: bool) -> int:
    chosen = [StoreKind(k) for k in kinds] or list(StoreKind)
    stores = trust_stores(chosen, nss_dbs=nss_dbs, java_store=java_store)

    def announce(kind: StoreKind, plan: str) -> None:
        if as_json:
            info(f"{kind.value}: will {plan}")
        elif not quiet():
            click.echo(f"{kind.value}: will {plan}")

    run = install_root if action is Action.INSTALL else uninstall_root
    report = run(state.home, stores=stores, announce=announce)
    if as_json:
        echo_json(report.as_json())
    else:
        _print_trust(report)
    return 0 if report.ok else 1


def _print_trust(report: TrustReport) -> None:
    click.echo(f"{report.action.value} {report.anchor.subject} ({report.anchor.pin}):")
    for store in report.stores:
        click.echo(f"  {store.outcome.value:<8} {store.kind.value:<6} {store.location}: {store.detail}")
        if store.hint:
            click.echo(f"  {'':<8} {'':<6} hint: {store.hint}")


@ca.command("install")
@_trust_options
@click.pass_obj
def ca_install(state: AppState, kinds: tuple[str, ...], nss_dbs: tuple[Path, ...],
               java_store: Path | None, as_json: bool) -> int:
    """Trust this home's root CA in the system store, NSS databases (Firefox, Chrome)
    and Java (as mkcert -install).

    Exit 0 when every store was done or is absent here, 1 when one failed or needs root.
    """
    return _run_trust(state, Action.INSTALL, kinds, nss_dbs, java_store, as_json)


@ca.command("uninstall")
@_trust_options
@click.pass_obj
def ca_uninstall(state: AppState, kinds: tuple[str, ...], nss_dbs: tuple[Path, ...],
                 java_store: Path | None, as_json: bool) -> int:
    """Remove exactly what `ca install` added for this root (by fingerprint); idempotent."""
    return _run_trust(state, Action.UNINSTALL, kinds, nss_dbs, java_store, as_json)
