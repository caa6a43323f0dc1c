"""The sessions family against nginx: tickets on and off, a long session timeout, 0-RTT on,
and two server blocks on one port (clients without SNI get the default one's certificate)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import CliResult, require_tool
from tests.peers import daemon, free_port, nginx_sites_config
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home

pytestmark = [pytest.mark.interop]
Cli = Callable[..., CliResult]

CONFIGS = {
    "default": "",
    "cache": "ssl_session_tickets off; ssl_session_cache shared:SSL:1m;",
    "long": "ssl_session_timeout 8d;",
    "early": "ssl_early_data on;",
}


@pytest.fixture(scope="module")
def site_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("sessions-pki") / "home")
    home.init_ca(name="sessions CA")
    home.issue("site", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    home.issue("fallback", kind=CertKind.SERVER,
               sans=SubjectAltNames.parse(dns=["fallback.example"]))
    return home


@pytest.fixture(scope="module")
def nginx(site_home: Home, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    binary = require_tool("nginx")
    tmp = tmp_path_factory.mktemp("nginx-sessions")
    ports = {name: free_port() for name in [*CONFIGS, "two_names"]}
    site, fallback = site_home.identity("site"), site_home.identity("fallback")

    def block(port: int, files: object, directives: str, extra: str = "") -> str:
        return f"""
    server {{
        listen 127.0.0.1:{port} ssl{extra};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {files.cert};
        ssl_certificate_key {files.key};
        {directives}
        location / {{ return 200 "hello\\n"; }}
    }}"""  # type: ignore[attr-defined]

    servers = [block(ports[name], site, directives) for name, directives in CONFIGS.items()]
    servers.append(block(ports["two_names"], fallback, "server_name fallback.example;",
                         " default_server"))
    servers.append(block(ports["two_names"], site, "server_name localhost;"))
    config = nginx_sites_config(tmp, "".join(servers))
    with daemon([binary, "-c", str(config)], port=ports["two_names"]):
        yield ports


def sessions(cli: Cli, home: Home, port: int) -> tuple[dict, dict[str, dict]]:  # type: ignore[type-arg]
    result = cli("probe", f"https://localhost:{port}/", "--ca", home.ca_cert_path, "--json")
    assert result.code in (0, 1), result.err
    report = json.loads(result.out)
    return report, {c["id"]: c for c in report["checks"]}


def resumed(report: dict) -> dict[str, bool | None]:  # type: ignore[type-arg]
    return {r["method"]: r["resumed"] for r in report["sessions"]["resumption"]}


def test_default_nginx_resumes_by_ticket_and_refuses_renegotiation(
    cli: Cli, site_home: Home, nginx: dict[str, int],
) -> None:
    report, checks = sessions(cli, site_home, nginx["default"])
    assert checks["session.renegotiation"]["status"] == "pass"
    # nginx's default ssl_session_cache is "none": session IDs are handed out, never kept
    assert resumed(report) == {"session-id": False, "ticket-tls1.2": True, "ticket-tls1.3": True}
    assert checks["session.early_data"]["status"] == "pass"
    lifetime = checks["session.ticket_lifetime"]
    assert lifetime["status"] == "pass" and "5 minute(s)" in lifetime["detail"]  # nginx's default
    assert report["sessions"]["no_sni"]["same_as_sni"] is True
    assert report["duration_s"] < 5


def test_tickets_off_with_a_cache_resumes_by_session_id(
    cli: Cli, site_home: Home, nginx: dict[str, int],
) -> None:
    report, checks = sessions(cli, site_home, nginx["cache"])
    assert resumed(report)["session-id"] is True
    tls12 = next(r for r in report["sessions"]["resumption"] if r["method"] == "ticket-tls1.2")
    assert tls12["resumed"] is False and tls12["tickets"] == []
    assert "resumed by session ID" in tls12["note"]
    assert "resumed by session ID" in checks["session.resumption.ticket_tls1_2"]["detail"]


def test_eight_day_tickets_warn(cli: Cli, site_home: Home, nginx: dict[str, int]) -> None:
    report, checks = sessions(cli, site_home, nginx["long"])
    lifetimes = {r["method"]: {t["lifetime_s"] for t in r["tickets"]}
                 for r in report["sessions"]["resumption"]}
    assert lifetimes["ticket-tls1.2"] == {8 * 86400}
    assert lifetimes["ticket-tls1.3"] == {604800}  # OpenSSL caps TLS 1.3 at RFC 8446's week
    assert checks["session.ticket_lifetime"]["status"] == "warn"
    assert "ssl_session_timeout" in checks["session.ticket_lifetime"]["fix"]


def test_early_data_on_warns(cli: Cli, site_home: Home, nginx: dict[str, int]) -> None:
    report, checks = sessions(cli, site_home, nginx["early"])
    assert report["sessions"]["early_data"]["accepted"] is True
    assert report["sessions"]["early_data"]["max_early_data"] > 0
    assert checks["session.early_data"]["status"] == "warn"


def test_clients_without_sni_get_the_default_server(
    cli: Cli, site_home: Home, nginx: dict[str, int],
) -> None:
    report, checks = sessions(cli, site_home, nginx["two_names"])
    no_sni = report["sessions"]["no_sni"]
    assert no_sni["sans"] == ["DNS:fallback.example"]
    assert no_sni["same_as_sni"] is False and no_sni["valid_for_name"] is False
    assert checks["cert.hostname"]["status"] == "pass"  # with SNI, the right certificate
    detail = checks["cert.no_sni"]["detail"]
    assert checks["cert.no_sni"]["status"] == "info"
    assert "a different certificate" in detail and "not valid for localhost" in detail
