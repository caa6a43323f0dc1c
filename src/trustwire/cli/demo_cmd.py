"""``trustwire demo``: the whole story in a throw-away home.

The tutorial's "Hello, server!" client and uppercase server, done right: a CA,
a server certificate for localhost, a client certificate for alice, the
upper service over mutual TLS, and two clients refused with their diagnoses
(one without a certificate, one whose certificate was revoked).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

import click

from trustwire.cli.common import out_console
from trustwire.client.blocking import connect
from trustwire.errors import HandshakeError
from trustwire.pki.ca import CertKind, utcnow
from trustwire.pki.crl import RevocationReason
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.server.server import Server, run
from trustwire.services import upper
from trustwire.tls.context import ClientTLS, ServerTLS

__all__ = ["demo"]


def _step(text: str) -> None:
    out_console().print(f"\n[bold cyan]==>[/] {text}")


def run_pki_demo(home: Home) -> None:
    """Create a CA, a server and two client certificates, revoke one, list them."""
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
    _step("trustwire cert issue mallory --client && trustwire cert revoke mallory --reason key-compromise")
    home.issue("mallory", kind=CertKind.CLIENT)
    home.revoke("mallory", reason=RevocationReason.KEY_COMPROMISE)
    console.print(f"mallory revoked; CRL regenerated: {home.crl_path}")
    _step("trustwire cert list")
    now = utcnow()
    with home.inventory() as inventory:
        records = inventory.all()
    for record in records:
        console.print(f"  {record.name:<8} {record.kind.value:<7} {record.status(now).value:<14} "
                      f"expires {record.not_after:%Y-%m-%d}")


class _Background:
    """The upper service on a free loopback port, in a thread with its own event loop."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            server = Server(upper, tls=ServerTLS.from_identity(self.home, "server"))
            (_, self.port), *_ = await server.start("127.0.0.1", 0)
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await server.close(grace=2)

        try:
            run(serve)
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def start(self) -> int:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def run_server_demo(home: Home) -> None:
    console = out_console()
    background = _Background(home)
    port = background.start()
    try:
        _step(f"trustwire serve --service upper --listen 127.0.0.1:{port} --identity server")
        console.print(f"listening on 127.0.0.1:{port}: mutual TLS, client certificates required")
        _step(f'trustwire send localhost:{port} "Hello, server!" --identity alice')
        with connect("localhost", port, tls=ClientTLS.from_identity(home, "alice")) as client:
            reply = client.request(b"Hello, server!")
            console.print(f"Response from server: {reply.decode()}", markup=False)
            console.print(f"(server proved it is {client.peer}; we proved we are alice; "
                          f"{client.version})", markup=False)
        for title, tls in (
            ("a client without a certificate", ClientTLS(ca=home.ca_cert_path)),
            ("mallory, whose certificate was revoked", ClientTLS.from_identity(home, "mallory")),
        ):
            _step(f"{title}:")
            try:
                with connect("localhost", port, tls=tls) as refused:
                    refused.request(b"Hello, server!")
                console.print("[red]unexpectedly accepted[/]")
            except HandshakeError as exc:
                console.print(f"refused ({exc.diagnosis.reason}): {exc.diagnosis.sentence()}",
                              markup=False)
                if exc.diagnosis.fix:
                    console.print(f"fix: {exc.diagnosis.fix}", markup=False)
    finally:
        background.stop()
        console.print("\nserver stopped")


@click.command()
@click.option("--keep", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Use this (new) directory as the home and keep it afterwards.")
def demo(keep: Path | None) -> None:
    """Run the trustwire tour in a temporary home."""
    if keep is not None:
        home = Home(keep)
        run_pki_demo(home)
        run_server_demo(home)
        return
    with tempfile.TemporaryDirectory(prefix="trustwire-demo-") as tmp:
        home = Home(Path(tmp) / "home")
        run_pki_demo(home)
        run_server_demo(home)
    out_console().print("Done; the temporary home was removed.")
