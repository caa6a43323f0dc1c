"""Renewal arithmetic and reload validation, without servers."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from trustwire.errors import ConfigError, ReloadError
from trustwire.net.material import Material
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
    issuer = home.root_cert().subject.rfc4514_string()
    assert (issuer, record.serial) in material(home).trust.revoked


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
