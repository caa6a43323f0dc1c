"""Handshake failures diagnosed on both sides, deterministically over memory BIOs."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import pytest
from cryptography import x509

from tests.conftest import Pki
from trustwire.tls.context import ClientTLS, Profile, ServerTLS
from trustwire.tls.diagnose import Diagnosis, diagnose

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@dataclass
class Outcome:
    server: Diagnosis | None
    client: Diagnosis | None


def _own(tls: ClientTLS) -> x509.Certificate | None:
    return x509.load_pem_x509_certificates(tls.cert.read_bytes())[0] if tls.cert else None


def handshake(server_ctx: ssl.SSLContext, client: ClientTLS | ssl.SSLContext,
              hostname: str = "localhost") -> Outcome:
    client_ctx = client.context() if isinstance(client, ClientTLS) else client
    own = _own(client) if isinstance(client, ClientTLS) else None
    presented = client.presents_certificate if isinstance(client, ClientTLS) else False
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    cli = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    s_err: BaseException | None = None
    c_err: BaseException | None = None
    s_done = c_done = False
    for _ in range(10):
        if not c_done and c_err is None:
            try:
                cli.do_handshake()
                c_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                c_err = exc
        s_in.write(c_out.read())
        if not s_done and s_err is None:
            try:
                srv.do_handshake()
                s_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                s_err = exc
        c_in.write(s_out.read())
    if c_done and c_err is None:  # TLS 1.3: the server's verdict arrives on the first read
        try:
            cli.read(10)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            c_err = exc
    return Outcome(
        server=diagnose(s_err, role="server") if s_err else None,
        client=diagnose(c_err, role="client", own_cert=own, presented=presented) if c_err else None,
    )


def server_ctx(pki: Pki, version: ssl.TLSVersion, name: str = "server",
               **options: object) -> ssl.SSLContext:
    return pki.server_tls(name, maximum_version=version, **options).context()


@pytest.mark.parametrize("version", VERSIONS)
def test_accepted(pki: Pki, version: ssl.TLSVersion) -> None:
    outcome = handshake(server_ctx(pki, version), pki.client("alice"))
    assert outcome == Outcome(server=None, client=None)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("client", "reason", "side"), [
    ("none", "client-cert-missing", "server"),
    ("foreign", "unknown-ca", "server"),
    ("expired", "expired", "server"),
    ("future", "not-yet-valid", "server"),
    ("mallory", "revoked", "server"),
    ("server", "wrong-eku", "server"),  # a server-only certificate used as a client's
])
def test_client_certificate_refusals(pki: Pki, version: ssl.TLSVersion, client: str,
                                     reason: str, side: str) -> None:
    tls = {"none": ClientTLS(ca=pki.home.ca_cert_path),
           "foreign": ClientTLS(ca=pki.home.ca_cert_path, cert=pki.other.cert_path("alice"),
                                key=pki.other.key_path("alice"))}.get(client) or pki.client(client)
    outcome = handshake(server_ctx(pki, version), tls)
    assert outcome.server is not None and outcome.server.reason == reason, outcome
    assert outcome.server.side == "server"
    assert outcome.client is not None and outcome.client.reason == reason, outcome
    assert outcome.client.side == side
    assert outcome.client.fix and outcome.server.fix


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("server_name", "hostname", "reason"), [
    ("elsewhere", "localhost", "hostname-mismatch"),
    ("server", "127.0.0.2", "hostname-mismatch"),
    ("alice", "localhost", "wrong-eku"),  # a client certificate used as a server's
    ("expired-server", "localhost", "expired"),
])
def test_server_certificate_refusals(pki: Pki, version: ssl.TLSVersion, server_name: str,
                                     hostname: str, reason: str) -> None:
    outcome = handshake(server_ctx(pki, version, server_name), pki.client("alice"), hostname)
    assert outcome.client is not None and outcome.client.reason == reason, outcome
    assert outcome.client.side == "client" and outcome.client.what == "the server's certificate"
    assert outcome.server is not None  # the server learns from the alert that it was refused
    assert outcome.server.side == "client"


def test_server_certificate_from_unknown_ca(pki: Pki) -> None:
    ctx = ServerTLS(cert=pki.other.cert_path("server"), key=pki.other.key_path("server"),
                    ca=pki.home.ca_cert_path).context()
    outcome = handshake(ctx, pki.client("alice"))
    assert outcome.client is not None and outcome.client.reason == "unknown-ca"
    assert outcome.server is not None and outcome.server.reason == "unknown-ca"
    assert outcome.server.what == "this server's certificate"


def test_old_protocol_is_refused(pki: Pki) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(pki.home.ca_cert_path)
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT@SECLEVEL=0")
    outcome = handshake(server_ctx(pki, ssl.TLSVersion.TLSv1_3), old)
    assert outcome.server is not None and outcome.server.reason == "protocol-too-old"
    assert outcome.client is not None and outcome.client.reason == "protocol-too-old"


def test_modern_profile_refuses_tls12(pki: Pki) -> None:
    modern = pki.server_tls(profile=Profile.MODERN).context()
    outcome = handshake(modern, pki.client("alice", maximum_version=ssl.TLSVersion.TLSv1_2))
    assert outcome.server is not None and outcome.server.reason == "protocol-too-old"


def test_no_shared_cipher(pki: Pki) -> None:
    weak = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    weak.load_verify_locations(pki.home.ca_cert_path)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA")  # RSA key exchange + CBC: not in the profile
    outcome = handshake(server_ctx(pki, ssl.TLSVersion.TLSv1_3), weak)
    assert outcome.server is not None and outcome.server.reason == "no-shared-cipher"


def test_plain_text_is_diagnosed() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = ctx.wrap_bio(s_in, s_out, server_side=True)
    s_in.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ssl.SSLError) as info:
        srv.do_handshake()
    assert diagnose(info.value, role="server").reason == "not-tls"


def test_diagnosis_sentences_read_well(pki: Pki) -> None:
    outcome = handshake(server_ctx(pki, ssl.TLSVersion.TLSv1_3), pki.client("expired"))
    assert outcome.client is not None
    assert outcome.client.sentence().startswith(
        "this client's certificate (CN=expired) was refused by the server:")
    assert "expired" in outcome.client.sentence()
    assert outcome.client.fix == "renew it: trustwire cert renew NAME"
