"""Renewal arithmetic and reload validation, without servers."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from trustwire.authz.policy import Policy
from trustwire.errors import ConfigError
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.renewal import crl_due, due_at, parse_before
from trustwire.pki.store import Home
from trustwire.tls.context import ServerTLS
from trustwire.tls.reload import ReloadError, build_material


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


def material(home: Home) -> object:
    return build_material(ServerTLS.from_identity(home, "server"), Policy)


def test_valid_material(home: Home) -> None:
    built = material(home)
    assert built.certificate is not None  # type: ignore[attr-defined]
    assert built.crl_next_update is not None  # type: ignore[attr-defined]
    assert home.cert_path("server") in built.files  # type: ignore[attr-defined]


def test_revoked_serials_are_carried(home: Home) -> None:
    record = home.issue("alice", kind=CertKind.CLIENT)
    home.revoke("alice")
    issuer = home.root_cert().subject.rfc4514_string()
    assert (issuer, record.serial) in material(home).revoked  # type: ignore[attr-defined]


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
        build_material(ServerTLS.from_identity(home, "server"), lambda: Policy.from_file(bad))
