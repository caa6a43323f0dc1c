"""The home on disk: layout, modes, lifecycle, atomicity, corruption."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import snapshot
from trustwire.errors import (
    CAExists,
    CANotFound,
    CertificateNotFound,
    ConfigError,
    InventoryError,
    KeyFileError,
    NameConstraintError,
    NameInUse,
    PassphraseError,
    PKIError,
    StoreError,
)
from trustwire.pki import files as _files
from trustwire.pki.ca import CertKind
from trustwire.pki.crl import RevocationReason, crl_number
from trustwire.pki.inventory import Inventory, State, Status
from trustwire.pki.keys import KeyType
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_modes(home: Home) -> None:
    home.issue("alice", kind=CertKind.CLIENT)
    assert mode(home.root) == 0o700
    assert mode(home.ca_dir) == 0o700
    assert mode(home.certs_dir) == 0o700
    assert mode(home.ca_key_path) == 0o600
    assert mode(home.key_path("alice")) == 0o600
    assert mode(home.index_path) == 0o600
    assert mode(home.ca_cert_path) == 0o644
    assert mode(home.cert_path("alice")) == 0o644
    assert not list(home.root.rglob("*.tmp"))


def test_key_modes_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        h = Home(tmp_path / "h")
        h.init_ca(name="CA", intermediate=True)
        h.issue("bob", kind=CertKind.CLIENT)
    finally:
        os.umask(old)
    for key in (h.ca_key_path, h.intermediate_key_path, h.key_path("bob")):
        assert mode(key) == 0o600, key
    assert mode(h.root) == 0o700


def test_init_refuses_to_overwrite_and_touches_nothing(home: Home) -> None:
    before = snapshot(home.root)
    with pytest.raises(CAExists, match="refusing to overwrite"):
        home.init_ca(name="again")
    assert snapshot(home.root) == before


def test_operations_without_a_ca_say_so(tmp_path: Path) -> None:
    h = Home(tmp_path / "empty")
    with pytest.raises(CANotFound, match="there is no CA"):
        h.issue("x", kind=CertKind.CLIENT)
    with pytest.raises(CANotFound):
        h.inventory()


def test_passphrase_protected_ca(tmp_path: Path) -> None:
    h = Home(tmp_path / "h")
    h.init_ca(name="CA", passphrase=b"correct horse")
    assert b"ENCRYPTED" in h.ca_key_path.read_bytes()
    assert h.key_is_encrypted()
    with pytest.raises(PassphraseError, match="encrypted and no passphrase"):
        h.issue("a", kind=CertKind.CLIENT)
    with pytest.raises(PassphraseError, match="wrong passphrase"):
        h.issue("a", kind=CertKind.CLIENT, passphrase=b"battery staple")
    record = h.issue("a", kind=CertKind.CLIENT, passphrase=b"correct horse")
    assert record.name == "a"
    with pytest.raises(PassphraseError):
        h.revoke("a")
    assert h.inventory().current("a") is not None  # the failed revoke changed nothing


def test_duplicate_name_refused_until_revoked(home: Home) -> None:
    first = home.issue("alice", kind=CertKind.CLIENT)
    with pytest.raises(NameInUse, match="already exists"):
        home.issue("alice", kind=CertKind.SERVER)
    home.revoke("alice")
    second = home.issue("alice", kind=CertKind.CLIENT)
    assert second.serial != first.serial
    names = [r.name for r in home.inventory().all()]
    assert names.count("alice") == 2


def test_revoke_builds_a_crl_with_reason_and_number(home: Home) -> None:
    before = crl_number(home.crl())
    record = home.issue("alice", kind=CertKind.CLIENT)
    revoked = home.revoke("alice", reason=RevocationReason.KEY_COMPROMISE)
    assert revoked.state is State.REVOKED
    assert revoked.status(dt.datetime.now(dt.UTC)) is Status.REVOKED
    crl = home.crl()
    assert crl_number(crl) == (before or 0) + 1
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    entry = crl.get_revoked_certificate_by_serial_number(record.serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.key_compromise
    assert crl.is_signature_valid(home.root_cert().public_key())  # type: ignore[arg-type]
    with pytest.raises(PKIError, match="already revoked"):
        home.revoke(record.serial_hex)


def test_revoke_unknown_name_or_serial(home: Home) -> None:
    with pytest.raises(CertificateNotFound, match="no certificate named or numbered 'ghost'"):
        home.revoke("ghost")
    with pytest.raises(CertificateNotFound):
        home.revoke("0xdeadbeef")


def test_revoke_by_serial_with_colons(home: Home) -> None:
    record = home.issue("alice", kind=CertKind.CLIENT)
    hexed = record.serial_hex.rjust(len(record.serial_hex) + len(record.serial_hex) % 2, "0")
    colon = ":".join(hexed[i:i + 2] for i in range(0, len(hexed), 2)).upper()
    assert home.revoke(colon).serial == record.serial


def test_renew_keeps_names_and_supersedes(home: Home) -> None:
    old = home.issue("web", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["web.example"]),
                     organizational_unit="ops", lifetime=dt.timedelta(days=30))
    old_key = home.key_path("web").read_bytes()
    new = home.renew("web")
    assert new.serial != old.serial
    assert new.sans == old.sans and new.organizational_unit == "ops" and new.kind is old.kind
    assert abs(new.lifetime - old.lifetime) < dt.timedelta(seconds=2)
    assert home.key_path("web").read_bytes() != old_key  # a fresh key
    refreshed_old = home.inventory().by_serial(old.serial)
    assert refreshed_old is not None and refreshed_old.state is State.SUPERSEDED
    assert home.crl().get_revoked_certificate_by_serial_number(old.serial) is None  # still valid
    newer = home.renew("web", revoke_old=True, lifetime=dt.timedelta(hours=2))
    assert newer.lifetime < dt.timedelta(hours=3)
    revoked = home.crl().get_revoked_certificate_by_serial_number(new.serial)
    assert revoked is not None
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.superseded


def _csr_pem(name: str, sans: list[x509.GeneralName]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_sign_csr_then_renew_is_refused(home: Home) -> None:
    record, issued = home.sign_csr(_csr_pem("device", []), source="d.csr", kind=CertKind.CLIENT)
    assert not record.has_key and issued.private_key is None
    assert home.cert_path("device").exists() and not home.key_path("device").exists()
    with pytest.raises(PKIError, match="signed from a CSR"):
        home.renew("device")


def test_sign_csr_removes_a_stale_key_of_a_revoked_namesake(home: Home) -> None:
    home.issue("device", kind=CertKind.CLIENT)
    home.revoke("device")
    home.sign_csr(_csr_pem("device", []), source="d.csr", kind=CertKind.CLIENT)
    assert not home.key_path("device").exists()


@pytest.mark.parametrize("cn", ["alice\n", "alice\r", "al\x00ice", "alice\x1b"])
def test_csr_whose_cn_hides_a_control_character_is_refused(home: Home, cn: str) -> None:
    """A CSR CN of "alice\\n" would be a second "alice" that `cert revoke alice` misses."""
    home.issue("alice", kind=CertKind.CLIENT)
    home.revoke("alice")
    before = snapshot(home.root)
    with pytest.raises(ConfigError, match="invalid certificate name"):
        home.sign_csr(_csr_pem(cn, []), source="x.csr", kind=CertKind.CLIENT)
    with pytest.raises(ConfigError, match="invalid certificate name"):
        home.issue(cn, kind=CertKind.CLIENT)
    assert snapshot(home.root) == before


def test_csr_outside_constraints_is_refused(inter_home: Home) -> None:
    before = snapshot(inter_home.root)
    with pytest.raises(NameConstraintError, match=r"DNS:evil\.com"):
        inter_home.sign_csr(_csr_pem("x", [x509.DNSName("evil.com")]), source="x.csr",
                            kind=CertKind.SERVER)
    assert snapshot(inter_home.root) == before


def test_export_root_moves_the_key_and_issuance_continues(inter_home: Home, tmp_path: Path) -> None:
    original = inter_home.ca_key_path.read_bytes()
    dest = inter_home.export_root(tmp_path / "offline")
    assert dest.read_bytes() == original and mode(dest) == 0o600
    assert (tmp_path / "offline" / "ca.crt").exists()
    assert not inter_home.ca_key_path.exists()
    inter_home.issue("web.example.internal", kind=CertKind.SERVER)  # the intermediate signs
    inter_home.revoke("web.example.internal")  # and signs CRLs
    with pytest.raises(PKIError, match="already offline"):
        inter_home.export_root(tmp_path / "again")


def test_export_root_refused_without_intermediate_or_onto_existing_key(home: Home, inter_home: Home,
                                                                        tmp_path: Path) -> None:
    with pytest.raises(PKIError, match="no intermediate"):
        home.export_root(tmp_path / "out")
    assert home.ca_key_path.exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "ca.key").write_text("keep me")
    with pytest.raises(PKIError, match="refusing to overwrite"):
        inter_home.export_root(tmp_path / "busy")
    assert (tmp_path / "busy" / "ca.key").read_text() == "keep me"
    assert inter_home.ca_key_path.exists()


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_injected_write_failure_leaves_nothing_half_written(
    home: Home, monkeypatch: pytest.MonkeyPatch, fail_on_call: int,
) -> None:
    home.issue("alice", kind=CertKind.CLIENT)
    before = snapshot(home.root)
    calls = {"n": 0}
    real = _files._write_all

    def failing(fd: int, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] >= fail_on_call:  # the disk stays full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(_files, "_write_all", failing)
    with pytest.raises(StoreError, match="No space left on device") as info:
        home.issue("bob", kind=CertKind.CLIENT)
    assert info.value.hint and "disk space" in info.value.hint
    with pytest.raises(StoreError):
        home.revoke("alice")
    monkeypatch.undo()
    assert snapshot(home.root) == before
    assert home.inventory().current("bob") is None
    assert home.inventory().current("alice").state is State.CURRENT  # type: ignore[union-attr]


def test_failed_rename_rolls_back_the_inventory(
    home: Home, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home.issue("alice", kind=CertKind.CLIENT)
    before = snapshot(home.root)
    real_commit = _files.Staged.commit

    def rename_fails_for_cert(self: _files.Staged) -> None:
        if self.path.suffix == ".crt":
            raise StoreError("could not write x: Read-only file system")
        real_commit(self)

    monkeypatch.setattr(_files.Staged, "commit", rename_fails_for_cert)
    with pytest.raises(StoreError):
        home.issue("bob", kind=CertKind.CLIENT)  # key renamed first, then cert fails
    monkeypatch.undo()
    assert snapshot(home.root) == before
    assert home.inventory().current("bob") is None


def test_failed_inventory_commit_reverts_renamed_files(
    home: Home, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home.issue("alice", kind=CertKind.CLIENT)
    home.revoke("alice")  # so alice's name is free and her old files get overwritten
    before = snapshot(home.root)
    real_transaction = Inventory.transaction

    @contextlib.contextmanager
    def commit_fails(self: Inventory) -> Iterator[sqlite3.Connection]:
        with real_transaction(self) as db:
            yield db
            raise StoreError("could not write the inventory: database or disk is full")

    monkeypatch.setattr(Inventory, "transaction", commit_fails)
    with pytest.raises(StoreError, match="disk is full"):
        home.issue("alice", kind=CertKind.CLIENT)
    monkeypatch.undo()
    assert snapshot(home.root) == before  # alice's previous files are back, byte for byte


def test_corrupt_files_are_reported_plainly(home: Home) -> None:
    home.issue("alice", kind=CertKind.CLIENT)
    home.index_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InventoryError, match="is damaged"):
        home.issue("bob", kind=CertKind.CLIENT)
    with pytest.raises(InventoryError, match="is damaged"):
        home.inventory().all()


def test_corrupt_ca_cert_and_key(home: Home) -> None:
    home.ca_key_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not a valid PEM private key"):
        home.issue("a", kind=CertKind.CLIENT)
    home.ca_cert_path.write_text("nonsense")
    with pytest.raises(PKIError, match="not a valid PEM or DER certificate"):
        home.issue("a", kind=CertKind.CLIENT)


def test_key_not_matching_ca_cert(home: Home, tmp_path: Path) -> None:
    other = Home(tmp_path / "other")
    other.init_ca(name="other")
    home.ca_key_path.write_bytes(other.ca_key_path.read_bytes())
    with pytest.raises(KeyFileError, match="does not belong to"):
        home.issue("a", kind=CertKind.CLIENT)


def test_missing_inventory_is_an_error_not_a_fresh_start(home: Home) -> None:
    home.index_path.unlink()
    with pytest.raises(InventoryError, match="missing"):
        home.issue("a", kind=CertKind.CLIENT)
    assert not home.index_path.exists()


def test_error_messages_never_contain_key_material(tmp_path: Path) -> None:
    h = Home(tmp_path / "h")
    h.init_ca(name="CA", passphrase=b"s3cret-passphrase")
    key_text = h.ca_key_path.read_text()
    body = "".join(key_text.splitlines()[1:-1])
    for attempt in (None, b"wrong"):
        with pytest.raises(PassphraseError) as info:
            h.issue("a", kind=CertKind.CLIENT, passphrase=attempt)
        text = f"{info.value} {info.value.hint}"
        assert body[:40] not in text and "s3cret" not in text


# -- property: whatever valid names go in, a strict verifier accepts the result ----------------

_label = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_dns = st.lists(_label, min_size=2, max_size=4).map(".".join)
_ip = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dns=st.lists(_dns, min_size=1, max_size=3, unique=True),
       ips=st.lists(_ip, max_size=2, unique=True),
       key_type=st.sampled_from(list(KeyType)))
def test_issue_then_verify(tmp_path_factory: pytest.TempPathFactory, dns: list[str],
                           ips: list[str], key_type: KeyType) -> None:
    h = Home(tmp_path_factory.mktemp("prop") / "h")
    h.init_ca(name="prop CA")
    record = h.issue("svc", kind=CertKind.BOTH, sans=SubjectAltNames.parse(dns=dns, ips=ips),
                     key_type=key_type)
    leaf = record.certificate()
    store = Store([h.root_cert()])
    for name in dns:
        verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
        chain = verifier.verify(leaf, [])
        assert chain[0] == leaf
    client = PolicyBuilder().store(store).build_client_verifier().verify(leaf, [])
    assert client.chain[0] == leaf


@pytest.mark.parametrize("where", ["", "ca", "certs"])
def test_a_home_owned_by_another_user_is_refused(home: Home, where: str) -> None:
    """Another user's directory is theirs to swap the CA certificate or CRL in."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory away")
    target = home.root / where if where else home.root
    os.chown(target, 65534, 65534)
    try:
        before = snapshot(home.root)
        for attempt in (lambda: home.issue("eve", kind=CertKind.CLIENT), home.inventory,
                        lambda: home.identity("alice"), lambda: home.revoke("nobody")):
            with pytest.raises(StoreError, match="belongs to .*uid 65534.*not to you"):
                attempt()
        assert snapshot(home.root) == before
    finally:
        os.chown(target, 0, 0)
    home.issue("eve", kind=CertKind.CLIENT)  # given back: usable again


