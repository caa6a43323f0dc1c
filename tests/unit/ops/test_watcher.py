"""The file watcher does not lose a change that lands while a reload is running."""

from __future__ import annotations

import asyncio

from trustwire.net.material import Material
from trustwire.ops.reload import TrustSource, Watcher
from trustwire.pki.ca import CertKind
from trustwire.pki.store import Home
from trustwire.server.server import Server
from trustwire.services import upper
from trustwire.tls.context import ServerTLS


class WriterDuringBuild:
    """A source whose build is overtaken by the CA writing the next CRL (a second revocation)."""

    def __init__(self, real: TrustSource, home: Home) -> None:
        self.real = real
        self.home = home

    def build(self, current: Material | None = None) -> Material:
        material = self.real.build(current)
        self.home.issue("late", kind=CertKind.CLIENT)
        self.home.revoke("late")  # crl.pem changes after it was read
        return material


def test_a_change_during_a_reload_is_seen_at_the_next_poll(home: Home) -> None:
    from trustwire.pki.names import SubjectAltNames

    home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))

    async def body() -> None:
        server = Server(upper, tls=ServerTLS.from_identity(home, "server"), sweep_interval=0)
        reloader = server.reloader
        assert reloader is not None
        watcher = Watcher(reloader, interval=60)
        real = reloader.source
        reloader.source = WriterDuringBuild(real, home)  # type: ignore[assignment]
        assert watcher.reload("test").ok
        assert watcher.changed() == ["crl.pem"]  # not taken for the CRL just loaded
        reloader.source = real
        assert watcher.reload("changed on disk: crl.pem").ok
        assert watcher.changed() == []
        assert server.material.crl is not None and server.material.crl.revoked == 1

    asyncio.run(body())
