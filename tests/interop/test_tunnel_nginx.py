"""curl and nginx through trustwire's tunnel: 50 MiB each way, byte-identical; refusals audited."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Pki, require_tool
from tests.peers import daemon, free_port, nginx_config
from tests.servers import listener_process

pytestmark = [pytest.mark.interop, pytest.mark.slow]
FIFTY_MIB = 50 * 1024 * 1024


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """nginx on a free port serving (and accepting PUT into) a directory with a 50 MiB file."""
    nginx = require_tool("nginx")
    tmp = tmp_path_factory.mktemp("nginx")
    root = tmp / "www"
    root.mkdir()
    with (root / "big.bin").open("wb") as f:
        f.write(bytes(range(256)) * (FIFTY_MIB // 256 - 7) + b"tail" * 448)
    port = free_port()
    config = nginx_config(tmp, port=port, root=root)
    with daemon([nginx, "-c", str(config), "-e", "stderr"], port=port):
        yield port, root


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("curl"), "-sS", "--max-time", "120", *args],
                          capture_output=True, text=True, timeout=150, check=False)


def test_fifty_mebibytes_each_way_through_both_tunnel_modes(pki: Pki, web: tuple[int, Path],
                                                             tmp_path: Path) -> None:
    web_port, root = web
    audit = tmp_path / "server.jsonl"
    with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{web_port}", "--identity", "server",
                          "--allow-cn", "alice", "--audit-log", str(audit)) as (_, server_port), \
            listener_process(pki.home.root, "tunnel", "client", "--listen", "127.0.0.1:0",
                             "--target", f"localhost:{server_port}", "--identity", "alice") as (_, port):
        down = tmp_path / "down.bin"
        result = curl("-o", str(down), f"http://127.0.0.1:{port}/big.bin")
        assert result.returncode == 0, result.stderr
        assert down.stat().st_size == FIFTY_MIB
        assert sha256(down) == sha256(root / "big.bin")

        up = tmp_path / "up.bin"
        up.write_bytes(hashlib.sha256(b"seed").digest() * (FIFTY_MIB // 32))
        result = curl("-T", str(up), "-o", "/dev/null", "-w", "%{http_code}",
                      f"http://127.0.0.1:{port}/uploaded.bin")
        assert result.stdout in ("201", "204"), result.stdout + result.stderr
        assert sha256(root / "uploaded.bin") == sha256(up)
        time.sleep(1.5)
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    closed = [e for e in events if e["event"] == "closed"]
    assert any(e["bytes_out"] >= FIFTY_MIB for e in closed)  # the download, seen by the tunnel
    assert any(e["bytes_in"] >= FIFTY_MIB for e in closed)  # the upload
    assert all(e["cn"] == "alice" for e in closed)


def test_curl_with_client_certificates_straight_to_the_tunnel_server(
    pki: Pki, web: tuple[int, Path], tmp_path: Path,
) -> None:
    web_port, root = web
    (root / "hello.txt").write_text("hello through mTLS\n")
    audit = tmp_path / "audit.jsonl"
    with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{web_port}", "--identity", "server",
                          "--allow-cn", "alice", "--audit-log", str(audit)) as (_, port):
        url = f"https://localhost:{port}/hello.txt"
        ca = ["--cacert", str(pki.home.ca_cert_path)]

        def with_identity(name: str) -> list[str]:
            ident = pki.home.identity(name)
            return ["--cert", str(ident.cert), "--key", str(ident.key)]

        allowed = curl(*ca, *with_identity("alice"), "-w", "%{http_code}", url)
        assert allowed.stdout == "hello through mTLS\n200", allowed.stderr

        outsider = curl(*ca, *with_identity("bob"), "-w", "%{http_code}", url)
        assert "hello" not in outsider.stdout
        assert outsider.returncode != 0
        # Refused in the handshake with a TLS alert, as stunnel does, not a silent close
        # after it ("Empty reply from server").
        assert "alert certificate unknown" in outsider.stderr, outsider.stderr
        assert "Empty reply" not in outsider.stderr

        anonymous = curl(*ca, "-w", "%{http_code}", url)
        assert "hello" not in anonymous.stdout
        assert anonymous.returncode != 0
        time.sleep(1.5)
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    denied = [e for e in events if e["event"] == "access_denied"]
    assert len(denied) == 1 and denied[0]["cn"] == "bob"
    assert "CN=bob, OU=sales is not allowed by the access policy (no allow rule matches: allow CN alice)" in denied[0]["reason"]
    failed = [e for e in events if e["event"] == "handshake_failed"]
    assert sorted(e["reason"] for e in failed) == ["client-cert-missing", "policy-denied"]
    ok = [e for e in events if e["event"] == "closed" and e.get("cn") == "alice"]
    assert ok and ok[0]["bytes_out"] > 0
