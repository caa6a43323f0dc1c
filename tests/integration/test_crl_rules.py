"""CRL rules on running servers: no rollback, and an expired CRL fails closed, truthfully."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.trust import FLAVORS, flavor, frame, read_frame, trust_home
from trustwire.client import Client, connect
from trustwire.errors import AccessDenied, HandshakeError, StoreError, StreamError
from trustwire.pki.crl import build_crl, crl_number
from trustwire.pki.store import Home
from trustwire.tls.context import ClientTLS, ServerTLS


@pytest.mark.parametrize("kind", FLAVORS)
def test_an_older_crl_copied_over_the_current_one_is_refused(tmp_path: Path, kind: str) -> None:
    """Break 6: an older, validly signed CRL was accepted and un-revoked."""
    home = trust_home(tmp_path)
    older = home.crl_path.read_bytes()
    with flavor(kind, home) as server:
        home.revoke("alice")
        server.wait_for("reloaded")
        home.crl_path.write_bytes(older)
        server.wait_for("refusing to roll back")
        for _ in range(2):  # and it stays refused: the watcher does not retry it into force
            with pytest.raises(HandshakeError) as info:
                connect("127.0.0.1", server.port, tls=ClientTLS.from_identity(home, "alice"))
            assert info.value.diagnosis.reason == "revoked"
            time.sleep(0.3)
        with connect("127.0.0.1", server.port, tls=ClientTLS.from_identity(home, "bob")) as bob:
            assert bob.request(b"hi") == b"HI"
    failed = [e for e in server.events("reload_failed") if "roll back" in e["error"]]
    assert failed and "not newer than number" in failed[0]["error"]


def without_crl(home: Home, name: str) -> ClientTLS:
    """A client that does not check the server against the home's CRL (it would find the
    CRL expired itself, truthfully): the server's refusal is what is under test."""
    files = home.identity(name)
    return ClientTLS(ca=files.ca, cert=files.cert, key=files.key)


def _short_lived_crl(home: Home, seconds: float) -> None:
    """Replace the home's CRL with one (same number, no revocations) that expires soon."""
    number = crl_number(home.crl())
    assert number is not None
    now = dt.datetime.now(dt.UTC)
    crl = build_crl(home.load_authority(), [], number=number, now=now - dt.timedelta(minutes=1),
                    lifetime=dt.timedelta(minutes=1, seconds=seconds))
    home.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("kind", ["serve", "library"])
def test_an_expired_crl_fails_closed_and_says_so(tmp_path: Path, kind: str) -> None:
    """Past nextUpdate a revocation could go unseen: every session is cut and every client
    refused, with internal_error (not OpenSSL's "certificate expired"), until a fresh CRL."""
    home = trust_home(tmp_path)
    _short_lived_crl(home, 3)
    with flavor(kind, home) as server:
        outcome: list[BaseException] = []

        def hold() -> None:
            try:
                with connect("127.0.0.1", server.port, tls=without_crl(home, "alice")) as alice:
                    while True:
                        alice.request(b"still here")
                        time.sleep(0.1)
            except StreamError as exc:
                outcome.append(exc)
            except HandshakeError as exc:
                outcome.append(exc)

        holder = threading.Thread(target=hold)
        holder.start()
        holder.join(8)
        assert outcome and isinstance(outcome[0], AccessDenied), outcome
        assert "the CRL in force has expired" in str(outcome[0])
        server.wait_for("the certificates it issued are refused until a fresh one is loaded")
        assert server.wait_for_event("crl_expired")["sessions_cut"] == 1
        with pytest.raises(HandshakeError) as info:
            connect("127.0.0.1", server.port, tls=without_crl(home, "bob"))
        diagnosis = info.value.diagnosis
        assert diagnosis.reason == "server-error" and "CRL has expired" in diagnosis.why
        assert "expired" not in diagnosis.what  # not the client's certificate
        failed = server.wait_for_event("handshake_failed")
        assert failed["reason"] == "crl-expired" and failed["cn"] == "bob"
        home.regenerate_crl()
        server.wait_for("reloaded")
        with connect("127.0.0.1", server.port, tls=ClientTLS.from_identity(home, "bob")) as bob:
            assert bob.request(b"back") == b"BACK"


