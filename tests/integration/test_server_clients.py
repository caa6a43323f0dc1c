"""The server and both clients on real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.servers import ServerThread
from trustwire import server as tws
from trustwire.authz import Policy
from trustwire.client import aconnect, connect
from trustwire.errors import AccessDenied, ConfigError, ConnectionClosed, HandshakeError, ReloadError
from trustwire.server import Connection, Limits, Server
from trustwire.services import echo, upper
from trustwire.tls.context import ClientTLS

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
HOSTS = ["127.0.0.1", "::1"]


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def upper_server(pki: Pki, tmp_path: Path):  # type: ignore[no-untyped-def]
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls()),
                      audit_path=tmp_path / "audit.jsonl") as st:
        yield st


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("version", VERSIONS)
def test_blocking_client(pki: Pki, host: str, version: ssl.TLSVersion) -> None:
    if host == "::1" and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls()), host=host) as st, \
            connect(host, st.port, tls=pki.client("alice", maximum_version=version)) as client:
        assert client.request(b"Hello, server!") == b"HELLO, SERVER!"
        assert client.request(b"") == b""
        assert client.version == ("TLSv1.3" if version is ssl.TLSVersion.TLSv1_3 else "TLSv1.2")
        assert client.peer is not None and client.peer.common_name == "server"


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("version", VERSIONS)
def test_async_client(pki: Pki, host: str, version: ssl.TLSVersion) -> None:
    if host == "::1" and not has_ipv6():
        pytest.skip("no IPv6 loopback")

    async def talk(port: int) -> list[bytes]:
        client = await aconnect(host, port, tls=pki.client("alice", maximum_version=version))
        async with client:
            return [await client.request(m) for m in (b"one", b"two", b"x" * 70_000)]

    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls()), host=host) as st:
        assert asyncio.run(talk(st.port)) == [b"ONE", b"TWO", b"X" * 70_000]


def test_a_thousand_concurrent_clients_get_their_own_replies(pki: Pki) -> None:
    async def client(port: int, index: int, gate: asyncio.Semaphore,
                     all_connected: asyncio.Event, connected: list[int]) -> None:
        async with gate:
            c = await aconnect("127.0.0.1", port, tls=pki.client("alice"), timeout=60)
        connected.append(index)
        if len(connected) == 1000:
            all_connected.set()
        await all_connected.wait()  # all 1000 are open at the same time
        async with c:
            for round_ in range(3):
                message = f"client {index} round {round_}".encode()
                assert await c.request(message) == message.upper()

    async def main(port: int) -> None:
        gate = asyncio.Semaphore(100)  # bound the handshakes in flight, not the connections
        done = asyncio.Event()
        connected: list[int] = []
        await asyncio.wait_for(asyncio.gather(
            *(client(port, i, gate, done, connected) for i in range(1000))), 120)

    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls())) as st:
        tws_run(main(st.port))
        assert st.server is not None
        assert st.server.stats.handshakes_ok == 1000
        assert st.server.stats.refused == 0


def tws_run(coro: object) -> None:
    tws.run(coro)  # type: ignore[arg-type]


def test_ten_mebibyte_message(pki: Pki) -> None:
    big = bytes(range(256)) * (10 * 4096)  # 10 MiB
    limits = Limits(max_frame=16 << 20)
    with ServerThread(lambda audit: Server(echo, tls=pki.server_tls(), limits=limits)) as st, \
            connect("127.0.0.1", st.port, tls=pki.client("alice"), max_frame=16 << 20,
                    timeout=60) as client:
        assert client.request(big) == big


def test_stream_handler_sees_the_verified_identity(pki: Pki) -> None:
    async def whoami(conn: Connection) -> None:
        assert conn.peer is not None
        async for message in conn:
            await conn.send(f"{conn.peer.common_name}/{conn.peer.organizational_units[0]}: ".encode()
                            + message)

    with ServerThread(lambda audit: Server(whoami, tls=pki.server_tls())) as st:
        with connect("127.0.0.1", st.port, tls=pki.client("alice")) as a:
            assert a.request(b"hi") == b"alice/engineering: hi"
        with connect("127.0.0.1", st.port, tls=pki.client("bob")) as b:
            assert b.request(b"hi") == b"bob/sales: hi"


def test_handler_error_closes_only_that_connection(pki: Pki, tmp_path: Path) -> None:
    async def fragile(conn: Connection) -> None:
        async for message in conn:
            if message == b"boom":
                raise RuntimeError("kaboom")
            await conn.send(message)

    with ServerThread(lambda audit: Server(fragile, tls=pki.server_tls()),
                      audit_path=tmp_path / "a.jsonl") as st:
        with connect("127.0.0.1", st.port, tls=pki.client("alice")) as bad:
            bad.send(b"boom")
            with pytest.raises(Exception, match="internal error in the service"):
                bad.recv()
        with connect("127.0.0.1", st.port, tls=pki.client("bob")) as good:
            assert good.request(b"still here") == b"still here"
        event = st.wait_for_event(lambda e: e["event"] == "closed" and "kaboom" in e.get("reason", ""))
        assert event["cn"] == "alice"


def test_handler_shapes_are_checked(pki: Pki) -> None:
    def not_async(conn: object) -> None: ...

    with pytest.raises(ConfigError, match="must be an async function"):
        Server(not_async, tls=pki.server_tls())  # type: ignore[arg-type]


# -- refusals: the right diagnosis on both sides, and the server goes on serving -----------------

CLIENT_REFUSALS = [
    ("none", "client-cert-missing"),
    ("foreign", "unknown-ca"),
    ("expired", "expired"),
    ("future", "not-yet-valid"),
    ("mallory", "revoked"),
    ("server", "wrong-eku"),
]


def _client_tls(pki: Pki, name: str, version: ssl.TLSVersion) -> ClientTLS:
    if name == "none":
        return ClientTLS(ca=pki.home.ca_cert_path, maximum_version=version)
    if name == "foreign":
        return ClientTLS(ca=pki.home.ca_cert_path, cert=pki.other.cert_path("alice"),
                         key=pki.other.key_path("alice"), maximum_version=version)
    return pki.client(name, maximum_version=version)


@pytest.mark.parametrize("version", VERSIONS)
def test_client_refusal_matrix(pki: Pki, upper_server: ServerThread, version: ssl.TLSVersion) -> None:
    for name, reason in CLIENT_REFUSALS:
        with pytest.raises(HandshakeError) as info, \
                connect("127.0.0.1", upper_server.port, tls=_client_tls(pki, name, version)) as c:
            c.request(b"hello")
        assert info.value.diagnosis.reason == reason, (name, info.value.diagnosis)
        assert info.value.hint, name
        upper_server.wait_for_event(
            lambda e, r=reason: e["event"] == "handshake_failed" and e["reason"] == r)
        with connect("127.0.0.1", upper_server.port, tls=pki.client("alice")) as ok:
            assert ok.request(b"still serving") == b"STILL SERVING"


@pytest.mark.parametrize("version", VERSIONS)
def test_async_client_reports_refusals_too(pki: Pki, upper_server: ServerThread,
                                           version: ssl.TLSVersion) -> None:
    async def attempt(name: str) -> str:
        try:
            c = await aconnect("127.0.0.1", upper_server.port, tls=_client_tls(pki, name, version))
            await c.request(b"x")
        except HandshakeError as exc:
            return exc.diagnosis.reason
        return "accepted"

    for name, reason in CLIENT_REFUSALS:
        assert asyncio.run(attempt(name)) == reason, name


@pytest.mark.parametrize(("server_name", "reason"), [("elsewhere", "hostname-mismatch"),
                                                     ("alice", "wrong-eku"),
                                                     ("expired-server", "expired")])
def test_server_certificate_refusals(pki: Pki, tmp_path: Path, server_name: str, reason: str) -> None:
    if reason != "hostname-mismatch":  # a server cannot know the names it is reached by
        expected = "is not a server certificate" if reason == "wrong-eku" else "does not verify against"
        with pytest.raises(ReloadError, match=expected):  # files are checked
            Server(upper, tls=pki.server_tls(server_name))
    # A ready-made context is taken as it is: the client must say what is wrong with it.
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(server_name).context()),
                      audit_path=tmp_path / "a.jsonl") as st:
        with pytest.raises(HandshakeError) as info:
            connect("localhost", st.port, tls=pki.client("alice"))
        assert info.value.diagnosis.reason == reason
        assert info.value.diagnosis.side == "client"
        event = st.wait_for_event(lambda e: e["event"] == "handshake_failed")
        assert "refused by the client" in event["diagnosis"]


@pytest.mark.parametrize("version", VERSIONS)
def test_policy_denial_reaches_the_client_as_a_refusal(pki: Pki, tmp_path: Path,
                                                       version: ssl.TLSVersion) -> None:
    policy = Policy.build(cn=["bob"], uri=["spiffe://example/never"])
    with ServerThread(lambda audit: Server(upper, tls=pki.server_tls(), policy=policy),
                      audit_path=tmp_path / "a.jsonl") as st:
        with pytest.raises(AccessDenied) as info, \
                connect("127.0.0.1", st.port, tls=pki.client("alice", maximum_version=version)) as c:
            c.request(b"let me in")
        # A TLS alert (certificate_unknown) in the handshake, as stunnel refuses: the client
        # names its own identity; the server's reasons stay in its audit log.
        assert info.value.diagnosis.reason == "policy-denied"
        assert info.value.diagnosis.side == "server"
        assert "CN=alice, OU=engineering" in info.value.diagnosis.what
        assert "bob" not in str(info.value)
        denied = st.wait_for_event(lambda e: e["event"] == "access_denied")
        assert denied["cn"] == "alice" and "no allow rule matches: allow CN bob" in denied["reason"]
        with connect("127.0.0.1", st.port, tls=pki.client("bob", maximum_version=version)) as bob:
            assert bob.request(b"hi") == b"HI"
        ok = st.wait_for_event(lambda e: e["event"] == "handshake_ok" and e.get("cn") == "bob")
        assert ok["fingerprint"] and ok["serial"]


def test_no_client_auth_serves_plain_tls_and_refuses_policies(pki: Pki) -> None:
    tls = pki.server_tls(client_auth=False)
    with pytest.raises(ConfigError, match="needs client certificates"):
        Server(upper, tls=tls, policy=Policy.build(cn=["alice"]))
    with ServerThread(lambda audit: Server(upper, tls=tls)) as st, \
            connect("localhost", st.port, tls=ClientTLS(ca=pki.home.ca_cert_path)) as c:
        assert c.request(b"anon") == b"ANON"


def test_closed_client_raises_closed(pki: Pki, upper_server: ServerThread) -> None:
    client = connect("127.0.0.1", upper_server.port, tls=pki.client("alice"))
    client.close()
    client.close()  # idempotent
    with pytest.raises(ConnectionClosed):
        client.request(b"x")
