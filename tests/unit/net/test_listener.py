"""The listener's rules over memory transports, with the sweep's clock driven by the test:
caps on unauthenticated connections, timeouts, cuts and their bound, expiry re-judging."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.memory import MemoryLink
from trustwire.authz.admission import issuer_key
from trustwire.authz.policy import Policy
from trustwire.net.listener import Limits
from trustwire.net.session import CUT_BOUND, Session
from trustwire.net.transport import TLS_CLOSED, TLS_OPEN, TLSTransport
from trustwire.server.server import Server
from trustwire.services import upper
from trustwire.tls.context import ClientTLS, ServerTLS
from trustwire.wire.channel import Channel
from trustwire.wire.events import RemoteError


class Client:
    """A client-side TLS app that collects what the server sent."""

    def __init__(self) -> None:
        self.plain = bytearray()
        self.events: list[str] = []

    def tls_connected(self, tls: TLSTransport) -> None: ...
    def tls_established(self, tls: TLSTransport) -> None:
        self.events.append("established")

    def tls_data(self, data: memoryview) -> None:
        self.plain += data

    def tls_eof(self, clean: bool) -> None:
        self.events.append(f"eof clean={clean}")

    def tls_failed(self, exc: BaseException, diagnosis: object, after_handshake: bool) -> None:
        self.events.append("failed")

    def tls_closed(self, exc: BaseException | None) -> None:
        self.events.append("closed")

    def tls_pause_writing(self) -> None: ...
    def tls_resume_writing(self) -> None: ...


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # sessions arm timers on the running loop


def server(pki: Pki, **limits: int) -> Server:
    return Server(upper, tls=pki.server_tls().context(), policy=Policy(cn={"alice", "bob"}),
                  limits=Limits(**limits), sweep_interval=0)


def connect(srv: Server, pki: Pki, name: str = "alice", source: str = "127.0.0.1",
            ) -> tuple[MemoryLink, TLSTransport, Client, Session]:
    protocol = srv._accept()
    app = Client()
    client = TLSTransport(pki.client(name).context(), app, server_side=False,
                          server_hostname="localhost")
    link = MemoryLink(client, protocol, client_address=(source, 40000))  # type: ignore[arg-type]
    session = next(s for s in srv.sessions if s.tls is protocol)
    return link, client, app, session


def test_unauthenticated_connections_are_capped_per_source_and_in_all(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki, max_handshakes=5, max_handshakes_per_source=3)
        held = [connect(srv, pki, source="10.0.0.1") for _ in range(3)]  # handshakes not pumped
        assert len(srv.unauthenticated) == 3 and srv.unauthenticated_from("10.0.0.1") == 3
        refused = connect(srv, pki, source="10.0.0.1")  # a fourth from the same host
        refused[0].pump()
        assert refused[3].tls.state is TLS_CLOSED and srv.stats.refused_unauthenticated == 1
        others = [connect(srv, pki, source=f"10.0.1.{i}") for i in range(2)]
        assert len(srv.unauthenticated) == 5
        newcomer = connect(srv, pki, source="10.0.2.1")  # full: the oldest makes room
        assert srv.stats.evicted == 1 and held[0][3].tls.closed
        assert len(srv.unauthenticated) == 5 and newcomer[3] in srv.unauthenticated
        newcomer[0].pump()  # an honest handshake completes in a few round trips
        assert newcomer[2].events[0] == "established" and newcomer[3].opened
        assert newcomer[3] not in srv.unauthenticated
        for link, *_ in held[1:] + others:
            link.pump()
        assert not srv.unauthenticated and srv.unauthenticated_from("10.0.0.1") == 0

    run(body)


def test_limits_zero_means_no_cap(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki, max_handshakes=0, max_handshakes_per_source=0)
        for _ in range(20):
            connect(srv, pki, source="10.0.0.1")
        assert len(srv.unauthenticated) == 20 and srv.stats.refused_unauthenticated == 0

    run(body)


def test_the_sweep_enforces_the_handshake_timeout(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki, handshake_timeout=10)
        _, _, _, session = connect(srv, pki)
        srv.sweep(now=session.started + 9)
        assert not session.tls.closed
        srv.sweep(now=session.started + 11)
        assert session.tls.closed and srv.stats.handshake_failures["timeout"] == 1

    run(body)


def open_session(srv: Server, pki: Pki, name: str = "alice") -> tuple[MemoryLink, Client, Session]:
    link, _, app, session = connect(srv, pki, name)
    link.pump()
    assert session.opened and app.events == ["established"]
    return link, app, session


def test_a_revoked_session_with_a_partial_frame_is_cut_at_once(pki: Pki) -> None:
    """The cut used to wait for "the current frame", which a client could keep unfinished."""

    async def body() -> None:
        srv = server(pki)
        link, app, session = open_session(srv, pki)
        client = link.client.protocol
        assert isinstance(client, TLSTransport)
        client.write(b"\x00\x00\x00\x05HELLO" + b"\x00\x00")  # a reply's worth and half a header
        link.pump()
        assert app.plain == b"\x00\x00\x00\x05HELLO"
        peer = session.peer
        assert peer is not None
        srv.gate.update(dataclasses.replace(srv.gate.trust,
                                            revoked=frozenset({(issuer_key(peer.issuer, peer.issuer_key_id), peer.serial)})))
        assert srv.rejudge() == 1
        client.write(b"\x00\x03abc")  # finishing the frame changes nothing: not processed
        link.pump()
        codec = Channel().codec
        codec.receive_data(bytes(app.plain[9:]))
        event = codec.next_event()
        assert isinstance(event, RemoteError) and event.reason.startswith(
            "access revoked: the certificate of CN=alice, OU=engineering has been revoked")
        assert session.tls.state is TLS_CLOSED and srv.stats.sessions_revoked == 1
        assert session.messages == 1

    run(body)


def test_a_cut_session_that_does_not_go_is_aborted_within_the_bound(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki)
        link, _, _ = open_session(srv, pki)
        link.server.close = lambda: None  # type: ignore[method-assign]  # a close that never completes
        srv.gate.update(dataclasses.replace(srv.gate.trust, policy=Policy(cn={"bob"})))
        started = time.monotonic()
        assert srv.rejudge() == 1
        while not link.server.aborted and time.monotonic() - started < CUT_BOUND + 1:
            await asyncio.sleep(0.05)
        assert link.server.aborted
        assert CUT_BOUND - 0.1 < time.monotonic() - started < CUT_BOUND + 0.5

    run(body)


def test_an_admitted_session_is_left_alone_by_a_reload(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki)
        _, _, alice = open_session(srv, pki, "alice")
        _, _, bob = open_session(srv, pki, "bob")
        srv.gate.update(dataclasses.replace(srv.gate.trust, policy=Policy(cn={"bob"})))
        assert srv.rejudge() == 1
        assert alice.tls.closed and not bob.tls.closed and bob.tls.state is TLS_OPEN

    run(body)


def test_the_sweep_cuts_a_session_whose_certificate_ran_out(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki)
        _, _, session = open_session(srv, pki)
        assert session.peer is not None
        ends = session.peer.not_after.timestamp()
        srv.sweep(wall=ends - 1)
        assert not session.tls.closed
        srv.sweep(wall=ends + 1)
        assert session.tls.closed and srv.stats.sessions_revoked == 1

    run(body)


def test_an_expired_crl_cuts_everyone_once(pki: Pki) -> None:
    """Fail closed: past the CRL's nextUpdate a revocation could go unseen."""

    async def body() -> None:
        srv = server(pki)
        _, _, alice = open_session(srv, pki, "alice")
        _, _, bob = open_session(srv, pki, "bob")
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert alice.peer is not None
        issuer = issuer_key(alice.peer.issuer, alice.peer.issuer_key_id)
        srv.gate.update(dataclasses.replace(srv.gate.trust, crls={issuer: soon}))
        srv.sweep(wall=soon.timestamp() - 1)
        assert not alice.tls.closed
        srv.sweep(wall=soon.timestamp() + 1)
        assert alice.tls.closed and bob.tls.closed and srv.stats.sessions_revoked == 2
        srv.gate.update(dataclasses.replace(srv.gate.trust,
                                            crls={issuer: dt.datetime.now(dt.UTC)}))
        late, _, app, session = connect(srv, pki)
        late.pump()  # new handshakes are refused too, with an internal_error alert
        assert not session.opened and srv.stats.handshake_failures["crl-expired"] == 1
        assert app.events[-1] == "closed" and "failed" in app.events

    run(body)


