"""The probe against openssl s_server serving a leaf whose subjectAltName does not parse.

OpenSSL serves it (``DER:3003020101``, a SEQUENCE holding an INTEGER, where GeneralNames
belong); cryptography refuses to parse any of the certificate's extensions. The report must
still come out, in every format, with the defect as a failed check of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from tests.conftest import CliResult, Pki, require_tool
from tests.peers import daemon, free_port

pytestmark = pytest.mark.interop
Cli = Callable[..., CliResult]


def _leaf(pki: Pki, tmp: Path, *, broken: bool) -> tuple[Path, Path]:
    ca_cert = x509.load_pem_x509_certificate(pki.home.ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.home.ca_key_path.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san: x509.ExtensionType = x509.UnrecognizedExtension(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME, bytes.fromhex("3003020101")) if broken \
        else x509.SubjectAlternativeName([x509.DNSName("localhost")])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    name = "broken" if broken else "fine"
    (tmp / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return tmp / f"{name}.crt", tmp / f"{name}.key"


@pytest.mark.parametrize("broken", [True, False], ids=["malformed-san", "well-formed"])
def test_a_malformed_extension_is_a_failed_check_not_a_crash(
        cli: Cli, pki: Pki, tmp_path: Path, broken: bool) -> None:
    cert, key = _leaf(pki, tmp_path, broken=broken)
    port = free_port()
    sarif, junit = tmp_path / "probe.sarif", tmp_path / "probe.xml"
    with daemon([require_tool("openssl"), "s_server", "-accept", f"127.0.0.1:{port}",
                 "-cert", str(cert), "-key", str(key), "-www", "-quiet"], port=port):
        result = cli("probe", f"https://127.0.0.1:{port}/", "--server-name", "localhost",
                     "--ca", pki.home.ca_cert_path, "--json", "--sarif", sarif, "--junit", junit)
    assert "internal error" not in result.err and "Traceback" not in result.err
    report = json.loads(result.out)
    checks = {c["id"]: c for c in report["checks"]}
    if not broken:
        assert "cert.malformed" not in checks and checks["cert.hostname"]["status"] == "pass"
        return
    assert result.code == 1
    malformed = checks["cert.malformed"]
    assert malformed["status"] == "fail" and malformed["fix"]
    assert malformed["detail"].startswith("the certificate's extensions cannot be parsed: ")
    assert checks["cert.hostname"]["status"] == "skip"
    assert checks["cert.must_staple"]["status"] == "skip"
    assert report["http"]["status"] == 200  # the rest of the audit went on
    assert report["certificate"]["chain"][0]["subject"] == "CN=localhost"
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    assert "cert.malformed" in {r["ruleId"] for r in results}
    failures = ET.parse(junit).getroot().findall("testcase/failure")
    assert "cert.malformed" in {f.get("type") for f in failures}