def test_an_expired_crl_is_refused_at_start_and_at_reload(tmp_path: Path) -> None:
    import socket

    home = trust_home(tmp_path)
    _short_lived_crl(home, 0.5)
    time.sleep(1)
    # A CRL that is already expired stops the server at start: say so, do not serve blind.
    with pytest.raises(AssertionError, match="expired on"), flavor("serve", home):
        pass
    home.regenerate_crl()
    with flavor("serve", home) as server:
        _short_lived_crl(home, 0.0)  # the next one is born expired: refused at reload
        server.wait_for("failed, keeping the previous certificates")
        ctx = without_crl(home, "bob").context()
        with socket.create_connection(("127.0.0.1", server.port)) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(frame(b"ok"))
            assert read_frame(tls) == b"OK"  # the previous, valid CRL is still in force


@pytest.mark.parametrize("kind", FLAVORS)
def test_a_missing_home_crl_stops_the_start(tmp_path: Path, kind: str) -> None:
    """Third review: a home whose ca/crl.pem was removed used to serve with revocation off
    (a revoked client got in, and `cert revoke` later wrote a CRL nobody loaded)."""
    home = trust_home(tmp_path)
    home.revoke("alice")
    home.crl_path.unlink()
    with pytest.raises(AssertionError, match="crl.pem is missing, so revoked certificates "
                       "would be admitted"), flavor(kind, home):
        pass
    with pytest.raises(StoreError, match="CRL .* is missing"):
        ServerTLS.from_identity(home, "server")
    with pytest.raises(StoreError, match="CRL .* is missing"):
        ClientTLS.from_identity(home, "bob")  # a client checks the server against it too
    ServerTLS.from_identity(home, "server", client_auth=False)  # plain TLS: no CRL needed


@pytest.mark.parametrize("kind", FLAVORS)
def test_a_crl_removed_while_running_keeps_the_revocations(tmp_path: Path, kind: str) -> None:
    home = trust_home(tmp_path)
    with flavor(kind, home) as server:
        home.revoke("alice")
        server.wait_for("reloaded")
        home.crl_path.unlink()
        server.wait_for("failed, keeping the previous certificates")  # and says why:
        assert "crl.pem" in server.run.said().rsplit("failed, keeping", 1)[1]
        with pytest.raises(HandshakeError) as info:
            connect("127.0.0.1", server.port, tls=without_crl_file(home, "alice"))
        assert info.value.diagnosis.reason == "revoked"
        with connect("127.0.0.1", server.port, tls=without_crl_file(home, "bob")) as bob:
            assert bob.request(b"hi") == b"HI"
        home.regenerate_crl()  # a fresh CRL (alice still in it) is loaded again
        server.wait_for("reloaded", count=2)


def without_crl_file(home: Home, name: str) -> ClientTLS:
    """A client from the home's files, not checking the server against the (missing) CRL."""
    return ClientTLS(ca=home.ca_cert_path, cert=home.cert_path(name), key=home.key_path(name))


@pytest.mark.parametrize("kind", FLAVORS)
def test_a_broken_policy_file_does_not_hold_back_a_revocation(tmp_path: Path, kind: str) -> None:
    """Third review: a reload is all or nothing, so a typo in the policy file (or a
    certificate caught mid-renewal) kept a revocation written at the same time out of force.
    The failed reload now applies the CRL's new revocations on their own."""
    home = trust_home(tmp_path)
    policy = home.root / "policy.toml"
    policy.write_text('[allow]\ncn = ["alice", "bob"]\n')
    with flavor(kind, home, "--policy", str(policy)) as server:
        with connect("127.0.0.1", server.port, tls=ClientTLS.from_identity(home, "alice")) as alice:
            assert alice.request(b"before") == b"BEFORE"
            policy.write_text('[allow]\ncn = ["alice", "bob"')  # a typo
            server.wait_for("failed, keeping the previous certificates")
            home.revoke("alice")
            server.wait_for("new revocation(s) are in force all the same (1 session(s) cut)")
            # Cut: serve says why (AccessDenied); a tunnel just closes.
            with pytest.raises((AccessDenied, StreamError)):
                _ask_until_cut(alice)
        with pytest.raises(HandshakeError) as info:
            connect("127.0.0.1", server.port, tls=without_crl_file(home, "alice"))
        assert info.value.diagnosis.reason == "revoked"
        with connect("127.0.0.1", server.port, tls=ClientTLS.from_identity(home, "bob")) as bob:
            assert bob.request(b"still") == b"STILL"  # the previous policy is still in force
        policy.write_text('[allow]\ncn = ["bob"]\n')
        server.wait_for("reloaded")
    failed = [e for e in server.events("reload_failed") if "in force all the same" in e["error"]]
    assert failed and "not valid TOML" in failed[0]["error"]


def _ask_until_cut(client: Client) -> None:
    for _ in range(20):  # a cut session gets no more answers; 2 s at most
        client.request(b"after")
        time.sleep(0.1)