@pytest.mark.parametrize("mode", [0o777, 0o720, 0o702])
def test_a_home_others_can_write_is_refused(home: Home, mode: int) -> None:
    home.certs_dir.chmod(mode)
    with pytest.raises(StoreError, match="can be written by other users") as info:
        home.issue("eve", kind=CertKind.CLIENT)
    assert info.value.hint is not None and "chmod go-w" in info.value.hint
    home.certs_dir.chmod(0o755)  # readable by others is fine; writable is not
    home.issue("eve", kind=CertKind.CLIENT)


@pytest.mark.parametrize(("where", "mode", "message"), [
    ("ca/ca.crt", 0o666, "can be written by other users"),   # anyone could add a trust anchor
    ("ca/crl.pem", 0o646, "can be written by other users"),
    ("index.db", 0o662, "can be written by other users"),
    ("ca/ca.key", 0o644, "the private key .* can be read by other users"),
])
def test_the_cas_files_are_checked_too(home: Home, where: str, mode: int, message: str) -> None:
    """Review finding: only directories were checked; a 666 ca.crt was used as is."""
    (home.root / where).chmod(mode)
    with pytest.raises(StoreError, match=message):
        home.issue("eve", kind=CertKind.CLIENT)
    with pytest.raises(StoreError, match=message):
        home.inventory()


