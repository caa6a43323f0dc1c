"""mTLS enforcement of a non-HTTP TLS server, judged at the TLS level: nginx stream with
``ssl_verify_client on`` completes the handshake (and in TLS 1.3 sends its tickets) before it
checks the certificate and closes. The probe's per-case results are what s_client sees."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, require_tool
from tests.peers import daemon, free_port
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.probe.identities import mint_identities
from trustwire.probe.observations import VALID_FROM_YOUR_CA
from trustwire.probe.target import ProbeOptions

pytestmark = pytest.mark.interop
Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("nginx-stream")
    home = Home(tmp / "home")
    home.init_ca(name="stream CA")
    home.issue("nginx", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    files = home.identity("nginx")
    ports = {"TLSv1.2": free_port(), "TLSv1.3": free_port()}
    servers = "".join(f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_protocols {version};
        ssl_certificate {files.cert};
        ssl_certificate_key {files.key};
        ssl_client_certificate {home.ca_cert_path};
        ssl_verify_client on;
        return "hello from the stream\\n";
    }}""" for version, port in ports.items())
    config = tmp / "nginx.conf"
    config.write_text(f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log stderr error;
events {{ worker_connections 256; }}
stream {{ {servers} }}
""")
    with daemon([require_tool("nginx"), "-c", str(config)], port=ports["TLSv1.3"]):
        yield home, ports


def s_client_gets_in(port: int, ca: Path, pair: tuple[Path, Path] | None) -> bool:
    args = [require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
            "localhost", "-CAfile", str(ca), "-quiet"]
    if pair is not None:
        args += ["-cert", str(pair[0]), "-key", str(pair[1])]
    done = subprocess.run(args, input="", capture_output=True, text=True, timeout=30, check=False)
    return "hello from the stream" in done.stdout


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_stream_mtls_is_judged_like_s_client_sees_it(
    cli: Cli, stream: tuple[Home, dict[str, int]], version: str, tmp_path: Path,
) -> None:
    home, ports = stream
    port = ports[version]
    result = cli("probe", f"127.0.0.1:{port}", "--server-name", "localhost", "--ca",
                 home.ca_cert_path, "--ca-key", home.ca_key_path, "--json")
    assert result.code in (0, 1), result.err
    report = json.loads(result.out)
    auth = report["client_auth"]
    ours = {e["case"]: e["refused"] for e in auth["enforcement"]}
    assert ours.pop(VALID_FROM_YOUR_CA) is False, auth["enforcement"]
    assert ours and all(refused is True for refused in ours.values()), auth["enforcement"]
    assert auth["required"] is True
    enforced = next(c for c in report["checks"] if c["id"] == "clientauth.enforced")
    assert enforced["status"] == "pass"
    anonymous = next(e for e in auth["enforcement"] if e["case"] == "no certificate")
    assert "closed the connection" in anonymous["detail"] or "refused" in anonymous["detail"]
    minted = mint_identities(tmp_path, ProbeOptions(ca=home.ca_cert_path, ca_key=home.ca_key_path), [])
    theirs = {case: not s_client_gets_in(port, home.ca_cert_path, pair) for case, pair in minted.items()}
    theirs["no certificate"] = not s_client_gets_in(port, home.ca_cert_path, None)
    assert theirs.pop(VALID_FROM_YOUR_CA) is False
    assert theirs == ours
