"""Tunnel interop: stunnel on either side; PROXY v2 accepted by haproxy; TLVs carry the identity."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Pki, require_tool
from tests.peers import daemon, free_port, nginx_config
from tests.servers import listener_process
from trustwire.wire.events import NEED_DATA
from trustwire.wire.proxyv2 import ProxyDecoder, ProxyHeader

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    nginx = require_tool("nginx")
    tmp = tmp_path_factory.mktemp("nginx")
    root = tmp / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello from nginx\n")
    port = free_port()
    with daemon([nginx, "-c", str(nginx_config(tmp, port=port, root=root))], port=port):
        yield port


def http_get(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("curl"), "-sS", "--max-time", "20", *extra,
                           f"http://127.0.0.1:{port}/hello.txt"],
                          capture_output=True, text=True, timeout=30, check=False)


def stunnel_conf(tmp: Path, name: str, body: str) -> Path:
    path = tmp / f"{name}.conf"
    path.write_text(f"foreground = yes\npid =\noutput = {tmp}/{name}.log\n"
                    f"sslVersionMin = TLSv1.2\n[tw]\n{body}\n")
    return path


def test_stunnel_client_to_trustwire_tunnel_server(pki: Pki, web: int, tmp_path: Path) -> None:
    stunnel = require_tool("stunnel4")
    alice = pki.home.identity("alice")
    with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{web}", "--identity", "server",
                          "--allow-cn", "alice") as (_, tw_port):
        port = free_port()
        conf = stunnel_conf(tmp_path, "client", f"""client = yes
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{tw_port}
cert = {alice.cert}
key = {alice.key}
CAfile = {alice.ca}
verifyChain = yes
checkHost = localhost""")
        with daemon([stunnel, str(conf)], port=port):
            result = http_get(port)
    assert result.stdout == "hello from nginx\n", result.stderr


def test_trustwire_tunnel_client_to_stunnel_server(pki: Pki, web: int, tmp_path: Path) -> None:
    stunnel = require_tool("stunnel4")
    server = pki.home.identity("server")
    port = free_port()
    conf = stunnel_conf(tmp_path, "server", f"""accept = 127.0.0.1:{port}
connect = 127.0.0.1:{web}
cert = {server.cert}
key = {server.key}
CAfile = {server.ca}
verifyChain = yes
requireCert = yes""")
    with daemon([stunnel, str(conf)], port=port), \
            listener_process(pki.home.root, "tunnel", "client", "--listen", "127.0.0.1:0",
                             "--target", f"localhost:{port}", "--identity", "alice",
                             "--allow-cn", "server") as (_, tw_port):
        result = http_get(tw_port)
    assert result.stdout == "hello from nginx\n", result.stderr
    log = (tmp_path / "server.log").read_text()
    assert "Certificate accepted at depth=0: CN=alice" in log, log  # stunnel verified our identity


def test_tunnel_client_pins_the_server_identity(pki: Pki, web: int, tmp_path: Path) -> None:
    """--allow-cn on a tunnel client refuses a server whose certificate does not match."""
    audit = tmp_path / "client.jsonl"
    with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{web}", "--identity", "server") as (_, ts), \
            listener_process(pki.home.root, "tunnel", "client", "--listen", "127.0.0.1:0",
                             "--target", f"localhost:{ts}", "--identity", "alice",
                             "--allow-cn", "some-other-server", "--audit-log", str(audit)) as (_, tc):
        result = http_get(tc)
        assert "hello" not in result.stdout
        time.sleep(1.5)
    denied = [json.loads(line) for line in audit.read_text().splitlines()
              if '"access_denied"' in line]
    assert denied and denied[0]["cn"] == "server"


HAPROXY_CONF = """
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port} accept-proxy
    log-format "client=%ci:%cp status=%ST"
    default_backend be
backend be
    server web 127.0.0.1:{web}
"""


def curl_tls(pki: Pki, port: int) -> subprocess.CompletedProcess[str]:
    """curl picks its own source port from a range (a single free_port() can be taken by a
    parallel test before curl binds it) and reports it on stderr through --write-out."""
    alice = pki.home.identity("alice")
    return subprocess.run(
        [require_tool("curl"), "-sS", "--max-time", "20", "--local-port", "20000-29999",
         "--write-out", "%{stderr}local_port=%{local_port}\n", "--cacert", str(alice.ca), "--cert", str(alice.cert), "--key", str(alice.key),
         f"https://localhost:{port}/hello.txt"],
        capture_output=True, text=True, timeout=30, check=False)


def test_haproxy_accepts_the_proxy_header_and_logs_the_real_client(pki: Pki, web: int,
                                                                 tmp_path: Path) -> None:
    haproxy = require_tool("haproxy")
    port = free_port()
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(port=port, web=web))
    with daemon([haproxy, "-f", str(conf), "-db"], port=port) as proc:
        with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                              "--target", f"127.0.0.1:{port}", "--identity", "server",
                              "--proxy-protocol") as (_, tw):
            result = curl_tls(pki, tw)
            assert result.stdout == "hello from nginx\n", result.stderr
            local_port = int(result.stderr.rsplit("local_port=", 1)[1])
        with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                              "--target", f"127.0.0.1:{port}", "--identity", "server") as (_, bare):
            # without the header haproxy's accept-proxy refuses: the header is really parsed
            assert "hello" not in curl_tls(pki, bare).stdout
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert f"client=127.0.0.1:{local_port} status=200" in output, output


def test_backend_decodes_the_identity_from_the_tlvs(pki: Pki) -> None:
    """A tiny backend reads the PROXY v2 header and echoes what it learned as JSON."""
    headers: list[ProxyHeader] = []
    ready = threading.Event()
    port_box: list[int] = []

    async def backend() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            decoder = ProxyDecoder()
            while (header := decoder.next_event()) is NEED_DATA:
                decoder.receive_data(await reader.read(4096))
            assert isinstance(header, ProxyHeader)
            headers.append(header)
            writer.write(json.dumps({"cn": header.common_name, "fp": header.fingerprint,
                                     "src": header.source, "tls": header.tls_version}).encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_box.append(server.sockets[0].getsockname()[1])
        ready.set()
        await asyncio.sleep(20)

    thread = threading.Thread(target=lambda: asyncio.run(backend()), daemon=True)
    thread.start()
    ready.wait(10)
    with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{port_box[0]}", "--identity", "server",
                          "--proxy-protocol") as (_, tw):
        raw = socket.create_connection(("127.0.0.1", tw), timeout=10)
        with pki.client("alice").context().wrap_socket(raw, server_hostname="localhost") as tls:
            local = tls.getsockname()
            tls.sendall(b"hi")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    seen = json.loads(data)
    alice = pki.home.identity("alice")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificates(alice.cert.read_bytes())[0]
    assert seen["cn"] == "alice"
    assert seen["fp"] == cert.fingerprint(hashes.SHA256()).hex()
    assert seen["src"] == ["127.0.0.1", local[1]]
    assert seen["tls"] == "TLSv1.3"
    assert headers[0].client_cert
