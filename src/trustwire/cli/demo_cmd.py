"""``trustwire demo``: the whole story in a throw-away home."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from trustwire.cli.common import out_console
from trustwire.pki.ca import CertKind, utcnow
from trustwire.pki.crl import RevocationReason
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home

__all__ = ["demo"]


def _step(text: str) -> None:
    out_console().print(f"\n[bold cyan]==>[/] {text}")


def run_pki_demo(home: Home) -> None:
    """Create a CA, a server and a client certificate, list, revoke, list again."""
    console = out_console()
    _step(f"trustwire ca init            (home: {home.root})")
    home.init_ca(name="trustwire demo CA")
    console.print(f"root CA written to {home.ca_cert_path}; its key is 0600")
    _step("trustwire cert issue server --server --dns localhost --ip 127.0.0.1")
    server = home.issue("server", kind=CertKind.SERVER,
                        sans=SubjectAltNames.parse(dns=["localhost"], ips=["127.0.0.1"]))
    console.print(f"server certificate, serial {server.serial_hex[:16]}…, names "
                  f"{', '.join(server.sans.describe())}")
    _step("trustwire cert issue alice --client")
    alice = home.issue("alice", kind=CertKind.CLIENT)
    console.print(f"client certificate for alice, serial {alice.serial_hex[:16]}…")
    _step("trustwire cert issue mallory --client")
    home.issue("mallory", kind=CertKind.CLIENT)
    _step("trustwire cert revoke mallory --reason key-compromise")
    home.revoke("mallory", reason=RevocationReason.KEY_COMPROMISE)
    console.print(f"CRL regenerated: {home.crl_path}")
    _step("trustwire cert list")
    now = utcnow()
    with home.inventory() as inventory:
        records = inventory.all()
    for record in records:
        console.print(f"  {record.name:<8} {record.kind.value:<7} {record.status(now).value:<14} "
                      f"expires {record.not_after:%Y-%m-%d}")


@click.command()
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Use this (new) directory as the home and keep it afterwards.")
def demo(keep: Path | None) -> None:
    """Run the trustwire tour in a temporary home."""
    if keep is not None:
        run_pki_demo(Home(keep))
        return
    with tempfile.TemporaryDirectory(prefix="trustwire-demo-") as tmp:
        run_pki_demo(Home(Path(tmp) / "home"))
    out_console().print("\nDone; the temporary home was removed.")