@pytest.mark.parametrize("bad", [-1])
def test_limits_are_validated(bad: int) -> None:
    with pytest.raises(ValueError, match="0 \\(none\\) or positive"):
        Limits(max_handshakes=bad)


def test_a_full_table_drops_from_the_largest_source_not_the_slow_honest_client(pki: Pki) -> None:
    """Review finding: dropping the oldest overall let a few churning hosts evict every
    handshake slower than their churn (a client 100 ms away never got in)."""

    async def body() -> None:
        srv = server(pki, max_handshakes=6, max_handshakes_per_source=4)
        honest = connect(srv, pki, source="192.0.2.7")  # the oldest, and alone
        flood = [connect(srv, pki, source=f"198.51.100.{i % 2}") for i in range(5)]
        for _ in range(20):  # the flood keeps reopening what gets dropped
            flood.append(connect(srv, pki, source=f"198.51.100.{len(flood) % 2}"))
        assert honest[3] in srv.unauthenticated and not honest[3].tls.closed
        assert srv.stats.evicted + srv.stats.refused_unauthenticated >= 20
        honest[0].pump()
        assert honest[2].events[0] == "established"

    run(body)


def test_an_ipv6_host_counts_as_its_64(pki: Pki) -> None:
    async def body() -> None:
        srv = server(pki, max_handshakes_per_source=3)
        for i in range(3):
            connect(srv, pki, source=f"2001:db8:1:2::{i + 1}")
        extra = connect(srv, pki, source="2001:db8:1:2:ffff::9")  # same /64
        extra[0].pump()
        assert extra[3].tls.closed and srv.stats.refused_unauthenticated == 1
        other = connect(srv, pki, source="2001:db8:1:3::1")  # another /64
        assert not other[3].tls.closed

    run(body)


