"""Renewal arithmetic and reload validation, without servers."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from trustwire.errors import ConfigError, ReloadError
from trustwire.net.material import Material
from trustwire.ops.crls import ca_key
from trustwire.ops.reload import TrustSource
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.renewal import crl_due, due_at, parse_before
from trustwire.pki.store import Home
from trustwire.tls.context import ServerTLS


@pytest.mark.parametrize(("text", "value"), [("1/3", 1 / 3), ("0.25", 0.25), ("50%", 0.5)])
def test_parse_before(text: str, value: float) -> None:
    assert parse_before(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "1", "3/2", "abc", "1/0", "-10%"])
def test_parse_before_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_before(text)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path / "h")
    h.init_ca(name="CA")
    h.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]),
            lifetime=dt.timedelta(hours=3))
    return h


def test_due_at_is_a_fraction_of_the_lifetime(home: Home) -> None:
    with home.inventory() as inventory:
        record = inventory.current("server")
    assert record is not None
    assert due_at(record, 1 / 3) == record.not_after - record.lifetime / 3


def test_crl_due(home: Home) -> None:
    crl = home.crl()
    assert not crl_due(home, crl.last_update_utc)
    assert crl_due(home, crl.next_update_utc - dt.timedelta(days=1))  # 1 of 7 days left


def material(home: Home, current: Material | None = None) -> Material:
    return TrustSource(tls=ServerTLS.from_identity(home, "server")).build(current)


def test_valid_material(home: Home) -> None:
    built = material(home)
    assert built.certificate is not None
    assert built.crl is not None and built.crl.next_update is not None
    assert built.trust.crl_next_update == built.crl.next_update
    assert home.cert_path("server") in built.files
    root = home.root_cert()
    assert built.trust.anchors == {root.fingerprint(hashes.SHA256()).hex():
                                   root.subject.rfc4514_string()}


def test_revoked_serials_are_carried(home: Home) -> None:
    record = home.issue("alice", kind=CertKind.CLIENT)
    home.revoke("alice")
    assert (ca_key(home.root_cert()), record.serial) in material(home).trust.revoked


def test_the_ticket_epoch_follows_the_ca_and_crl_only(home: Home, tmp_path: Path) -> None:
    """Ticket keys derive from the epoch: it must change with the CRL, not with the policy."""
    first = material(home)
    policy_file = tmp_path / "p.toml"
    policy_file.write_text('[allow]\ncn = ["alice"]\n')
    with_policy = TrustSource(tls=ServerTLS.from_identity(home, "server"),
                              policy_file=policy_file).build()
    assert with_policy.epoch == first.epoch and with_policy.trust.policy.cn == {"alice"}
    home.issue("carol", kind=CertKind.CLIENT)
    home.revoke("carol")
    assert material(home).epoch != first.epoch


def test_an_older_crl_is_refused_as_a_rollback(home: Home) -> None:
    """A validly signed but older CRL copied over the current one must not un-revoke."""
    old_crl = home.crl_path.read_bytes()
    home.issue("carol", kind=CertKind.CLIENT)
    home.revoke("carol")
    current = material(home)
    assert material(home, current).crl == current.crl  # the same CRL again is no rollback
    home.crl_path.write_bytes(old_crl)
    with pytest.raises(ReloadError, match="not newer than number .* refusing to roll back"):
        material(home, current)
    home.regenerate_crl()
    assert material(home, current).crl.number > current.crl.number  # type: ignore[union-attr]


def test_rejects_a_foreign_crl(home: Home, tmp_path: Path) -> None:
    other = Home(tmp_path / "other")
    other.init_ca(name="other")
    shutil.copy(other.crl_path, home.crl_path)
    with pytest.raises(ReloadError, match="not signed by this CA"):
        material(home)


def test_rejects_an_expired_crl(home: Home) -> None:
    home.regenerate_crl(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    with pytest.raises(ReloadError, match="every client would be refused"):
        material(home)


def test_rejects_a_certificate_from_another_ca(home: Home, tmp_path: Path) -> None:
    other = Home(tmp_path / "other")
    other.init_ca(name="other")
    other.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    shutil.copy(other.cert_path("server"), home.cert_path("server"))
    shutil.copy(other.key_path("server"), home.key_path("server"))
    with pytest.raises(ReloadError, match="does not verify against"):
        material(home)


def test_rejects_a_bad_policy(home: Home, tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[allow]\nnope = []\n")
    with pytest.raises(ReloadError, match="unknown key"):
        TrustSource(tls=ServerTLS.from_identity(home, "server"), policy_file=bad).build()


def _two_cas(tmp_path: Path) -> tuple[Home, Home, TrustSource, Path]:
    a, b = Home(tmp_path / "a"), Home(tmp_path / "b")
    a.init_ca(name="CA a")
    b.init_ca(name="CA b")
    a.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    bundle, crls = tmp_path / "bundle.pem", tmp_path / "crls.pem"
    bundle.write_bytes(a.ca_cert_path.read_bytes() + b.ca_cert_path.read_bytes())
    crls.write_bytes(a.crl_path.read_bytes() + b.crl_path.read_bytes())
    files = a.identity("server")
    return a, b, TrustSource(tls=ServerTLS(cert=files.cert, key=files.key, ca=bundle, crl=crls)), crls


def test_every_crl_of_a_bundle_counts(tmp_path: Path) -> None:
    """Review finding: only the first CRL of a file was read for revocation, rollback and expiry."""
    a, b, source, crls = _two_cas(tmp_path)
    bob = b.issue("bob", kind=CertKind.CLIENT)
    first = source.build()
    assert len(first.crls) == 2 and not first.trust.revoked
    b_crl_before = b.crl_path.read_bytes()
    b.revoke("bob")
    crls.write_bytes(a.crl_path.read_bytes() + b.crl_path.read_bytes())
    second = source.build(first)
    assert (ca_key(b.root_cert()), bob.serial) in second.trust.revoked
    crls.write_bytes(a.crl_path.read_bytes() + b_crl_before)  # CA b's CRL rolled back
    with pytest.raises(ReloadError, match="from CN=CA b has number .* refusing to roll back"):
        source.build(second)
    b.regenerate_crl(now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    crls.write_bytes(a.crl_path.read_bytes() + b.crl_path.read_bytes())
    with pytest.raises(ReloadError, match="from CN=CA b\\) expired on"):
        source.build()


def test_crls_issued_in_the_future_or_twice_from_one_ca_are_refused(tmp_path: Path) -> None:
    a, b, source, crls = _two_cas(tmp_path)
    b.regenerate_crl(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    crls.write_bytes(a.crl_path.read_bytes() + b.crl_path.read_bytes())
    with pytest.raises(ReloadError, match="is not valid before .* a clock is wrong"):
        source.build()
    crls.write_bytes(a.crl_path.read_bytes() * 2)
    with pytest.raises(ReloadError, match="two CRLs from CN=CA a"):
        source.build()


def test_a_crl_without_a_number_cannot_replace_a_numbered_one(home: Home) -> None:
    from cryptography.hazmat.primitives import serialization

    current = material(home)
    authority = home.load_authority()
    plain = (x509.CertificateRevocationListBuilder().issuer_name(authority.cert.subject)
             .last_update(dt.datetime.now(dt.UTC))
             .next_update(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
             .sign(authority.key, hashes.SHA256()))  # type: ignore[arg-type]
    home.crl_path.write_bytes(plain.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ReloadError, match="has no number, not newer than number"):
        material(home, current)


def test_a_crl_of_a_still_trusted_ca_cannot_be_dropped(tmp_path: Path) -> None:
    """Second review: dropping CA b's CRL, then putting an older one back, rolled back its
    revocations in two reloads."""
    a, _, source, crls = _two_cas(tmp_path)
    current = source.build()
    crls.write_bytes(a.crl_path.read_bytes())
    with pytest.raises(ReloadError, match="no longer holds a CRL from CN=CA b, which is still"):
        source.build(current)


def test_a_removed_cas_crl_does_not_block_the_removal_and_its_floor_stays(tmp_path: Path,
                                                                          ) -> None:
    """Second review: removing a CA failed while its CRL stayed in the file (so the CA stayed
    trusted); and the newest CRL seen from it stays the floor if it comes back."""
    a, b, source, crls = _two_cas(tmp_path)
    b.issue("bob", kind=CertKind.CLIENT)
    older_b = b.crl_path.read_bytes()
    first = source.build()
    b.revoke("bob")
    crls.write_bytes(a.crl_path.read_bytes() + b.crl_path.read_bytes())
    second = source.build(first)
    bundle = source.tls.ca
    assert bundle is not None
    with_b = bundle.read_bytes()
    bundle.write_bytes(a.ca_cert_path.read_bytes())  # CA b removed, its CRL still in the file
    third = source.build(second)
    assert len(third.trust.anchors) == 1  # removed, though its CRL is still in the file
    assert [c.issuer for c in third.crls] == ["CN=CA a"]  # which can no longer be checked
    assert len(third.notices) == 1 and "the CRL from CN=CA b" in third.notices[0]
    bundle.write_bytes(with_b)  # CA b back, with its older CRL
    crls.write_bytes(a.crl_path.read_bytes() + older_b)
    with pytest.raises(ReloadError, match="from CN=CA b has number .* refusing to roll back"):
        source.build(third)


def test_the_homes_inventory_is_the_floor_across_restarts(home: Home, tmp_path: Path) -> None:
    """Second review: rollback protection lived in memory; a restarted (or replaced) worker
    took an old CRL copied back."""
    older = home.crl_path.read_bytes()
    home.issue("carol", kind=CertKind.CLIENT)
    home.revoke("carol")
    fresh = tmp_path / "no-floors-yet"  # as on a machine that never ran this server
    source = TrustSource(tls=ServerTLS.from_identity(home, "server"), home=home,
                         identity="server", floor_dir=fresh)
    assert source.build().crl is not None
    home.crl_path.write_bytes(older)
    with pytest.raises(ReloadError, match="but the CA has signed number 2"):
        TrustSource(tls=ServerTLS.from_identity(home, "server"), home=home, identity="server",
                    floor_dir=tmp_path / "elsewhere").build()  # a fresh start, no floor file
    assert TrustSource(tls=ServerTLS.from_identity(home, "server"),
                       floor_dir=tmp_path / "nowhere").build().crl is not None  # no home


def test_the_floor_on_disk_outlives_the_process(home: Home, tmp_path: Path) -> None:
    """Fifth review: with --crl FILE and no home, a replaced worker (or a restart) took a
    CRL its siblings refused as a rollback; the floor lived in memory only."""
    files = home.identity("server")
    crl = tmp_path / "copy.pem"
    crl.write_bytes(home.crl_path.read_bytes())
    older = crl.read_bytes()

    def source() -> TrustSource:
        return TrustSource(tls=ServerTLS(cert=files.cert, key=files.key, ca=files.ca, crl=crl),
                           floor_dir=tmp_path / "floors")

    assert source().build().crl is not None
    home.revoke("server")  # any revocation: a newer CRL
    crl.write_bytes(home.crl_path.read_bytes())
    assert source().build().crl is not None  # the floor on disk rises to it
    crl.write_bytes(older)
    with pytest.raises(ReloadError, match="refusing to roll back"):
        source().build()  # a new process, no material in force
    floor_files = list((tmp_path / "floors").iterdir())
    assert len(floor_files) == 1 and floor_files[0].suffix == ".json"


def test_the_home_is_checked_again_at_each_reload(home: Home) -> None:
    source = TrustSource(tls=ServerTLS.from_identity(home, "server"), home=home,
                         identity="server")
    current = source.build()
    home.ca_cert_path.chmod(0o666)
    with pytest.raises(ReloadError, match="can be written by other users"):
        source.build(current)


def test_after_a_failed_build_the_crls_revocations_are_salvaged_never_removed(
        home: Home, tmp_path: Path) -> None:
    home.issue("carol", kind=CertKind.CLIENT)
    policy = tmp_path / "policy.toml"
    policy.write_text('[allow]\ncn = ["carol"]\n')
    source = TrustSource(tls=ServerTLS.from_identity(home, "server"), policy_file=policy)
    current = source.build()
    assert source._revocations(current, current.trust) is None  # nothing new to add
    policy.write_text("[allow")
    record = home.revoke("carol")
    with pytest.raises(ReloadError, match="not valid TOML"):
        source.build(current)
    salvaged = source._revocations(current, current.trust)
    assert salvaged is not None
    trust, floors, added = salvaged
    assert added == 1 and (current.trust.revoked < trust.revoked)
    assert trust.policy == current.trust.policy  # only revocations change
    (issuer, before), = current.crl_floors.items()
    assert (floors[issuer].number or 0) > (before.number or 0)  # the new CRL is the floor now
    assert record.serial in {serial for _, serial in trust.revoked}
    home.crl_path.write_text("not a CRL")  # the CRL file broken too: nothing to salvage
    assert source._revocations(current, current.trust) is None
