"""The probe against openssl s_server configured the ways issue 12 found it wrong.

Legacy-only servers (static RSA, CBC-SHA1, TLS 1.0/1.1 only) are audited, not "could not probe";
a single-threaded strict mTLS server is judged right at the default concurrency; a SHA-1-signed
leaf is not a chain-order failure; an untrusted root is named as such; DH sizes are measured; a
server that enforces a weak suite first is flagged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import CliResult, Pki, require_tool
from tests.peers import daemon, free_port

pytestmark = pytest.mark.interop
Cli = Callable[..., CliResult]


@contextlib.contextmanager
def s_server(cert: Path, key: Path, *args: str) -> Iterator[int]:
    """An ``openssl s_server`` on loopback for as many connections as the probe makes."""
    port = free_port()
    with daemon([require_tool("openssl"), "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                 str(cert), "-key", str(key), "-quiet", *args], port=port):
        yield port


def probe(cli: Cli, port: int, *args: str | Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = cli("probe", f"127.0.0.1:{port}", "--server-name", "localhost", "--json", *args)
    assert result.code in (0, 1), (result.code, result.err)
    return result.code, json.loads(result.out)


def check(report: dict, check_id: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in report["checks"] if c["id"] == check_id)


def statuses(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["id"]: c["status"] for c in report["checks"]}


@pytest.fixture(scope="module")
def rsa_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> tuple[Path, Path]:
    """An RSA-2048 leaf from the test CA (static-RSA suites need an RSA key)."""
    tmp = tmp_path_factory.mktemp("rsa")
    ca_cert = x509.load_pem_x509_certificate(pki.home.ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.home.ca_key_path.read_bytes(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    (tmp / "rsa.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "rsa.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return tmp / "rsa.crt", tmp / "rsa.key"


@pytest.mark.parametrize(("args", "suites", "version", "failing"), [
    (["-tls1_2", "-cipher", "AES128-GCM-SHA256"], ["AES128-GCM-SHA256"], "TLSv1.2",
     "ciphers.weak.rsa"),
    (["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA"], ["AES128-SHA", "AES256-SHA"], "TLSv1.2",
     "ciphers.weak.cbc_sha1"),
    (["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"], ["ECDHE-RSA-AES128-SHA"], "TLSv1",
     "protocol.tlsv1"),
    (["-tls1_1", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"], ["ECDHE-RSA-AES256-SHA"],
     "TLSv1.1", "protocol.tlsv1_1"),
], ids=["static-rsa", "cbc-sha1", "tls1.0-only", "tls1.1-only"])
def test_a_legacy_only_server_gets_a_failed_verdict(
    cli: Cli, pki: Pki, rsa_server: tuple[Path, Path], args: list[str], suites: list[str],
    version: str, failing: str,
) -> None:
    with s_server(*rsa_server, *args) as port:
        code, report = probe(cli, port, "--ca", pki.home.ca_cert_path)
    assert code == 1
    accepted = [p["version"] for p in report["protocols"] if p["accepted"]]
    assert accepted == [version]
    assert sorted(report["cipher_suites"][version]) == sorted(suites)
    found = check(report, failing)
    assert found["status"] == "fail"
    assert all(s in found["detail"] for s in suites) or version.replace("TLSv", "TLS ") in \
        found["detail"], found


def enforcement(report: dict) -> dict[str, bool | None]:  # type: ignore[type-arg]
    return {e["case"]: e["refused"] for e in report["client_auth"]["enforcement"]}


def test_a_single_threaded_strict_server_is_judged_right_at_default_concurrency(
    cli: Cli, pki: Pki,
) -> None:
    server, alice = pki.home.identity("server"), pki.home.identity("alice")
    with s_server(server.cert, server.key, "-CAfile", str(server.ca), "-Verify", "2",
                  "-verify_return_error") as port:
        started = dt.datetime.now(dt.UTC)
        _, report = probe(cli, port, "--ca", pki.home.ca_cert_path, "--cert", alice.cert,
                             "--key", alice.key, "--ca-key", pki.home.ca_key_path)
        took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    auth = report["client_auth"]
    assert auth["requested"] is True and auth["required"] is True
    assert auth["our_certificate_accepted"] is True
    cases = enforcement(report)
    assert cases.pop("a valid certificate from your CA") is False
    assert cases and all(refused is True for refused in cases.values()), cases
    assert statuses(report)["clientauth.enforced"] == "pass"
    assert not [c for c in report["checks"] if "no verdict" in c["detail"]]
    assert took < 5, took


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None,
          issuer_key: rsa.RSAPrivateKey, *, ca: bool, digest: hashes.HashAlgorithm,
          aia: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(issuer.subject if issuer else _name(subject)).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=60))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                                        critical=False).add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if aia:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia))]),
            critical=False)
    return builder.sign(issuer_key, digest)


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A root, an intermediate and leaves: SHA-1-signed, and naming their issuer by AIA."""
    tmp = tmp_path_factory.mktemp("chains")
    keys = {n: rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for n in ("root", "inter", "leaf")}
    root = _cert("Chain Root", keys["root"], None, keys["root"], ca=True, digest=hashes.SHA256())
    inter = _cert("Chain Intermediate", keys["inter"], root, keys["root"], ca=True,
                  digest=hashes.SHA256())
    aia_leaf = _cert("localhost", keys["leaf"], inter, keys["inter"], ca=False,
                     digest=hashes.SHA256(), aia="http://ca.example/inter.crt")
    pem = serialization.Encoding.PEM
    files = {"root": root.public_bytes(pem), "inter": inter.public_bytes(pem),
             "aia": aia_leaf.public_bytes(pem),
             "key": keys["leaf"].private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()),
             "inter-key": keys["inter"].private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption())}
    paths = {}
    for name, data in files.items():
        paths[name] = tmp / f"{name}.pem"
        paths[name].write_bytes(data)
    # cryptography will not sign with SHA-1 any more; OpenSSL still does
    openssl = require_tool("openssl")
    (tmp / "ext.cnf").write_text("basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                                 "authorityKeyIdentifier=keyid\n")
    subprocess.run([openssl, "req", "-new", "-key", str(paths["key"]), "-subj", "/CN=localhost",
                    "-out", str(tmp / "leaf.csr")], check=True, capture_output=True)
    paths["sha1"] = tmp / "sha1.pem"
    subprocess.run([openssl, "x509", "-req", "-in", str(tmp / "leaf.csr"), "-CA", str(paths["inter"]),
                    "-CAkey", str(paths["inter-key"]), "-sha1", "-days", "30", "-set_serial", "7",
                    "-extfile", str(tmp / "ext.cnf"), "-out", str(paths["sha1"])],
                   check=True, capture_output=True)
    return paths


def test_a_sha1_leaf_is_a_signature_finding_not_a_chain_order_one(cli: Cli, chains: dict[str, Path]) -> None:
    with s_server(chains["sha1"], chains["key"], "-cert_chain", str(chains["inter"]),
                  "-cipher", "DEFAULT:@SECLEVEL=0") as port:
        _, report = probe(cli, port, "--ca", chains["root"])
    assert check(report, "cert.chain")["status"] == "pass", check(report, "cert.chain")
    signature = check(report, "cert.signature")
    assert signature["status"] == "fail" and "sha1" in signature["detail"].lower()
    trusted = check(report, "cert.trusted")  # the root is trusted (--ca): the digest is why
    assert trusted["status"] == "fail" and "you do not trust" not in trusted["detail"]
    assert "SHA-256" in trusted["fix"], trusted
    assert sum("sha1" in c["detail"].lower() for c in report["checks"]
               if c["status"] == "fail" and c["id"] != "cert.strict") == 1


def test_an_untrusted_root_is_named_and_a_missing_intermediate_is_told_apart(
    cli: Cli, pki: Pki, chains: dict[str, Path],
) -> None:
    with s_server(chains["aia"], chains["key"], "-cert_chain", str(chains["inter"])) as port:
        _, report = probe(cli, port, "--ca", pki.home.ca_cert_path)  # another CA entirely
    trusted = check(report, "cert.trusted")
    assert trusted["detail"].startswith("issued by a root you do not trust: CN=Chain Root")
    assert str(pki.home.ca_cert_path) in trusted["detail"]
    assert check(report, "cert.chain")["status"] == "pass"
    with s_server(chains["aia"], chains["key"]) as port:  # the intermediate is not sent
        _, report = probe(cli, port, "--ca", chains["root"])
    chain = check(report, "cert.chain")
    assert chain["status"] == "fail" and "intermediate CN=Chain Intermediate is not sent" in chain["detail"]
    assert "http://ca.example/inter.crt" in chain["detail"]


OAKLEY_GROUP_2 = int(  # RFC 2409's 1024-bit MODP prime: weak, and instant to load (no dhparam run)
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)


@pytest.mark.parametrize(("bits", "status"), [(1024, "fail"), (2048, "pass")])
def test_dh_parameters_are_measured_against_the_profile(
    cli: Cli, rsa_server: tuple[Path, Path], tmp_path: Path, bits: int, status: str,
) -> None:
    params = tmp_path / "dh.pem"
    if bits == 1024:
        from cryptography.hazmat.primitives.asymmetric import dh
        params.write_bytes(dh.DHParameterNumbers(OAKLEY_GROUP_2, 2).parameters().parameter_bytes(
            serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3))
    else:
        subprocess.run([require_tool("openssl"), "genpkey", "-genparam", "-algorithm", "DH",
                        "-pkeyopt", "group:ffdhe2048", "-out", str(params)], check=True)
    profile = tmp_path / "dhe.toml"
    profile.write_text('name = "dhe"\nbase = "intermediate"\n'
                       'ciphers = ["DHE-RSA-AES128-GCM-SHA256"]\n')
    with s_server(*rsa_server, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
                  "-dhparam", str(params)) as port:
        _, report = probe(cli, port, "--profile", profile)
    assert report["key_exchange"]["dh_param_size"] == bits
    found = check(report, "kex.dh_size")
    assert found["status"] == status and f"{bits}-bit" in found["detail"]
    if status == "fail":
        assert "2048" in found["detail"] and "ssl_dhparam" in found["fix"]


@pytest.mark.parametrize(("ciphers", "status"), [
    ("AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256", "fail"),
    ("ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", "info"),
])
def test_the_server_order_is_shown_and_a_weak_first_suite_is_flagged(
    cli: Cli, rsa_server: tuple[Path, Path], ciphers: str, status: str,
) -> None:
    with s_server(*rsa_server, "-tls1_2", "-serverpref", "-cipher", ciphers) as port:
        _, report = probe(cli, port)
    assert report["server_enforces_order"] is True
    assert report["server_cipher_order"] == ciphers.split(":")
    order = check(report, "ciphers.server_order")
    assert order["status"] == status and ciphers.replace(":", ", ") in order["detail"]
    if status == "fail":
        assert "picks AES128-SHA" in order["detail"] and "over ECDHE-RSA-AES128-GCM-SHA256" in order["detail"]



def test_tls13_groups_are_found_by_retry_request_without_key_generation(cli: Cli, pki: Pki) -> None:
    """Offering a group with no key share makes a server that takes it answer with a
    HelloRetryRequest naming it: ffdhe groups cost nothing, and the DH size follows."""
    server = pki.home.identity("server")
    with s_server(server.cert, server.key, "-tls1_3", "-groups", "ffdhe3072:P-384") as port:
        _, report = probe(cli, port, "--ca", pki.home.ca_cert_path)
    groups = {g["name"]: g["accepted"] for g in report["groups"]}
    assert {g for g, ok in groups.items() if ok} == {"ffdhe3072", "secp384r1"}
    assert groups["x25519"] is False and groups["X25519MLKEM768"] is False
    assert report["key_exchange"] == {"dh_param_size": 3072, "ecdh_param_size": 384}