def test_a_crl_from_the_future_refuses_truthfully(pki: Pki, tmp_path: Path) -> None:
    """Second review: a CRL a few minutes ahead (clock skew) was accepted, and then every
    client got bad_certificate, as if its certificate were at fault."""
    from cryptography.hazmat.primitives import serialization

    from trustwire.ops.reload import TrustSource
    from trustwire.pki.crl import build_crl
    from trustwire.pki.store import Home

    home = Home(tmp_path / "home")
    home.init_ca(name="skewed CA")
    from trustwire.pki.ca import CertKind
    from trustwire.pki.names import SubjectAltNames

    home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    home.issue("alice", kind=CertKind.CLIENT)
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    crl = build_crl(home.load_authority(), [], number=5, now=ahead)
    home.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    async def body() -> None:
        srv = Server(upper, tls=TrustSource(tls=ServerTLS.from_identity(home, "server")),
                     sweep_interval=0)
        app = Client()
        files = home.identity("alice")  # no CRL: it would refuse the server itself, truthfully
        client = TLSTransport(ClientTLS(ca=files.ca, cert=files.cert, key=files.key).context(),
                              app, server_side=False, server_hostname="localhost")
        protocol = srv._accept()
        MemoryLink(client, protocol).pump()  # type: ignore[arg-type]
        assert srv.stats.handshake_failures == {"crl-not-yet-valid": 1}
        assert "failed" in app.events

    run(body)
