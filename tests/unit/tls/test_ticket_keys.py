"""Ticket keys follow trust: contexts that trust different CAs never resume each other's
tickets; contexts with the same files do (workers, trust-neutral reloads)."""

from __future__ import annotations

import ssl

import pytest

from tests.conftest import Pki
from trustwire.errors import ConfigError
from trustwire.net.material import from_context
from trustwire.server.server import Server
from trustwire.services import upper
from trustwire.tls.context import ServerTLS


def handshake(server: ssl.SSLContext, client: ssl.SSLContext,
              session: ssl.SSLSession | None = None) -> tuple[ssl.SSLSession | None, bool, str]:
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname="localhost", session=session)
    outcome = "ok"
    for _ in range(8):
        try:
            cli.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            outcome = exc.reason or "error"
            break
        s_in.write(c_out.read())
        try:
            srv.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            c_in.write(s_out.read())
            outcome = exc.reason or "error"
            break
        c_in.write(s_out.read())
    if outcome == "ok":
        try:
            cli.read(1)  # the TLS 1.3 ticket arrives after the handshake
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            outcome = exc.reason or "error"
    return cli.session, cli.session_reused, outcome


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_contexts_trusting_other_cas_do_not_share_ticket_keys(pki: Pki,
                                                              version: ssl.TLSVersion) -> None:
    """Review finding: every ServerTLS.context() in a process had the same key, so a ticket
    from a server trusting another CA resumed on this one (plain ssl servers too)."""
    files = pki.home.identity("server")
    ours = ServerTLS(cert=files.cert, key=files.key, ca=pki.home.ca_cert_path,
                     maximum_version=version).context()
    theirs = ServerTLS(cert=files.cert, key=files.key, ca=pki.other.ca_cert_path,
                       maximum_version=version).context()
    same = ServerTLS(cert=files.cert, key=files.key, ca=pki.home.ca_cert_path,
                     maximum_version=version).context()
    foreign_alice = pki.other.identity("alice")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cafile=str(pki.home.ca_cert_path))
    client.load_cert_chain(str(foreign_alice.cert), str(foreign_alice.key))
    client.maximum_version = version
    session, _, outcome = handshake(theirs, client)
    assert outcome == "ok" and session is not None
    _, reused, outcome = handshake(ours, client, session)
    assert not reused and outcome != "ok"  # a full handshake, and our CA refuses her
    home_alice = pki.client("alice", maximum_version=version).context()
    session, _, _ = handshake(ours, home_alice)
    assert handshake(same, home_alice, session)[1]  # the same files: the same keys


def test_one_context_cannot_serve_two_listeners(pki: Pki) -> None:
    """Review finding: OpenSSL keeps one callback per context, so the second server's
    policy judged the first server's clients too."""
    import asyncio

    async def body() -> None:
        ctx = pki.server_tls().context()
        Server(upper, tls=ctx, sweep_interval=0)
        with pytest.raises(ConfigError, match="already serves another listener"):
            Server(upper, tls=ctx, sweep_interval=0)
        assert from_context(ctx).context is ctx

    asyncio.run(body())