def test_an_identitys_files_are_checked_when_used(home: Home) -> None:
    home.issue("alice", kind=CertKind.CLIENT)
    home.key_path("alice").chmod(0o640)
    with pytest.raises(StoreError, match="can be read by other users") as info:
        home.identity("alice")
    assert info.value.hint is not None and "chmod 600" in info.value.hint
    home.key_path("alice").chmod(0o600)
    home.cert_path("alice").chmod(0o664)
    with pytest.raises(StoreError, match="can be written by other users"):
        home.identity("alice")
    home.cert_path("alice").chmod(0o644)
    assert home.identity("alice").cert == home.cert_path("alice")


def test_a_ca_certificate_owned_by_another_user_is_refused(home: Home) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    os.chown(home.ca_cert_path, 65534, 65534)
    try:
        with pytest.raises(StoreError, match="belongs to .*uid 65534"):
            home.identity("anyone")
    finally:
        os.chown(home.ca_cert_path, 0, 0)


@pytest.mark.parametrize("ou", ["eng\n", "eng\x1b[31m", "", "x" * 65, "eng\u200b", "eng\u202e"])
def test_an_organizational_unit_is_checked_whole(home: Home, ou: str) -> None:
    """Review finding: --ou 'eng\\n' was issued as is (and shown raw by cert show)."""
    before = snapshot(home.root)
    with pytest.raises(ConfigError, match="organizational unit"):
        home.issue("eve", kind=CertKind.CLIENT, organizational_unit=ou)
    assert snapshot(home.root) == before


def test_a_symlink_into_a_directory_another_user_controls_is_refused(home: Home,
                                                                    tmp_path: Path) -> None:
    """Second review: ca.crt linked to a root-owned file in a directory owned by someone else,
    who could then swap the trust anchor behind the link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    elsewhere.chmod(0o777)
    (elsewhere / "ca.crt").write_bytes(home.ca_cert_path.read_bytes())
    home.ca_cert_path.unlink()
    home.ca_cert_path.symlink_to(elsewhere / "ca.crt")
    with pytest.raises(StoreError, match="elsewhere can be written by other users"):
        home.identity("anyone")
    elsewhere.chmod(0o755)
    with pytest.raises(PKIError, match="no certificate named"):
        home.identity("anyone")  # a link into a safe directory is fine
