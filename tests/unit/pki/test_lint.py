"""cert lint: every defect in the zoo is named, and everything trustwire issues is clean."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.conftest import CliResult
from tests.zoo import NOW, Spec, build, key_usage
from trustwire.pki.ca import CertKind, create_intermediate, create_root
from trustwire.pki.keys import KeyType
from trustwire.pki.lint import Purpose, Severity, lint_certificate
from trustwire.pki.names import NameConstraints, SubjectAltNames

CA_KU = key_usage(key_cert_sign=True, crl_sign=True)

# (defect code, severity, spec, purpose)
ZOO: list[tuple[str, Severity, Spec, Purpose]] = [
    ("basic-constraints-not-critical", Severity.ERROR,
     Spec(ca=True, bc_critical=False, ku=CA_KU, eku=None, sans=None), Purpose.AUTO),
    ("ca-key-usage-missing", Severity.ERROR, Spec(ca=True, ku=None, eku=None, sans=None),
     Purpose.AUTO),
    ("ca-key-usage-no-cert-sign", Severity.ERROR,
     Spec(ca=True, ku=key_usage(crl_sign=True), eku=None, sans=None), Purpose.AUTO),
    ("ski-missing", Severity.ERROR, Spec(ca=True, ku=CA_KU, eku=None, sans=None, ski=False),
     Purpose.AUTO),
    ("aki-missing", Severity.ERROR, Spec(aki=False), Purpose.AUTO),
    ("aki-critical", Severity.ERROR, Spec(aki_critical=True), Purpose.AUTO),
    ("ski-critical", Severity.ERROR, Spec(ski_critical=True), Purpose.AUTO),
    ("eku-missing", Severity.ERROR, Spec(eku=None), Purpose.SERVER),
    ("eku-wrong", Severity.ERROR, Spec(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]), Purpose.SERVER),
    ("eku-wrong", Severity.ERROR, Spec(eku=[ExtendedKeyUsageOID.SERVER_AUTH]), Purpose.CLIENT),
    ("eku-any", Severity.WARNING,
     Spec(eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]),
     Purpose.AUTO),
    ("ip-in-dns-san", Severity.ERROR, Spec(sans=[x509.DNSName("10.0.0.1")]), Purpose.AUTO),
    ("invalid-dns-san", Severity.ERROR, Spec(sans=[x509.DNSName("foo.*.example")]), Purpose.AUTO),
    ("san-missing", Severity.ERROR, Spec(sans=None), Purpose.SERVER),
    ("san-empty", Severity.ERROR, Spec(sans=[]), Purpose.AUTO),
    ("san-not-critical", Severity.ERROR, Spec(cn=None), Purpose.AUTO),
    ("weak-key", Severity.ERROR,
     Spec(key=rsa.generate_private_key(public_exponent=65537, key_size=1024)), Purpose.AUTO),
    ("weak-key", Severity.ERROR, Spec(key=ec.generate_private_key(ec.SECP256K1())), Purpose.AUTO),
    ("lifetime-too-long", Severity.ERROR,
     Spec(not_after=NOW + dt.timedelta(days=500)), Purpose.AUTO),
    ("expired", Severity.ERROR,
     Spec(not_before=NOW - dt.timedelta(days=100), not_after=NOW - dt.timedelta(days=10)),
     Purpose.AUTO),
    ("not-yet-valid", Severity.ERROR,
     Spec(not_before=NOW + dt.timedelta(days=10), not_after=NOW + dt.timedelta(days=100)),
     Purpose.AUTO),
    ("leaf-key-cert-sign", Severity.ERROR,
     Spec(ku=key_usage(digital_signature=True, key_cert_sign=True)), Purpose.AUTO),
    ("no-digital-signature", Severity.ERROR, Spec(ku=key_usage(key_encipherment=True)),
     Purpose.AUTO),
    ("key-usage-missing", Severity.WARNING, Spec(ku=None), Purpose.AUTO),
    ("unknown-critical-extension", Severity.ERROR,
     Spec(extra=[(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"),
                  True)]), Purpose.AUTO),
    ("serial-low-entropy", Severity.WARNING, Spec(serial=12345), Purpose.AUTO),
]


@pytest.mark.parametrize(("code", "severity", "spec", "purpose"), ZOO,
                         ids=[f"{z[0]}-{i}" for i, z in enumerate(ZOO)])
def test_each_defect_is_named(code: str, severity: Severity, spec: Spec, purpose: Purpose) -> None:
    findings = lint_certificate(build(spec), purpose=purpose)
    matching = [f for f in findings if f.code == code]
    assert matching, f"expected {code}, got {[f.code for f in findings]}"
    assert matching[0].severity is severity
    assert matching[0].message and matching[0].reference


def test_the_clean_baseline_of_the_zoo_is_clean() -> None:
    """The zoo's defaults are a correct server leaf: every finding above comes from one change."""
    assert lint_certificate(build(Spec()), purpose=Purpose.SERVER) == []


