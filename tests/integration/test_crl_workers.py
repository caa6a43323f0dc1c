"""A replaced worker keeps the rollback floor its siblings hold (fifth review).

With ``--workers N`` and ``--crl FILE`` (no home inventory), the floor lived in each
worker's memory: the supervisor replaced a dead worker with a fresh process, which took
a rolled-back CRL both running workers had refused, and admitted the revoked client on
about half the new connections. The floor is now on disk (trustwire.ops.floors): the
replacement refuses the old CRL as its siblings do, and keeps being restarted until the
file is fixed, while the sibling serves with the newest CRL.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
from pathlib import Path

from tests.peers import free_port
from tests.servers import running
from tests.trust import LOCAL, frame, read_frame
from trustwire.pki.ca import CertKind
from trustwire.pki.store import Home
from trustwire.tls.context import ClientTLS


def _served(ctx: ssl.SSLContext, port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(frame(b"hi"))
            return read_frame(tls) == b"HI"
    except (ssl.SSLError, OSError, ConnectionError):
        return False


def test_a_replaced_worker_refuses_the_crl_its_siblings_refused(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.init_ca(name="ops CA")
    home.issue("server", kind=CertKind.SERVER, sans=LOCAL)
    home.issue("alice", kind=CertKind.CLIENT)
    home.issue("bob", kind=CertKind.CLIENT)
    old = home.crl_path.read_bytes()
    copy = tmp_path / "crl.pem"
    copy.write_bytes(old)

    def install(data: bytes) -> None:
        (tmp_path / "crl.tmp").write_bytes(data)
        (tmp_path / "crl.tmp").replace(copy)

    with running(home.root, "serve", "--listen", "127.0.0.1:0",
                 "--cert", str(home.cert_path("server")), "--key", str(home.key_path("server")),
                 "--ca", str(home.ca_cert_path), "--crl", str(copy), "--workers", "2",
                 "--reload-interval", "0", "--metrics", f"127.0.0.1:{free_port()}") as server:
        server.wait_for("metrics and status on", count=2)
        home.revoke("alice")
        shutil.copyfile(home.crl_path, tmp_path / "crl.tmp")
        (tmp_path / "crl.tmp").replace(copy)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("reloaded (SIGHUP)", count=2)
        install(old)  # the rollback
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("refusing to roll back", count=2)  # both workers refuse it
        victim = int(server.said().split("pids ")[1].split(",")[0])
        os.kill(victim, signal.SIGKILL)
        server.wait_for(f"worker {victim} died")
        server.wait_for("refusing to roll back", count=3)  # the replacement refuses it too
        alice = ClientTLS.from_identity(home, "alice").context()
        bob = ClientTLS.from_identity(home, "bob").context()
        assert [_served(alice, server.port) for _ in range(12)] == [False] * 12
        assert _served(bob, server.port)  # the sibling serves, with the newest CRL
