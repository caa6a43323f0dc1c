"""The gate and OpenSSL agree about every CRL, and a revocation never waits (fifth and
sixth reviews).

Each case here once split the decision: a full handshake (OpenSSL's CRL check plus the
gate) went one way while open sessions, judged by the gate alone at the reload, went the
other; or a sound revocation was held back by something unrelated. The PKI is the one of
test_crl_intermediates.py: root R and intermediate IB in the CA file, IA in the server's
chain, carol issued by IB, dave by IA; the ``pki`` fixture's variants change IB's
spelling or name, or the CRLs' numbering.

The sixth review's cases also failed before their fix: a CRL whose issuer has an outer
space was not used; an intermediate whose issuer field has an outer space, or that
carries its root's name, escaped its root's revocation; salvage made a refused (future)
CRL the rollback floor; a floor file of the wrong shape crashed every reload, an unsafe
floor directory was used, and a rollback refusal did not name the floor file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.test_crl_intermediates import (
    NOW,
    Pki,
    _cert,
    _crl,
    _cut_reason,
    _open,
    _refused,
    _reload,
    _server,
    reissue_ib,
    serving,
)
from tests.servers import ServerThread
from tests.trust import frame, read_frame
from trustwire import services
from trustwire.errors import ReloadError
from trustwire.net.session import CUT_BOUND
from trustwire.ops.floors import FloorStore
from trustwire.ops.reload import TrustSource
from trustwire.server.server import Server
from trustwire.tls.context import ClientTLS, ServerTLS

PEM = serialization.Encoding.PEM


def _unnumbered(pki: Pki, this_update: dt.datetime, revoke: tuple[str, ...] = ()) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Int IB")]))
        .last_update(this_update).next_update(this_update + dt.timedelta(days=7))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            pki.ib_key.public_key()), critical=False)
    )
    for name in revoke:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(pki.serials[name])
            .revocation_date(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).build())
    return builder.sign(pki.ib_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _self_issued(made: Pki, tmp_path: Path) -> None:
    """IB carries its root's name ("Root R") with a key of its own."""
    ib = _cert("Root R", made.ib_key, "Root R", made.root_key, ca=True)  # self-issued
    key = ec.generate_private_key(ec.SECP256R1())
    carol = _cert("carol", key, "Root R", made.ib_key, ca=False,
                  eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    made.serials["carol"] = carol.serial_number
    (tmp_path / "carol.crt").write_bytes(carol.public_bytes(PEM) + ib.public_bytes(PEM))
    (tmp_path / "carol.key").write_bytes(key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "ca+ib.crt").write_bytes((tmp_path / "ca.crt").read_bytes()
                                         + ib.public_bytes(PEM))
    made.ib = ib
    made.write_crls(_crl("Root R", made.ib_key, 1))  # IB's CRL (its name is "Root R")


@pytest.fixture
def pki(request: pytest.FixtureRequest, tmp_path: Path) -> Pki:
    made = Pki(tmp_path)
    variant = getattr(request, "param", "plain")
    if variant == "respelled":
        reissue_ib(made, issuer="Root R ")
    if variant == "unnumbered":
        made.write_crls(_unnumbered(made, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    elif variant == "self-issued":
        _self_issued(made, tmp_path)
    else:
        made.write_crls(made.ib_crl(1))
    return made


@pytest.fixture
def server(pki: Pki, tmp_path: Path) -> Iterator[ServerThread]:
    yield from serving(pki, tmp_path)


def _handshake_ok(ctx: ssl.SSLContext, port: int) -> bool:
    try:
        _open(ctx, port).close()
        return True
    except (ssl.SSLError, OSError):
        return False


def _still_served(held: ssl.SSLSocket) -> bool:
    try:
        held.settimeout(3)
        held.sendall(frame(b"again"))
        return read_frame(held) == b"AGAIN"
    except (ssl.SSLError, OSError, ConnectionError):
        return False
    finally:
        held.close()


def test_revoking_an_intermediate_refuses_what_it_issued(pki: Pki, server: ServerThread) -> None:
    """OpenSSL checks the leaf's CRL only (CRL_CHECK_LEAF): R's CRL listing IB (its key
    leaked) had no effect on any path."""
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.fixed = _crl("Root R", pki.root_key, 2, (pki.ib.serial_number,)) + pki.ia_crl1
    pki.write_crls(pki.ib_written)
    assert _reload(server)[:2] == (True, 1)
    assert "the CA that issued the certificate of CN=carol has been revoked" in _cut_reason(held)
    held.close()
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    _open(pki.client("dave"), server.port).close()  # IA is not revoked


def _bad_root_crl(pki: Pki, kind: str) -> bytes:
    now = dt.datetime.now(dt.UTC)
    if kind == "expired":  # R's team let theirs lapse
        return _crl("Root R", pki.root_key, 2, next_update=now - dt.timedelta(minutes=1))
    if kind == "future":  # R's CA clock is an hour ahead
        return _crl("Root R", pki.root_key, 2, this_update=now + dt.timedelta(hours=1))
    return _crl("Root R", pki.root_key, 1)  # R's number 1 again, after number 2


@pytest.mark.parametrize("kind", ["expired", "future", "rollback"])
def test_another_cas_bad_crl_does_not_hold_back_a_revocation(
        pki: Pki, server: ServerThread, kind: str) -> None:
    """The reload rightly refuses R's CRL; IB's sound, newer CRL revoking carol must take
    effect all the same (salvage goes CRL by CRL)."""
    carol = pki.client("carol")
    if kind == "rollback":
        pki.fixed = _crl("Root R", pki.root_key, 2) + pki.ia_crl1
        pki.write_crls(pki.ib_written)
        assert _reload(server)[0]
    held = _open(carol, server.port)
    pki.fixed = _bad_root_crl(pki, kind) + pki.ia_crl1
    pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
    ok, cut, error = _reload(server)
    assert not ok and cut == 1, error
    assert error is not None and "new revocation(s) are in force all the same" in error
    assert "has been revoked" in _cut_reason(held)
    held.close()
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()


def test_a_crl_inside_the_clock_skew_refuses_on_every_path(pki: Pki, server: ServerThread,
                                                           ) -> None:
    """A CRL up to 5 minutes ahead is accepted (clocks differ), but OpenSSL refuses its
    certificates until its thisUpdate: so must the open sessions."""
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(pki.ib_crl(2, this_update=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)))
    ok, cut, error = _reload(server)
    assert (ok, cut) == (True, 1), error
    assert "not valid yet" in _cut_reason(held)
    held.close()
    assert not _handshake_ok(carol, server.port)
    _open(pki.client("dave"), server.port).close()


@pytest.mark.parametrize("spelling", ["CAFÉ ROOT", "Café\u00a0Root"])
def test_names_openssl_does_not_fold_are_not_folded(tmp_path: Path, spelling: str) -> None:
    """OpenSSL folds ASCII case and white space only: a CRL from "CAFÉ ROOT" is not one
    from "Café Root" for it, so it must not be for the gate either."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.crt").write_bytes(
        _cert("Café Root", root_key, "Café Root", root_key, ca=True).public_bytes(pem))
    for name, eku in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                      ("carol", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(name, key, "Café Root", root_key, ca=False, eku=eku,
                     dns="localhost" if name == "server" else None)
        (tmp_path / f"{name}.crt").write_bytes(leaf.public_bytes(pem))
        (tmp_path / f"{name}.key").write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    crl = tmp_path / "crl.pem"
    crl.write_bytes(_crl("Café Root", root_key, 1))
    tls = ServerTLS(cert=tmp_path / "server.crt", key=tmp_path / "server.key",
                    ca=tmp_path / "ca.crt", crl=crl)
    carol = ClientTLS(ca=tmp_path / "ca.crt", cert=tmp_path / "carol.crt",
                      key=tmp_path / "carol.key").context()
    with ServerThread(lambda audit: Server(services.upper, tls=tls),
                      audit_path=tmp_path / "audit.jsonl") as st:
        held = _open(carol, st.port)
        (tmp_path / "crl.tmp").write_bytes(_crl(spelling, root_key, 2))
        (tmp_path / "crl.tmp").replace(crl)
        ok, _, error = _reload(st)
        assert not ok and error is not None and "is not signed by this CA" in error
        assert _handshake_ok(carol, st.port) and _still_served(held)  # the old CRL stays


@pytest.mark.parametrize("spelling", ["Int IB ", " Int IB"])
def test_a_crl_spelled_with_an_outer_space_still_revokes(
        pki: Pki, server: ServerThread, spelling: str) -> None:
    carol = pki.client("carol")
    held = _open(carol, server.port)
    pki.write_crls(pki.ib_crl(2, name=spelling, revoke=("carol",)))
    outcome = _reload(server)  # ok or failed: the revocation must be in force either way
    time.sleep(CUT_BOUND + 0.5)
    assert not _still_served(held), f"carol's open session survived ({outcome})"
    assert not _handshake_ok(carol, server.port), "carol's new handshake was admitted"


@pytest.mark.parametrize("pki", ["respelled", "self-issued"], indirect=True)
def test_the_roots_revocation_of_an_intermediate_counts_however_it_is_named(
        pki: Pki, server: ServerThread) -> None:
    """IB's issuer field spelled "CN=Root R " (OpenSSL strips the space), or IB carrying
    its root's name with a key of its own (a key rollover's link certificate)."""
    carol = pki.client("carol")
    held = _open(carol, server.port)  # OpenSSL and the gate accept the chain
    pki.fixed = _crl("Root R", pki.root_key, 2, (pki.ib.serial_number,)) + pki.ia_crl1
    pki.write_crls(pki.ib_written)
    ok, cut, error = _reload(server)
    assert ok, error
    assert cut == 1 and not _still_served(held), "carol's open session survived IB's revocation"
    assert not _handshake_ok(carol, server.port), "carol, issued by a revoked CA, was admitted"


@pytest.mark.parametrize("pki", ["unnumbered"], indirect=True)
def test_a_refused_future_crl_does_not_become_the_floor(pki: Pki, server: ServerThread) -> None:
    now = dt.datetime.now(dt.UTC)
    carol = pki.client("carol")
    _open(carol, server.port).close()
    pki.write_crls(_unnumbered(pki, now + dt.timedelta(days=1), revoke=("carol",)))
    ok, _, error = _reload(server)
    assert not ok and error is not None and "in force all the same" in error  # salvaged
    assert "REVOKED" in _refused(carol, server.port).upper()
    # The CA's clock is fixed; its next CRL is correct and newer than the one in force.
    pki.write_crls(_unnumbered(pki, now, revoke=("carol",)))
    ok, _, error = _reload(server)
    assert ok, error


def _source(pki: Pki, floors: Path) -> TrustSource:
    tls = ServerTLS(cert=pki.where / "server.crt", key=pki.where / "server.key",
                    ca=pki.where / "ca+ib.crt", crl=pki.where / "crl.pem")
    return TrustSource(tls=tls, floor_dir=floors)


CORRUPTIONS = ["wrong-type", "nested"]
"""Floor files that once crashed every reload: a number written as a string (TypeError,
sixth review) and JSON nested past the recursion limit (RecursionError, seventh)."""


def _corrupt(store: FloorStore, how: str) -> None:
    if how == "nested":
        store.path.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
        return
    data = json.loads(store.path.read_text())
    store.path.write_text(json.dumps(
        {key: dict(entry, number=str(entry["number"])) for key, entry in data.items()}))


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupt_floor_file_does_not_crash_the_build(pki: Pki, tmp_path: Path,
                                                       how: str) -> None:
    source = _source(pki, tmp_path / "floors")
    source.build()
    _corrupt(FloorStore(pki.where / "crl.pem", tmp_path / "floors"), how)
    assert source.build().crl is not None  # the entries are ignored, the build goes on


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupt_floor_file_does_not_hold_back_a_revocation(
        pki: Pki, tmp_path: Path, how: str) -> None:
    with _server(pki, tmp_path, "ca+ib.crt") as st:
        store = FloorStore(pki.where / "crl.pem",
                           Path(os.environ["XDG_STATE_HOME"]) / "trustwire" / "crl-floors")
        assert store.path.exists()
        _corrupt(store, how)
        pki.write_crls(pki.ib_crl(2, revoke=("carol",)))
        carol = pki.client("carol")
        _open(carol, st.port).close()

        def attempt() -> object:
            try:
                return st.server.reloader.reload("test")  # type: ignore[union-attr]
            except Exception as exc:
                return exc

        outcome = st.call(attempt)
        assert not isinstance(outcome, Exception), f"the reload crashed: {outcome!r}"
        assert "REVOKED" in _refused(carol, st.port).upper()


@pytest.mark.parametrize("unsafe", ["world-writable", "foreign-owned"])
def test_an_unsafe_floor_directory_is_not_used(pki: Pki, tmp_path: Path, unsafe: str) -> None:
    """Another user who can write there could lower, raise or plant floors: the floors
    then stay in memory only, and the start and each reload say why."""
    floors = tmp_path / "floors"
    floors.mkdir()
    if unsafe == "world-writable":
        floors.chmod(0o777)
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to chown")
        os.chown(floors, 65534, 65534)
    planted = FloorStore(pki.where / "crl.pem", floors).path
    planted.write_text(json.dumps({"x": {"issuer": "CN=Int IB", "number": 10**9,
                                         "this_update": NOW.isoformat(), "fingerprint": ""}}))
    built = _source(pki, floors).build()  # the planted floor is not read...
    assert any("kept in memory only" in n and ("by others" in n or "another user" in n)
               for n in built.notices), built.notices
    assert json.loads(planted.read_text())["x"]["number"] == 10**9  # ...nor written over


def test_a_rollback_refusal_after_a_restart_names_the_floor_file(
        pki: Pki, tmp_path: Path) -> None:
    floors = tmp_path / "floors"
    _source(pki, floors).build()
    pki.write_crls(pki.ib_crl(2))
    _source(pki, floors).build()
    pki.write_crls(pki.ib_crl(1))  # restored from a backup, on purpose
    with pytest.raises(ReloadError) as info:
        _source(pki, floors).build()  # a restart: the floor comes from disk
    said = info.value.message + " " + (info.value.hint or "")
    assert str(FloorStore(pki.where / "crl.pem", floors).path) in said


@pytest.mark.parametrize("pki", ["unnumbered"], indirect=True)
def test_an_old_numbered_crl_cannot_replace_a_newer_unnumbered_one(
        pki: Pki, server: ServerThread) -> None:
    """Eighth review: with an unnumbered CRL in force, any numbered one was taken whatever
    its thisUpdate, so an old numbered CRL copied back un-revoked carol."""
    now = dt.datetime.now(dt.UTC)
    carol = pki.client("carol")
    pki.write_crls(_unnumbered(pki, now - dt.timedelta(minutes=1), revoke=("carol",)))
    assert _reload(server)[0]
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    pki.write_crls(pki.ib_crl(7, this_update=now - dt.timedelta(hours=2)))  # from before
    ok, _, error = _reload(server)
    assert not ok and error is not None and "refusing to roll back" in error
    assert "CERTIFICATE_REVOKED" in _refused(carol, server.port).upper()
    pki.write_crls(pki.ib_crl(8, revoke=("carol",), this_update=now))  # numbered, and newer
    assert _reload(server)[0]