def test_ip_sans_are_fine_as_ip_sans() -> None:
    spec = Spec(sans=[x509.IPAddress(ipaddress.ip_address("10.0.0.1"))])
    assert lint_certificate(build(spec), purpose=Purpose.SERVER) == []


def test_errors_come_before_warnings() -> None:
    findings = lint_certificate(build(Spec(serial=99, aki=False)))
    assert [f.severity for f in findings] == [Severity.ERROR, Severity.WARNING]


@pytest.mark.parametrize("key_type", list(KeyType))
@pytest.mark.parametrize("kind", list(CertKind))
def test_everything_trustwire_issues_lints_clean(key_type: KeyType, kind: CertKind) -> None:
    root = create_root(name="Root", key_type=key_type, lifetime=dt.timedelta(days=3650),
                       path_length=1)
    inter = create_intermediate(root, name="Inter", key_type=key_type,
                                lifetime=dt.timedelta(days=1800),
                                constraints=NameConstraints.parse(dns=["example.internal"]))
    leaf = inter.issue("svc.example.internal", kind=kind, key_type=key_type,
                       sans=SubjectAltNames.parse(dns=["svc.example.internal"]),
                       lifetime=dt.timedelta(days=397))
    for cert in (root.cert, inter.cert, leaf.cert):
        assert lint_certificate(cert) == []
    purpose = Purpose.CLIENT if kind is CertKind.CLIENT else Purpose.SERVER
    assert lint_certificate(leaf.cert, purpose=purpose) == []


def _write(tmp_path: Path, cert: x509.Certificate, name: str = "c.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_cli_lint_reports_and_fails_on_errors(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    bad = _write(tmp_path, build(Spec(aki=False, sans=[x509.DNSName("10.0.0.1")])))
    result = cli("cert", "lint", bad)
    assert result.code == 1
    assert "aki-missing" in result.out and "ip-in-dns-san" in result.out
    assert "strict verification would fail" in result.out
    as_json = cli("cert", "lint", bad, "--json")
    assert as_json.code == 1
    data = json.loads(as_json.out)
    assert data["ok"] is False
    assert {f["code"] for f in data["certificates"][0]["findings"]} >= {"aki-missing", "ip-in-dns-san"}


def test_cli_lint_clean_certificate_exits_zero(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    good = _write(tmp_path, build(Spec()))
    result = cli("cert", "lint", good, "--purpose", "server")
    assert result.code == 0, result.out
    assert "No errors" in result.out


def test_cli_lint_purpose_changes_the_verdict(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    server_only = _write(tmp_path, build(Spec()))
    result = cli("cert", "lint", server_only, "--purpose", "client")
    assert result.code == 1
    assert "lacks clientAuth" in result.out


def test_cli_lint_of_garbage_is_a_clear_error(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    result = cli("cert", "lint", junk)
    assert result.code == 1
    assert result.err.startswith("error: ") and "not a valid PEM or DER certificate" in result.err
    assert "Traceback" not in result.err
    missing = cli("cert", "lint", tmp_path / "nope.pem")
    assert missing.code == 2
