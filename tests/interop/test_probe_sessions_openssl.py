"""The sessions family against ``openssl s_server``: renegotiation, resumption, 0-RTT,
must-staple with and without a stapled OCSP response, SCTs embedded and in the TLS extension."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from tests.conftest import CliResult, Pki, require_tool
from tests.peers import free_port, wait_for_port
from tests.probe_parts import sessions_only
from trustwire.probe.checks import Check
from trustwire.probe.observations import Observations
from trustwire.probe.profiles import PROFILES
from trustwire.probe.session_wire import build_sct, build_sct_list
from trustwire.probe.sessions import judge_sessions
from trustwire.probe.target import ProbeOptions, ProbeTarget

pytestmark = [pytest.mark.interop]
Cli = Callable[..., CliResult]
LOG_A, LOG_B = b"\xaa" * 32, b"\xbb" * 32
# SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO | SSL_EXT_TLS1_3_CERTIFICATE (openssl/ssl.h):
# serverinfo v2 sends the extension in TLS 1.2 and, in the leaf's CertificateEntry, in TLS 1.3
SERVERINFO_CONTEXT = 0x0080 | 0x0100 | 0x1000


@dataclass
class Leaf:
    cert: Path
    key: Path
    ocsp: Path
    """A DER OCSP response for it, signed by the CA: for ``-status_file``."""


def _pem(name: str, data: bytes) -> str:
    return f"-----BEGIN {name}-----\n{base64.encodebytes(data).decode()}-----END {name}-----\n"


@pytest.fixture(scope="module")
def leaves(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Leaf]:
    """A must-staple leaf and one with two embedded SCTs, from the session CA."""
    root = tmp_path_factory.mktemp("staple")
    ca_cert = x509.load_pem_x509_certificate(pki.home.ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.home.ca_key_path.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    scts = build_sct_list([build_sct(LOG_A, 1_700_000_000_000), build_sct(LOG_B, 1_700_000_000_001)])
    extras: dict[str, x509.ExtensionType] = {
        "must-staple": x509.TLSFeature([x509.TLSFeatureType.status_request]),
        # extnValue: an OCTET STRING around the TLS-encoded list (RFC 6962 3.3)
        "embedded-scts": x509.UnrecognizedExtension(
            ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, b"\x04" + bytes([len(scts)]) + scts),
    }
    made = {}
    for name, extra in extras.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .add_extension(extra, critical=False)
                .sign(ca_key, hashes.SHA256()))
        response = (ocsp.OCSPResponseBuilder()
                    .add_response(cert=cert, issuer=ca_cert, algorithm=hashes.SHA256(),
                                  cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                                  next_update=now + dt.timedelta(days=1), revocation_time=None,
                                  revocation_reason=None)
                    .responder_id(ocsp.OCSPResponderEncoding.HASH, ca_cert)
                    .sign(ca_key, hashes.SHA256()))
        files = Leaf(root / f"{name}.crt", root / f"{name}.key", root / f"{name}.ocsp")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        files.ocsp.write_bytes(response.public_bytes(serialization.Encoding.DER))
        made[name] = files
    ext = struct.pack(">HH", 18, len(scts)) + scts
    (root / "sct.serverinfo").write_text(
        _pem("SERVERINFOV2 FOR CT", struct.pack(">I", SERVERINFO_CONTEXT) + ext))
    return made


@contextlib.contextmanager
def s_server(cert: Path, key: Path, *extra: str) -> Iterator[int]:
    """``openssl s_server`` (echo mode, one connection at a time) on 127.0.0.1."""
    openssl = require_tool("openssl")
    port = free_port()
    # stdin stays open: at EOF s_server closes each connection right after its handshake
    proc = subprocess.Popen([openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert),
                             "-key", str(key), "-quiet", *extra], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port)
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def scan(port: int, ca: Path) -> Observations:
    target = ProbeTarget(host="127.0.0.1", port=port, server_name="localhost", https=False)
    return sessions_only(target, ProbeOptions(ca=ca, timeout=3))


def checks(obs: Observations, profile: str = "intermediate") -> dict[str, Check]:
    return {c.id: c for c in judge_sessions(obs, PROFILES[profile])}


def test_default_s_server_refuses_renegotiation_and_resumes_every_way(pki: Pki) -> None:
    server = pki.home.identity("server")
    with s_server(server.cert, server.key) as port:
        obs = scan(port, pki.home.ca_cert_path)
    found = checks(obs)
    assert found["session.renegotiation"].status.value == "pass"
    assert "no_renegotiation" in found["session.renegotiation"].detail
    assert obs.sessions is not None
    assert {r.method: r.resumed for r in obs.sessions.resumption} == {
        "session-id": True, "ticket-tls1.2": True, "ticket-tls1.3": True}
    lifetimes = {t.lifetime for r in obs.sessions.resumption for t in r.tickets}
    assert lifetimes == {7200}  # s_server's default session timeout
    assert found["session.ticket_lifetime"].status.value == "pass"
    assert found["session.early_data"].status.value == "pass"
    assert obs.sessions.early_data.offered is None
    assert found["cert.must_staple"].status.value == "info"
    assert obs.sessions.no_sni.same_as_sni is True
    assert obs.sessions.scts.tls_extension == [] and obs.sessions.scts.embedded == []


def test_client_renegotiation_allowed_is_a_warning(pki: Pki) -> None:
    server = pki.home.identity("server")
    with s_server(server.cert, server.key, "-client_renegotiation") as port:
        obs = scan(port, pki.home.ca_cert_path)
    found = checks(obs)
    assert found["session.renegotiation"].status.value == "warn"
    assert checks(obs, "modern")["session.renegotiation"].status.value == "fail"


def test_no_ticket_leaves_session_ids(pki: Pki) -> None:
    server = pki.home.identity("server")
    with s_server(server.cert, server.key, "-no_ticket") as port:
        obs = scan(port, pki.home.ca_cert_path)
    assert obs.sessions is not None
    by_method = {r.method: r for r in obs.sessions.resumption}
    assert by_method["session-id"].resumed is True
    tls12 = by_method["ticket-tls1.2"]
    assert tls12.resumed is False and not tls12.tickets
    assert tls12.note and "resumed by session ID" in tls12.note


def test_early_data_accepted_is_a_warning(pki: Pki) -> None:
    server = pki.home.identity("server")
    with s_server(server.cert, server.key, "-early_data") as port:
        obs = scan(port, pki.home.ca_cert_path)
    assert obs.sessions is not None
    assert obs.sessions.early_data.offered == 16384 and obs.sessions.early_data.accepted is True
    found = checks(obs)["session.early_data"]
    assert found.status.value == "warn" and found.fix


def test_must_staple_without_a_staple_fails_and_with_one_passes(
    pki: Pki, leaves: dict[str, Leaf], cli: Cli, tmp_path: Path,
) -> None:
    leaf = leaves["must-staple"]
    with s_server(leaf.cert, leaf.key, "-status_file", str(leaf.ocsp)) as port:
        stapled = scan(port, pki.home.ca_cert_path)
    assert stapled.ocsp_stapled is True
    assert checks(stapled)["cert.must_staple"].status.value == "pass"
    with s_server(leaf.cert, leaf.key) as port:
        bare = scan(port, pki.home.ca_cert_path)
        sarif, junit = tmp_path / "p.sarif", tmp_path / "p.xml"
        result = cli("probe", f"localhost:{port}", "--ca", pki.home.ca_cert_path, "--json",
                     "--timeout", "1", "--sarif", sarif, "--junit", junit)
    assert bare.ocsp_stapled is False
    failed = checks(bare)["cert.must_staple"]
    assert failed.status.value == "fail" and failed.fix
    assert result.code == 1
    report = json.loads(result.out)
    assert report["sessions"]["must_staple"] is True
    assert {c["id"]: c["status"] for c in report["checks"]}["cert.must_staple"] == "fail"
    assert ("cert.must_staple", "error") in {
        (r["ruleId"], r["level"]) for r in json.loads(sarif.read_text())["runs"][0]["results"]}
    assert "cert.must_staple" in {
        f.get("type") for f in ET.fromstring(junit.read_bytes()).findall("testcase/failure")}


def test_scts_embedded_and_in_the_tls_extension(pki: Pki, leaves: dict[str, Leaf]) -> None:
    leaf = leaves["embedded-scts"]
    serverinfo = leaf.cert.parent / "sct.serverinfo"
    with s_server(leaf.cert, leaf.key, "-serverinfo", str(serverinfo)) as port:
        obs = scan(port, pki.home.ca_cert_path)
    assert obs.sessions is not None
    scts = obs.sessions.scts
    assert [s.log_id for s in scts.embedded or []] == [LOG_A, LOG_B]
    assert [s.log_id for s in scts.tls_extension or []] == [LOG_A, LOG_B]
    assert scts.ocsp == []
    detail = checks(obs)["cert.sct"].detail
    assert "embedded: 2" in detail and "TLS extension: 2" in detail
    assert base64.b64encode(LOG_A).decode() in detail
    server = pki.home.identity("server")
    with s_server(server.cert, server.key) as port:  # the same probe, no SCTs anywhere
        plain = scan(port, pki.home.ca_cert_path)
    assert plain.sessions is not None and plain.sessions.scts.tls_extension == []
