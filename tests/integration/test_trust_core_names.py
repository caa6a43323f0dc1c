"""Lookalike names in real certificates, against serve, tunnel server and a library server.

The policy's matching is unit-tested on names (tests/unit/authz/test_policy.py); this
checks the whole path instead: the names come out of a certificate the server's own CA
signed (a lenient or compromised issuing process signs whatever it is asked), cross
OpenSSL and the identity extraction, and must still not pass for an allowed identity.
``trustwire cert issue`` refuses most of these names, so the certificates are minted
here with the CA's key.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.trust import FLAVORS, Flavor, flavor, request, trust_home
from trustwire.pki.store import Home

ALLOWED_CN = "alice"
ALLOWED_URI = "spiffe://td/ns/*"


@pytest.fixture(scope="module", params=FLAVORS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[Flavor, Home]]:
    home = trust_home(tmp_path_factory.mktemp(f"names-{request.param}"))
    policy = home.root / "policy.toml"
    policy.write_text(f'[allow]\ncn = ["{ALLOWED_CN}"]\nuri = ["{ALLOWED_URI}"]\n')
    with flavor(request.param, home, "--policy", str(policy)) as running:
        yield running, home


def mint(home: Home, where: Path, cn: str | tuple[str, ...],
         uris: tuple[str, ...] = ()) -> ssl.SSLContext:
    """A client certificate with exactly these names (several CNs: a tuple), signed by
    the home's CA."""
    ca_cert = x509.load_pem_x509_certificate(home.ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(home.ca_key_path.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, one)
                                 for one in ((cn,) if isinstance(cn, str) else cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if uris:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path, key_path = where / "client.crt", where / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.create_default_context(cafile=str(home.ca_cert_path))
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


@pytest.mark.parametrize(("cn", "uris"), [
    ("alice", ()),                                  # the allowed CN
    ("nobody", ("spiffe://td/ns/web",)),            # an allowed SPIFFE ID
])
def test_the_allowed_names_get_in(server: tuple[Flavor, Home], tmp_path: Path, cn: str,
                                  uris: tuple[str, ...]) -> None:
    running, home = server
    reply, _, _ = request(mint(home, tmp_path, cn, uris), running.port)
    assert reply == b"HI"


@pytest.mark.parametrize(("cn", "uris"), [
    ("alice\n", ()), ("alice ", ()), (" alice", ()), ("Alice", ()), ("alice\x00", ()),
    ("alice\x00.evil", ()), ("\uff41lice", ()),         # fullwidth a (NFKC folds it to "alice")
    ("alic\u0435", ()),                                 # Cyrillic e
    ("alice\u200b", ()),                                # zero-width space
    (("alice", "mallory"), ()), (("mallory", "alice"), ()),  # which CN? neither
    ("a\u0301lice", ()),                                # a combining accent
    ("nobody", ("spiffe://td/ns/..",)), ("nobody", ("spiffe://td/ns/.",)),
    ("nobody", ("spiffe://td/ns/a/../web",)), ("nobody", ("spiffe://td/ns//web",)),
    ("nobody", ("spiffe://td/ns/",)), ("nobody", ("spiffe://td/ns/a%2Fb",)),
    ("nobody", ("spiffe://td/ns/%2e%2e",)), ("nobody", ("spiffe://td/ns/web?x=1",)),
    ("nobody", ("spiffe://td/ns/web#f",)), ("nobody", ("spiffe://td/ns/web/more",)),
    ("nobody", ("spiffe://td.evil/ns/web",)), ("nobody", ("spiffe://user@td/ns/web",)),
    ("nobody", ("spiffe://td:8443/ns/web",)), ("nobody", ("spiffe://td/ns/w%D0%B5b",)),
    ("nobody", ("https://td/ns/web",)),
])
def test_lookalike_names_are_refused_in_the_handshake(server: tuple[Flavor, Home],
                                                      tmp_path: Path,
                                                      cn: str | tuple[str, ...], uris: tuple[str, ...]) -> None:
    running, home = server
    ctx = mint(home, tmp_path, cn, uris)
    with pytest.raises((ssl.SSLError, OSError)) as refused:
        request(ctx, running.port)  # TLS 1.3: the alert arrives on the first read
    assert "CERTIFICATE_UNKNOWN" in str(refused.value).upper(), refused.value
