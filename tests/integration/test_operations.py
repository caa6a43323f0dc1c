"""Day-two operations: reloads without drops, revocation that cuts live sessions, renewal,
metrics and status. Real processes, real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.peers import free_port
from tests.servers import running
from trustwire.client import aconnect, connect
from trustwire.errors import HandshakeError, StreamError, TrustwireError
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.renewal import renew_if_due
from trustwire.pki.store import Home
from trustwire.server import run
from trustwire.tls.context import ClientTLS

LOCAL = SubjectAltNames.parse(dns=["localhost"], ips=["127.0.0.1"])


@pytest.fixture
def ops_home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    home.init_ca(name="ops CA")
    home.issue("server", kind=CertKind.SERVER, sans=LOCAL)
    for name in ("alice", "bob", "carol"):
        home.issue(name, kind=CertKind.CLIENT)
    return home


def client(home: Home, name: str) -> ClientTLS:
    return ClientTLS.from_identity(home, name)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback test URL
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def status(server: object) -> dict:  # type: ignore[type-arg]
    return json.loads(get(server.metrics_url() + "status")[1])  # type: ignore[attr-defined]


def serial_seen(home: Home, port: int) -> str:
    """The serial of the certificate the server presents now (a client without the CRL:
    some tests put a foreign CRL in the home on purpose)."""
    carol = home.identity("carol")
    with connect("localhost", port, tls=ClientTLS(ca=carol.ca, cert=carol.cert, key=carol.key)) as c:
        assert c.peer is not None
        return c.peer.serial_hex


@pytest.fixture
def serve(ops_home: Home, tmp_path: Path) -> Iterator[object]:
    with running(ops_home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--reload-interval", "0.3", "--metrics", "127.0.0.1:0",
                 "--audit-log", str(tmp_path / "audit.jsonl")) as server:
        yield server


def audit(tmp_path: Path) -> list[dict]:  # type: ignore[type-arg]
    path = tmp_path / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_certificate_replaced_under_a_hundred_busy_clients(ops_home: Home, serve: object) -> None:
    port = serve.port  # type: ignore[attr-defined]
    old_serial = serial_seen(ops_home, port)
    counts = [0] * 100
    errors: list[str] = []
    replaced = asyncio.Event()

    async def worker(index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            conn = await aconnect("127.0.0.1", port, tls=client(ops_home, "alice"), timeout=30)
        after = 0
        try:
            while after < 20:
                message = f"{index}:{counts[index]}".encode()
                if await conn.request(message) != message.upper():
                    errors.append(f"client {index} got a wrong reply")
                counts[index] += 1
                if replaced.is_set():
                    after += 1
                await asyncio.sleep(0.01)
        except TrustwireError as exc:
            errors.append(f"client {index}: {exc}")
        finally:
            await conn.close()

    async def main() -> None:
        gate = asyncio.Semaphore(50)
        tasks = [asyncio.create_task(worker(i, gate)) for i in range(100)]
        await asyncio.sleep(1.5)
        await asyncio.to_thread(ops_home.renew, "server")  # new key and certificate on disk
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if status(serve)["reloads"]["ok"] >= 1:
                break
            await asyncio.sleep(0.1)
        replaced.set()
        await asyncio.gather(*tasks)

    run(main())
    assert errors == []
    assert all(c >= 20 for c in counts)  # every client kept going through the reload
    new_serial = serial_seen(ops_home, port)
    assert new_serial != old_serial
    with ops_home.inventory() as inventory:
        current = inventory.current("server")
    assert current is not None and current.serial_hex == new_serial
    assert status(serve)["certificate"]["serial"] == new_serial


@pytest.mark.parametrize("damage", ["key from another identity", "garbage certificate",
                                    "CRL from another CA"])
def test_broken_reload_keeps_the_old_state(ops_home: Home, serve: object, tmp_path: Path,
                                           damage: str) -> None:
    port = serve.port  # type: ignore[attr-defined]
    before = serial_seen(ops_home, port)
    ident = ops_home.identity("server")
    if damage == "key from another identity":
        shutil.copy(ops_home.key_path("alice"), ident.key)
        expected = "does not belong to the certificate"
    elif damage == "garbage certificate":
        ident.cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        expected = "server.crt"
    else:
        other = Home(tmp_path / "other")
        other.init_ca(name="another CA")
        shutil.copy(other.crl_path, ops_home.crl_path)
        expected = "is not signed by this CA"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and status(serve)["reloads"]["failed"] < 1:
        time.sleep(0.1)
    report = status(serve)
    assert report["reloads"]["failed"] >= 1 and report["reloads"]["ok"] == 0
    assert expected in report["reloads"]["last_error"]
    serve.wait_for("failed, keeping the previous certificates")  # type: ignore[attr-defined]
    assert serial_seen(ops_home, port) == before  # still serving, with the old certificate
    time.sleep(1.2)
    failed = [e for e in audit(tmp_path) if e["event"] == "reload_failed"]
    assert failed and expected in failed[0]["error"]


def _hold(home: Home, name: str, port: int, outcome: dict[str, str], stop: threading.Event) -> None:
    try:
        with connect("127.0.0.1", port, tls=client(home, name), timeout=10) as c:
            while not stop.is_set():
                c.request(name.encode())
                time.sleep(0.05)
            outcome[name] = "still connected"
    except (StreamError, HandshakeError) as exc:
        outcome[name] = f"cut: {exc}"


def test_revoked_client_is_cut_within_one_reload(ops_home: Home, serve: object,
                                                 tmp_path: Path) -> None:
    port = serve.port  # type: ignore[attr-defined]
    outcome: dict[str, str] = {}
    stop = threading.Event()
    threads = [threading.Thread(target=_hold, args=(ops_home, n, port, outcome, stop))
               for n in ("alice", "bob")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    revoked_at = time.monotonic()
    ops_home.revoke("alice")
    deadline = time.monotonic() + 5
    while "alice" not in outcome and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - revoked_at
    stop.set()
    for t in threads:
        t.join(10)
    assert outcome["alice"].startswith("cut:") and "has been revoked" in outcome["alice"]
    assert elapsed < 2.0  # one 0.3 s reload interval plus settling, not a restart
    assert outcome["bob"] == "still connected"
    time.sleep(1.2)
    cut = [e for e in audit(tmp_path) if e["event"] == "access_revoked"]
    assert len(cut) == 1 and cut[0]["cn"] == "alice"
    assert cut[0]["reason"].startswith("the certificate of CN=alice has been revoked (serial ")
    assert cut[0]["code"] == "revoked"
    with pytest.raises(HandshakeError) as info:
        connect("127.0.0.1", port, tls=client(ops_home, "alice")).request(b"again")
    assert info.value.diagnosis.reason == "revoked"


def test_keep_revoked_sessions(ops_home: Home) -> None:
    with running(ops_home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--reload-interval", "0.3", "--keep-revoked-sessions") as server:
        outcome: dict[str, str] = {}
        stop = threading.Event()
        holder = threading.Thread(target=_hold, args=(ops_home, "alice", server.port, outcome, stop))
        holder.start()
        time.sleep(0.5)
        ops_home.revoke("alice")
        server.wait_for("reloaded (changed on disk")
        time.sleep(0.5)
        stop.set()
        holder.join(10)
        assert outcome["alice"] == "still connected"
        with pytest.raises(HandshakeError):
            connect("127.0.0.1", server.port, tls=client(ops_home, "alice")).request(b"new")


def test_sighup_reloads_the_policy_and_cuts_who_it_no_longer_allows(ops_home: Home,
                                                                     tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[allow]\ncn = ["alice"]\n')
    with running(ops_home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--reload-interval", "0", "--policy", str(policy)) as server:
        outcome: dict[str, str] = {}
        stop = threading.Event()
        holder = threading.Thread(target=_hold, args=(ops_home, "alice", server.port, outcome, stop))
        holder.start()
        time.sleep(0.5)
        policy.write_text('[allow]\ncn = ["bob"]\n')
        time.sleep(0.5)
        assert "alice" not in outcome  # no polling: nothing happens until SIGHUP
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("reloaded (SIGHUP); 1 session(s) cut")
        holder.join(10)
        stop.set()
        assert "CN=alice is not allowed by the access policy" in outcome["alice"]
        with connect("127.0.0.1", server.port, tls=client(ops_home, "bob")) as c:
            assert c.request(b"hi") == b"HI"


def test_renewer_replaces_a_short_lived_certificate_without_restart(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.init_ca(name="renew CA")
    now = dt.datetime.now(dt.UTC)
    # a two-hour certificate issued 90 minutes ago: a quarter of its life is left
    home.issue("server", kind=CertKind.SERVER, sans=LOCAL, lifetime=dt.timedelta(hours=2),
               now=now - dt.timedelta(minutes=90))
    home.issue("carol", kind=CertKind.CLIENT)
    home.issue("fresh", kind=CertKind.CLIENT, lifetime=dt.timedelta(hours=2))
    assert renew_if_due(home, "fresh", before=1 / 3) is None  # a fresh one is not due
    assert renew_if_due(home, "fresh", before=1 / 3, now=now + dt.timedelta(minutes=30)) is None
    with running(home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--reload-interval", "0.3") as server:
        pid = server.proc.pid
        first = serial_seen(home, server.port)
        renewer = subprocess.Popen(  # the daemon, as a systemd service would run it
            [sys.executable, "-m", "trustwire", "--home", str(home.root), "renew", "--identity",
             "server", "--before", "1/3", "--interval", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            server.wait_for("reloaded (changed on disk", timeout=15)
        finally:
            renewer.send_signal(signal.SIGTERM)
            out, err = renewer.communicate(timeout=10)
        assert renewer.returncode == 0, err
        assert out.startswith("renewed server: serial")
        with home.inventory() as inventory:
            renewed = inventory.current("server")
        assert renewed is not None and renewed.lifetime >= dt.timedelta(hours=2)
        assert serial_seen(home, server.port) == renewed.serial_hex != first
        assert server.proc.pid == pid and server.proc.poll() is None  # no restart


def test_renew_command_once(ops_home: Home, tmp_path: Path) -> None:
    from tests.conftest import run_trustwire

    now = dt.datetime.now(dt.UTC)
    ops_home.issue("job", kind=CertKind.CLIENT, lifetime=dt.timedelta(hours=3),
                   now=now - dt.timedelta(hours=2, minutes=30))
    result = run_trustwire("--home", ops_home.root, "renew", "--identity", "job", "--once")
    assert result.returncode == 0 and result.stdout.startswith("renewed job: serial"), result.stderr
    again = run_trustwire("--home", ops_home.root, "renew", "--identity", "job", "--once")
    assert again.returncode == 0 and "job is not due: renewal at" in again.stdout
    missing = run_trustwire("--home", ops_home.root, "renew", "--identity", "ghost", "--once")
    assert missing.returncode == 1 and missing.stderr.startswith("error: there is no current")
    bad = run_trustwire("--home", ops_home.root, "renew", "--identity", "job", "--before", "3")
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_metrics_and_status(ops_home: Home, serve: object, tmp_path: Path) -> None:
    port = serve.port  # type: ignore[attr-defined]
    other = Home(tmp_path / "stranger")
    other.init_ca(name="stranger CA")
    other.issue("eve", kind=CertKind.CLIENT)
    for _ in range(3):
        with connect("127.0.0.1", port, tls=client(ops_home, "bob")) as c:
            assert c.request(b"ping") == b"PING"
    for tls in (ClientTLS(ca=ops_home.ca_cert_path),
                ClientTLS(ca=ops_home.ca_cert_path, cert=other.cert_path("eve"),
                          key=other.key_path("eve"))):
        with pytest.raises(HandshakeError):
            connect("127.0.0.1", port, tls=tls)
    held = connect("127.0.0.1", port, tls=client(ops_home, "alice"))
    assert held.request(b"x") == b"X"
    url = serve.metrics_url()  # type: ignore[attr-defined]
    code, text = get(url + "metrics")
    assert code == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"|{k}={v}" for k, v in sorted(sample.labels.items())
                                        if k != "role")
            samples[key] = sample.value
    assert samples["trustwire_handshakes_total"] == 4
    assert samples["trustwire_handshake_failures_total|reason=client-cert-missing"] == 1
    assert samples["trustwire_handshake_failures_total|reason=unknown-ca"] == 1
    assert samples["trustwire_messages_total"] == 4
    assert samples["trustwire_bytes_total|direction=in"] == 3 * (4 + 4) + (4 + 1)  # frames in
    assert samples["trustwire_bytes_total|direction=out"] == 3 * (4 + 4) + (4 + 1)
    assert samples["trustwire_active_connections"] == 1
    assert samples["trustwire_handshake_duration_seconds_count"] == 4
    assert samples["trustwire_certificate_expiry_timestamp_seconds"] > time.time()
    assert samples["trustwire_reloads_total|result=failed"] == 0
    report = status(serve)
    live = [c for c in report["connections"] if c["open"]]
    assert [c["cn"] for c in live] == ["alice"]
    assert report["certificate"]["subject"] == "CN=server"
    assert report["crl"]["revoked"] == 0 and report["pid"] == serve.proc.pid  # type: ignore[attr-defined]
    assert get(url + "healthz") == (200, "ok\n")
    assert get(url + "nope")[0] == 404
    held.close()


def test_revoke_dry_run_lists_live_connections(ops_home: Home, serve: object) -> None:
    from tests.conftest import run_trustwire

    held = connect("127.0.0.1", serve.port, tls=client(ops_home, "bob"))  # type: ignore[attr-defined]
    assert held.request(b"hi") == b"HI"
    result = run_trustwire("--home", ops_home.root, "cert", "revoke", "bob", "--dry-run",
                           "--status", serve.metrics_url() + "status")  # type: ignore[attr-defined]
    held.close()
    assert result.returncode == 0, result.stderr
    assert "Would revoke bob" in result.stdout and "1 live connection(s) would be cut" in result.stdout
    with ops_home.inventory() as inventory:
        assert inventory.current("bob") is not None  # nothing changed


def test_tunnel_session_is_cut_at_once_when_revoked(ops_home: Home, tmp_path: Path) -> None:
    import socket as sock

    backend = sock.create_server(("127.0.0.1", 0))
    accepted: list[sock.socket] = []
    threading.Thread(target=lambda: accepted.append(backend.accept()[0]), daemon=True).start()
    with running(ops_home.root, "tunnel", "server", "--listen", "127.0.0.1:0", "--target",
                 f"127.0.0.1:{backend.getsockname()[1]}", "--identity", "server",
                 "--reload-interval", "0.3") as tunnel:
        raw = sock.create_connection(("127.0.0.1", tunnel.port), timeout=10)
        tls = client(ops_home, "alice").context().wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"hello")
        time.sleep(0.3)
        ops_home.revoke("alice")
        tunnel.wait_for("1 session(s) cut")
        assert tls.recv(100) == b""  # the tunnel closed us
        accepted[0].settimeout(5)
        assert accepted[0].recv(100) == b"hello"
        assert accepted[0].recv(100) == b""  # and the target side too
    backend.close()


def test_workers_all_reload_and_report_on_their_own_ports(ops_home: Home) -> None:
    base = free_port()
    with running(ops_home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--workers", "2", "--reload-interval", "0", "--metrics",
                 f"127.0.0.1:{base}") as server:
        server.wait_for("metrics and status on", count=2)
        pids = {json.loads(get(f"http://127.0.0.1:{base + i}/status")[1])["pid"] for i in (0, 1)}
        assert len(pids) == 2
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("reloaded (SIGHUP)", count=2)  # the parent's SIGHUP reached both
        for i in (0, 1):
            report = json.loads(get(f"http://127.0.0.1:{base + i}/status")[1])
            assert report["reloads"]["ok"] == 1


def test_metrics_listen_must_be_loopback(ops_home: Home) -> None:
    from tests.conftest import run_trustwire

    result = run_trustwire("--home", ops_home.root, "serve", "--listen", "127.0.0.1:0",
                           "--identity", "server", "--metrics", "0.0.0.0:9100")
    assert result.returncode == 2 and "--unsafe-metrics-listen" in result.stderr

