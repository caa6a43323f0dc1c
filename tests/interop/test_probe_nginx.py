"""The probe against nginx configured modern, intermediate and weak; mTLS audit; sslyze agrees."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, require_tool
from tests.peers import daemon, free_port, nginx_sites_config
from trustwire.pki.ca import CertKind
from trustwire.pki.keys import KeyType
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.probe.identities import mint_identities
from trustwire.probe.observations import VALID_FROM_YOUR_CA
from trustwire.probe.target import ProbeOptions

pytestmark = [pytest.mark.interop, pytest.mark.slow]
Cli = Callable[..., CliResult]

MOZILLA_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
GOOD_HEADERS = """
        add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
        add_header X-Content-Type-Options nosniff always;
        add_header Content-Security-Policy "default-src 'self'; frame-ancestors 'none'" always;
        add_header Referrer-Policy no-referrer always;"""
CONFIGS = {
    "modern": ("nginx", "ssl_protocols TLSv1.3; ssl_ecdh_curve X25519:prime256v1:secp384r1;"
               + GOOD_HEADERS),
    "intermediate": ("nginx", f"ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers {MOZILLA_INTERMEDIATE};"
                     " ssl_prefer_server_ciphers off; ssl_ecdh_curve X25519:prime256v1:secp384r1;"
                     + GOOD_HEADERS),
    "weak": ("weak", 'ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers "ALL:@SECLEVEL=0";'
             " ssl_prefer_server_ciphers on;"),
    "compressed": ("nginx", "ssl_protocols TLSv1.2 TLSv1.3; default_type text/plain; gzip on;"
                   " gzip_types text/plain; gzip_min_length 1;" + GOOD_HEADERS),
    "required": ("nginx", "ssl_protocols TLSv1.2 TLSv1.3; ssl_verify_client on;"
                 " ssl_client_certificate {ca};" + GOOD_HEADERS),
    "optional": ("nginx", "ssl_protocols TLSv1.2 TLSv1.3; ssl_verify_client optional;"
                 " ssl_client_certificate {ca};" + GOOD_HEADERS),
    "optional_no_ca": ("nginx", "ssl_protocols TLSv1.2 TLSv1.3; ssl_verify_client optional_no_ca;"
                       " ssl_client_certificate {ca};" + GOOD_HEADERS),
}


@pytest.fixture(scope="module")
def web_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("webpki") / "home")
    home.init_ca(name="web CA")
    home.issue("nginx", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    home.issue("weak", kind=CertKind.SERVER, key_type=KeyType.RSA_3072,
               sans=SubjectAltNames.parse(dns=["wrong.example"]), lifetime=dt.timedelta(days=30),
               now=dt.datetime.now(dt.UTC) - dt.timedelta(days=60))
    return home


@pytest.fixture(scope="module")
def nginx_sites(web_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    nginx = require_tool("nginx")
    tmp = tmp_path_factory.mktemp("nginx-tls")
    ports = {name: free_port() for name in CONFIGS}
    ports["redirect"], ports["plain"] = free_port(), free_port()
    servers = [f"""
    server {{ listen 127.0.0.1:{ports["redirect"]};
             return 301 https://localhost:{ports["intermediate"]}$request_uri; }}
    server {{ listen 127.0.0.1:{ports["plain"]}; location / {{ return 200 "plain"; }} }}"""]
    for name, (ident, directives) in CONFIGS.items():
        files = web_home.identity(ident)
        servers.append(f"""
    server {{
        listen 127.0.0.1:{ports[name]} ssl;
        ssl_certificate {files.cert};
        ssl_certificate_key {files.key};
        {directives.replace("{ca}", str(web_home.ca_cert_path))}
        location / {{ return 200 "hello from {name}\\n"; }}
    }}""")
    config = nginx_sites_config(tmp, "".join(servers))
    with daemon([nginx, "-c", str(config)], port=ports["weak"]):
        yield ports


def probe(cli: Cli, web_home: Home, port: int, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = cli("probe", f"https://localhost:{port}/", "--ca", web_home.ca_cert_path, "--json", *args)
    assert result.code in (0, 1), result.err
    return result.code, json.loads(result.out)


def statuses(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["id"]: c["status"] for c in report["checks"]}


def versions(report: dict) -> dict[str, bool | None]:  # type: ignore[type-arg]
    return {p["version"]: p["accepted"] for p in report["protocols"]}


def test_modern_nginx(cli: Cli, web_home: Home, nginx_sites: dict[str, int]) -> None:
    code, report = probe(cli, web_home, nginx_sites["modern"], "--profile", "modern")
    assert code == 0, [c for c in report["checks"] if c["status"] == "fail"]
    assert versions(report) == {"SSLv2": False, "SSLv3": False, "TLSv1": False, "TLSv1.1": False,
                                "TLSv1.2": False, "TLSv1.3": True}
    assert report["http"]["status"] == 200 and statuses(report)["http.hsts"] == "pass"
    groups = {g["name"]: g["accepted"] for g in report["groups"]}
    assert {g for g, ok in groups.items() if ok} == {"x25519", "secp256r1", "secp384r1"}
    assert None not in groups.values()  # every group answered, X25519MLKEM768 included
    for check in ("tls.fallback_scsv", "tls.extended_master_secret", "vuln.crime"):
        assert statuses(report)[check] == "info"  # not applicable to TLS 1.3 alone
    code, report = probe(cli, web_home, nginx_sites["modern"])
    assert code == 0 and statuses(report)["protocol.tlsv1_2"] == "warn"


def test_intermediate_nginx(cli: Cli, web_home: Home, nginx_sites: dict[str, int]) -> None:
    code, report = probe(cli, web_home, nginx_sites["intermediate"])
    assert code == 0, [c for c in report["checks"] if c["status"] == "fail"]
    assert versions(report)["TLSv1.2"] and versions(report)["TLSv1.3"]
    assert not versions(report)["TLSv1"]
    assert set(report["cipher_suites"]["TLSv1.2"]) == {
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305"}  # the profile's suites an ECDSA certificate can use
    assert report["server_enforces_order"] is False
    assert report["client_auth"]["requested"] is False
    attacks = {name: found["vulnerable"] for name, found in report["known_attacks"].items()}
    assert not any(attacks[name] for name in ("beast", "lucky13", "sweet32", "logjam"))
    for check in ("protocol.sslv2", "protocol.sslv3", "tls.fallback_scsv",
                  "tls.secure_renegotiation", "tls.extended_master_secret", "vuln.crime"):
        assert statuses(report)[check] == "pass", check
    assert report["legacy"]["fallback_scsv"]["reply"]["alert"] == 86
    code, _ = probe(cli, web_home, nginx_sites["intermediate"], "--profile", "modern")
    assert code == 1  # TLS 1.2 is outside the modern profile


def test_weak_nginx(cli: Cli, web_home: Home, nginx_sites: dict[str, int]) -> None:
    code, report = probe(cli, web_home, nginx_sites["weak"])
    assert code == 1
    assert versions(report) == {"SSLv2": False, "SSLv3": False, "TLSv1": True, "TLSv1.1": True,
                                "TLSv1.2": True, "TLSv1.3": False}
    assert report["legacy"]["suites"] == {}  # ALL:@SECLEVEL=0 has no RC4, DES or EXPORT left
    assert report["legacy"]["fallback_scsv"]["offered"] == "TLSv1.1"
    found = statuses(report)
    for check in ("protocol.tlsv1", "protocol.tlsv1_1", "ciphers.weak.cbc", "ciphers.weak.rsa",
                  "cert.validity", "cert.hostname", "http.hsts", "cert.trusted"):
        assert found.get(check) == "fail", (check, found.get(check))
    for check in ("protocol.sslv3", "tls.fallback_scsv", "tls.secure_renegotiation", "vuln.crime"):
        assert found.get(check) == "pass", (check, found.get(check))
    tls10 = report["cipher_suites"]["TLSv1"]
    assert "ECDHE-RSA-AES128-SHA" in tls10 and "AES128-SHA" in tls10
    assert report["server_enforces_order"] is True
    assert report["http"]["verified"] is False  # headers read anyway, and the report says how
    attacks = {name: found["vulnerable"] for name, found in report["known_attacks"].items()}
    assert attacks["beast"] and attacks["lucky13"]  # TLS 1.0 with CBC suites
    assert found["vuln.beast"] == "warn" and found["vuln.lucky13"] == "warn"


def s_client_outcome(port: int, ca: Path, pair: tuple[Path, Path] | None) -> bool:
    """What ``openssl s_client`` with this certificate sees: True when nginx refused it
    (a handshake failure, or an HTTP 400 about the certificate), False when it got the page."""
    args = [require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}",
            "-servername", "localhost", "-CAfile", str(ca), "-quiet"]
    if pair is not None:
        args += ["-cert", str(pair[0]), "-key", str(pair[1])]
    done = subprocess.run(args, input="GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                          capture_output=True, text=True, timeout=30, check=False)
    if "hello from" in done.stdout:
        return False
    assert "400" in done.stdout or done.returncode != 0, (done.stdout, done.stderr)
    return True


@pytest.mark.parametrize(("site", "expected_in"), [
    ("required", set()),
    ("optional", {"no certificate"}),
    ("optional_no_ca", {"no certificate", "a self-signed certificate",
                        "a certificate from an unknown CA",
                        "a certificate without clientAuth (unknown CA)"}),
])
def test_client_verification_is_judged_by_what_nginx_answers(
    cli: Cli, web_home: Home, nginx_sites: dict[str, int], site: str, expected_in: set[str],
    tmp_path: Path,
) -> None:
    """nginx completes every handshake and refuses bad certificates with HTTP 400: the probe's
    per-case results are what s_client sees with the same kinds of certificate."""
    port = nginx_sites[site]
    code, report = probe(cli, web_home, port, "--ca-key", web_home.ca_key_path)
    auth = report["client_auth"]
    ours = {e["case"]: e["refused"] for e in auth["enforcement"]}
    assert ours.pop(VALID_FROM_YOUR_CA) is False
    assert {case for case, refused in ours.items() if refused is False} == expected_in, \
        auth["enforcement"]
    assert None not in ours.values()
    enforced = next(c for c in report["checks"] if c["id"] == "clientauth.enforced")
    assert (enforced["status"] == "pass") == (not expected_in)
    assert (code == 1) or not expected_in
    assert auth["required"] is (site == "required")
    minted = mint_identities(tmp_path, ProbeOptions(ca=web_home.ca_cert_path,
                                                    ca_key=web_home.ca_key_path), [])
    theirs = {case: s_client_outcome(port, web_home.ca_cert_path, pair)
              for case, pair in minted.items()}
    theirs["no certificate"] = s_client_outcome(port, web_home.ca_cert_path, None)
    assert theirs.pop(VALID_FROM_YOUR_CA) is False
    assert theirs == ours
    if site == "required":
        refused = next(e for e in auth["enforcement"] if e["case"] == "no certificate")
        assert "HTTP 400" in refused["detail"] and "certificate" in refused["detail"].lower()


@pytest.mark.parametrize("site", ["intermediate", "weak", "modern"])
def test_sslyze_agrees(cli: Cli, web_home: Home, nginx_sites: dict[str, int], site: str,
                       tmp_path: Path) -> None:
    port = nginx_sites[site]
    out = tmp_path / "sslyze.json"
    subprocess.run([sys.executable, "-m", "sslyze", f"127.0.0.1:{port}", "--sni", "localhost",
                    "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
                    "--certinfo", "--compression", "--fallback", f"--json_out={out}"],
                   capture_output=True, timeout=120, check=True)
    theirs = json.loads(out.read_text())["server_scan_results"][0]["scan_result"]
    _, ours = probe(cli, web_home, port)
    for version, key in (("SSLv2", "ssl_2_0"), ("SSLv3", "ssl_3_0"), ("TLSv1", "tls_1_0"),
                         ("TLSv1.1", "tls_1_1"), ("TLSv1.2", "tls_1_2"), ("TLSv1.3", "tls_1_3")):
        accepted = theirs[f"{key}_cipher_suites"]["result"]["accepted_cipher_suites"]
        assert versions(ours)[version] == bool(accepted), version
    sslyze_tls12 = {c["cipher_suite"]["openssl_name"]
                    for c in theirs["tls_1_2_cipher_suites"]["result"]["accepted_cipher_suites"]}
    assert set(ours["cipher_suites"].get("TLSv1.2", [])) == sslyze_tls12
    leaf = theirs["certificate_info"]["result"]["certificate_deployments"][0][
        "received_certificate_chain"][0]
    expired = dt.datetime.fromisoformat(leaf["not_valid_after"].replace("Z", "+00:00")) < \
        dt.datetime.now(dt.UTC)
    assert ours["certificate"]["chain"][0]["not_after"] == \
        dt.datetime.fromisoformat(leaf["not_valid_after"].replace("Z", "+00:00")).isoformat()
    validity = next(c for c in ours["checks"] if c["id"] == "cert.validity")
    assert (validity["status"] == "fail") == expired
    compression = theirs["tls_compression"]["result"]["supports_compression"]
    assert (statuses(ours)["vuln.crime"] == "fail") is compression
    if len([v for v, ok in versions(ours).items() if ok]) > 1:
        scsv = theirs["tls_fallback_scsv"]["result"]["supports_fallback_scsv"]
        assert (statuses(ours)["tls.fallback_scsv"] == "pass") is scsv


@pytest.mark.parametrize(("site", "status"), [("compressed", "warn"), ("intermediate", "pass")])
def test_http_compression_is_breach_exposure(cli: Cli, web_home: Home, nginx_sites: dict[str, int],
                                             site: str, status: str) -> None:
    _, report = probe(cli, web_home, nginx_sites[site])
    assert statuses(report)["http.compression"] == status
    assert (report["http"]["headers"].get("content-encoding") == "gzip") == (status == "warn")
    untested = {u["what"] for u in report["untested"]}
    assert "HTTP to HTTPS redirect" in untested  # --check-redirect was not given


def test_check_redirect(cli: Cli, web_home: Home, nginx_sites: dict[str, int]) -> None:
    port = nginx_sites["intermediate"]
    code, report = probe(cli, web_home, port, "--check-redirect", "--http-port",
                         str(nginx_sites["redirect"]))
    assert code == 0
    assert report["http"]["redirect"] == {"status": 301,
                                          "location": f"https://localhost:{port}/"}
    assert statuses(report)["http.redirect"] == "pass"
    code, report = probe(cli, web_home, port, "--check-redirect", "--http-port",
                         str(nginx_sites["plain"]))
    assert code == 1 and statuses(report)["http.redirect"] == "fail"


def test_a_403_for_everyone_is_not_enforcement(cli: Cli, web_home: Home, tmp_path: Path) -> None:
    """optional_no_ca lets anyone in; ``location / { deny all; }`` then answers 403 to every
    client, the good certificate included. That is no verdict on certificates, and /api (open
    to anyone) shows the server does not enforce."""
    files = web_home.identity("nginx")
    port = free_port()
    config = nginx_sites_config(tmp_path, f"""
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {files.cert};
        ssl_certificate_key {files.key};
        ssl_client_certificate {web_home.ca_cert_path};
        ssl_verify_client optional_no_ca;
        location / {{ deny all; }}
        location /api {{ return 200 "api for anyone"; }}
    }}""")
    with daemon([require_tool("nginx"), "-c", str(config)], port=port):
        _, root = probe(cli, web_home, port, "--ca-key", web_home.ca_key_path)
        _, bare = probe(cli, web_home, port)  # no good certificate to compare with
        result = cli("probe", f"https://localhost:{port}/api", "--ca", web_home.ca_cert_path,
                     "--ca-key", web_home.ca_key_path, "--json")
    api = json.loads(result.out)
    for report in (root, bare):
        assert statuses(report)["clientauth.enforced"] != "pass", report["client_auth"]
        for case in report["client_auth"]["enforcement"]:
            if case["case"] == VALID_FROM_YOUR_CA:
                assert case["refused"] is True  # the control: refused too, and said so
            elif "HTTP 403" in case["detail"]:
                assert case["refused"] is None, case  # what everyone gets is no verdict
            elif case["refused"]:
                assert "certificate" in case["detail"].lower(), case  # nginx's own 400
        assert any("HTTP 403" in c["detail"] for c in report["client_auth"]["enforcement"])
    assert statuses(api)["clientauth.enforced"] == "fail"
