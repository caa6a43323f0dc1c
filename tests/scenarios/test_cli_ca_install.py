"""`trustwire ca install` / `ca uninstall`: the root in the system store, NSS and Java, and out again.

The system-store test changes this machine's trust (it is real: curl and Python's default
context are asked before, during and after) and restores it in a finally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, require_root, require_tool
from tests.peers import openssl_www
from tests.scenarios.helpers import NOBODY, as_user, assert_clean_error, shared_home
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.pki.truststores import TrustAnchor

Cli = Callable[..., CliResult]
LOCAL_CERTS = Path("/usr/local/share/ca-certificates")
JAVA_CACERTS = Path("/etc/ssl/certs/java/cacerts")
# Variables that point OpenSSL, curl and Python at a bundle: dropped so the defaults are tested.
_BUNDLE_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE")


@pytest.fixture
def web_home(home: Home) -> Home:
    home.issue("web", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
    return home


def plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _BUNDLE_VARS}


def curl_trusts(port: int) -> bool:
    result = subprocess.run([require_tool("curl"), "-sS", "-o", "/dev/null", f"https://localhost:{port}/"],
                            capture_output=True, text=True, timeout=30, check=False, env=plain_env())
    assert result.returncode == 0 or "certificate" in result.stderr, result.stderr
    return result.returncode == 0


def python_trusts(port: int) -> bool:
    code = ("import socket, ssl, sys\n"
            "ctx = ssl.create_default_context()\n"
            f"s = socket.create_connection(('localhost', {port}), timeout=10)\n"
            "try:\n"
            "    ctx.wrap_socket(s, server_hostname='localhost').close()\n"
            "except ssl.SSLCertVerificationError as e:\n"
            "    print(e.verify_message); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                            timeout=30, check=False, env=plain_env())
    assert result.returncode in (0, 3), result.stderr
    return result.returncode == 0


def java_has(alias: str, store: Path) -> bool:
    keytool = shutil.which("keytool")
    if keytool is None or not store.exists():
        return False
    result = subprocess.run([keytool, "-list", "-alias", alias, "-keystore", str(store),
                             "-storepass", "changeit"], capture_output=True, text=True, timeout=60,
                            check=False)
    return result.returncode == 0


@pytest.fixture
def system_store_restored(web_home: Home) -> Iterator[TrustAnchor]:
    """Whatever a test does to the system store, this root leaves it afterwards."""
    require_root()
    require_tool("update-ca-certificates")
    anchor = TrustAnchor.from_home(web_home)
    try:
        yield anchor
    finally:
        leftover = LOCAL_CERTS / f"{anchor.nickname}.crt"
        if leftover.exists() or (Path("/etc/ssl/certs") / f"{anchor.nickname}.pem").is_symlink():
            leftover.unlink(missing_ok=True)
            subprocess.run(["update-ca-certificates", "--fresh"], capture_output=True, check=False)


@pytest.mark.xdist_group("system-store")
def test_install_makes_curl_and_python_trust_and_uninstall_undoes_it(
    web_home: Home, cli: Cli, system_store_restored: TrustAnchor,
) -> None:
    anchor = system_store_restored
    web = web_home.identity("web")
    with openssl_www(require_tool("openssl"), cert=web.cert, key=web.key) as port:
        assert not curl_trusts(port) and not python_trusts(port)
        result = cli("--home", web_home.root, "ca", "install", "--store", "system", "--json")
        assert result.code == 0, result.err
        report = json.loads(result.out)
        assert report["ok"] and report["fingerprint"] == anchor.pin
        (system,) = report["stores"]
        assert system["outcome"] == "done" and system["store"] == "system"
        assert f"system: will write {LOCAL_CERTS}/{anchor.nickname}.crt" in result.err
        assert (LOCAL_CERTS / f"{anchor.nickname}.crt").read_bytes() == anchor.pem
        assert curl_trusts(port) and python_trusts(port)

        again = cli("-v", "--home", web_home.root, "ca", "install", "--store", "system")
        assert again.code == 0 and "done     system" in again.out
        assert "the root was already there" in again.out and "added" not in again.out, again.out
        assert "running" not in again.err  # update-ca-certificates is not run again

        result = cli("--home", web_home.root, "ca", "uninstall", "--store", "system")
        assert result.code == 0, result.err
        assert f"removed {LOCAL_CERTS}/{anchor.nickname}.crt" in result.out
        assert not curl_trusts(port) and not python_trusts(port)
    assert not list(Path("/etc/ssl/certs").glob(f"{anchor.nickname}*"))
    assert not java_has(f"debian:{anchor.nickname}.pem", JAVA_CACERTS)  # the hook's copy too
    result = cli("--home", web_home.root, "ca", "uninstall", "--store", "system")
    assert result.code == 0 and "nothing to remove" in result.out


def make_nss_db(directory: Path) -> Path:
    directory.mkdir(parents=True)
    subprocess.run([require_tool("certutil"), "-N", "-d", f"sql:{directory}", "--empty-password"],
                   check=True, capture_output=True, timeout=30)
    return directory


def nss_list(directory: Path) -> str:
    return subprocess.run([require_tool("certutil"), "-L", "-d", f"sql:{directory}"], check=True,
                          capture_output=True, text=True, timeout=30).stdout


def test_nss_databases_get_the_root_and_lose_it(web_home: Home, cli: Cli, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    anchor = TrustAnchor.from_home(web_home)
    explicit = make_nss_db(tmp_path / "nssdb")
    user = tmp_path / "user"
    firefox = make_nss_db(user / ".mozilla" / "firefox" / "abcd.default-release")
    monkeypatch.setenv("HOME", str(user))
    result = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--nss-db", explicit)
    assert result.code == 0, result.err
    assert result.out.count("done     nss") == 2, result.out
    for db in (explicit, firefox):
        listing = nss_list(db)
        assert anchor.nickname in listing and "C,," in listing, listing
        assert f"nss: will add {anchor.nickname} (trusted for TLS servers) to the NSS database sql:{db}" in result.out
    result = cli("--home", web_home.root, "ca", "uninstall", "--store", "nss", "--nss-db", explicit,
                 "--json")
    assert result.code == 0, result.err
    assert [s["detail"] for s in json.loads(result.out)["stores"]] == [f"removed {anchor.nickname}"] * 2
    for db in (explicit, firefox):
        assert anchor.nickname not in nss_list(db)
    again = cli("--home", web_home.root, "ca", "uninstall", "--store", "nss", "--nss-db", explicit)
    assert again.code == 0 and again.out.count("nothing to remove") == 2


def test_not_an_nss_database_fails_with_a_hint(web_home: Home, cli: Cli, tmp_path: Path) -> None:
    require_tool("certutil")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--nss-db", empty)
    assert result.code == 1
    assert "failed   nss" in result.out and "is not an NSS database" in result.out
    assert f"hint: create one with: certutil -N -d sql:{empty}" in result.out


def test_without_certutil_nss_is_skipped_naming_the_package(web_home: Home, cli: Cli, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user"
    db = make_nss_db(user / ".pki" / "nssdb")  # found by itself, not asked for
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--json")
    assert result.code == 0, result.err  # absent: not a failure
    (nss,) = json.loads(result.out)["stores"]
    assert nss["outcome"] == "skipped" and nss["absent"]
    assert "certutil is not installed" in nss["detail"] and "libnss3-tools" in nss["hint"]
    asked = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--nss-db", db, "--json")
    assert asked.code == 1, asked.err  # --nss-db asked for that store: its trust is not in place
    (nss,) = json.loads(asked.out)["stores"]
    assert nss["outcome"] == "skipped" and not nss["absent"] and "libnss3-tools" in nss["hint"]
    monkeypatch.undo()
    assert TrustAnchor.from_home(web_home).nickname not in nss_list(db)


def test_java_truststore(web_home: Home, cli: Cli, tmp_path: Path) -> None:
    keytool = shutil.which("keytool")
    if keytool is None:  # Java stays optional, in CI too: the skip is tested below
        pytest.skip("keytool is not installed")
    store = tmp_path / "trust.p12"
    subprocess.run([keytool, "-importcert", "-noprompt", "-alias", "other", "-file",
                    str(web_home.identity("web").cert), "-keystore", str(store), "-storetype",
                    "PKCS12", "-storepass", "changeit"], check=True, capture_output=True, timeout=60)
    anchor = TrustAnchor.from_home(web_home)
    result = cli("--home", web_home.root, "ca", "install", "--store", "java", "--java-store", store)
    assert result.code == 0, result.err
    assert f"imported alias {anchor.nickname}" in result.out
    assert java_has(anchor.nickname, store) and java_has("other", store)
    result = cli("--home", web_home.root, "ca", "uninstall", "--store", "java", "--java-store", store)
    assert result.code == 0 and f"deleted alias {anchor.nickname}" in result.out
    assert not java_has(anchor.nickname, store) and java_has("other", store)


def test_without_keytool_java_is_skipped(web_home: Home, cli: Cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    result = cli("--home", web_home.root, "ca", "install", "--store", "java", "--json")
    assert result.code == 0, result.err
    (java,) = json.loads(result.out)["stores"]
    assert java["outcome"] == "skipped" and "keytool is not installed" in java["detail"]
    assert "default-jre-headless" in java["hint"]


@pytest.mark.xdist_group("system-store")
def test_non_root_is_told_to_use_sudo(web_home: Home, system_store_restored: TrustAnchor) -> None:
    with shared_home(web_home.root, owner=NOBODY) as copy:
        # Relative to the cwd (/): the hint must name it absolutely, since sudo drops
        # TRUSTWIRE_HOME and root's own default home is another.
        result = as_user(NOBODY, "--home", str(copy).lstrip("/"), "ca", "install", "--store",
                         "system", "--json")
    assert result.code == 1, result.err  # the trust asked for is not in place
    (system,) = json.loads(result.out)["stores"]
    assert system["outcome"] == "skipped" and not system["absent"]
    assert "needs root" in system["detail"]
    assert system["hint"] == (f"rerun with sudo: sudo trustwire --home {copy.resolve()} ca install "
                              "--store system"), system
    assert not (LOCAL_CERTS / f"{system_store_restored.nickname}.crt").exists()


def test_refuses_a_ca_crt_that_is_not_a_root(web_home: Home, cli: Cli) -> None:
    before = sorted(LOCAL_CERTS.iterdir()) if LOCAL_CERTS.exists() else []
    shutil.copy(web_home.identity("web").cert, web_home.ca_cert_path)
    result = cli("--home", web_home.root, "ca", "install", "--store", "system")
    assert_clean_error(result, 1, "is not a self-signed CA certificate (CA:TRUE)")
    assert "hint: restore the home's ca.crt" in result.err
    assert (sorted(LOCAL_CERTS.iterdir()) if LOCAL_CERTS.exists() else []) == before


def test_nss_root_already_there_under_another_nickname_is_left_alone(
    web_home: Home, cli: Cli, tmp_path: Path,
) -> None:
    db = make_nss_db(tmp_path / "nssdb")
    anchor = TrustAnchor.from_home(web_home)
    subprocess.run([require_tool("certutil"), "-A", "-d", f"sql:{db}", "-n", "My Own", "-t", ",,",
                    "-i", str(web_home.ca_cert_path)], check=True, capture_output=True, timeout=30)
    result = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--nss-db", db)
    assert result.code == 0, result.err
    assert "already there as 'My Own'" in result.out and "added" not in result.out, result.out
    listing = nss_list(db)
    assert anchor.nickname not in listing
    (row,) = [line for line in listing.splitlines() if line.startswith("My Own")]
    assert row.split()[-1] == ",,", listing  # the user's trust flags, untouched
    result = cli("--home", web_home.root, "ca", "uninstall", "--store", "nss", "--nss-db", db)
    assert result.code == 0, result.err
    assert "there as 'My Own', which trustwire did not add" in result.out, result.out
    assert "My Own" in nss_list(db)


ISRG = Path("/etc/ssl/certs/ISRG_Root_X1.pem")


def _foreign_root(tmp_path: Path) -> Path:
    """A public root (a self-signed CA:TRUE certificate that is no home's)."""
    if ISRG.exists():
        return ISRG
    other = Home(tmp_path / "foreign")
    other.init_ca(name="foreign CA")
    return other.ca_cert_path


def _plain_home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "plain")
    home.init_ca(name="plain CA")
    return home


def _offline_root_home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "offline")
    home.init_ca(name="offline CA", intermediate=True)
    home.export_root(tmp_path / "vault")
    return home


def _encrypted_home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "sealed")
    home.init_ca(name="sealed CA", passphrase=b"correct horse")
    return home


@pytest.mark.parametrize(("make", "culprit"), [
    (_plain_home, "ca.key does not belong to"),
    (_offline_root_home, "intermediate.crt was not signed by"),
    (_encrypted_home, "crl.pem was not signed by"),
])
def test_refuses_a_public_root_copied_over_ca_crt(
    make: Callable[[Path], Home], culprit: str, cli: Cli, tmp_path: Path,
) -> None:
    home = make(tmp_path)
    db = make_nss_db(tmp_path / "nssdb")
    shutil.copy(_foreign_root(tmp_path), home.ca_cert_path)
    result = cli("--home", home.root, "ca", "install", "--store", "nss", "--nss-db", db)
    assert_clean_error(result, 1, culprit, "is not this home's root; refusing to install it")
    assert "hint: restore the home's ca.crt" in result.err
    assert "trustwire-" not in nss_list(db)


def test_refuses_without_trustwires_inventory(web_home: Home, cli: Cli, tmp_path: Path) -> None:
    db = make_nss_db(tmp_path / "nssdb")
    web_home.index_path.unlink()
    result = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--nss-db", db)
    assert_clean_error(result, 1, "index.db is missing or was not written by trustwire")
    assert "hint: install only from a home made by `trustwire ca init`" in result.err
    import sqlite3
    sqlite3.connect(web_home.index_path).execute("PRAGMA user_version = 1").connection.close()
    result = cli("--home", web_home.root, "ca", "install", "--store", "nss", "--nss-db", db)
    assert_clean_error(result, 1, "index.db is missing or was not written by trustwire")
    assert "trustwire-" not in nss_list(db)


@pytest.mark.parametrize("make", [_offline_root_home, _encrypted_home])
def test_offline_or_encrypted_root_is_still_installed(make: Callable[[Path], Home], cli: Cli,
                                                      tmp_path: Path) -> None:
    home = make(tmp_path)
    db = make_nss_db(tmp_path / "nssdb")
    result = cli("--home", home.root, "ca", "install", "--store", "nss", "--nss-db", db)
    assert result.code == 0, result.err
    assert TrustAnchor.from_home(home).nickname in nss_list(db)


def _keytool() -> str:
    keytool = shutil.which("keytool")
    if keytool is None:  # Java stays optional, in CI too
        pytest.skip("keytool is not installed")
    return keytool


def test_java_default_cacerts_as_non_root_is_skipped_for_root(web_home: Home) -> None:
    _keytool()
    with shared_home(web_home.root, owner=NOBODY) as copy:
        result = as_user(NOBODY, "--home", copy, "ca", "install", "--store", "java", "--json",
                         env={"JAVA_HOME": ""})
    assert result.code == 1, result.err  # the trust asked for is not in place
    (java,) = json.loads(result.out)["stores"]
    assert java["outcome"] == "skipped" and not java["absent"], java
    assert "needs root" in java["detail"] and "cacerts" in java["detail"], java
    assert java["hint"] == (f"rerun with sudo: sudo trustwire --home {copy.resolve()} ca install "
                            "--store java"), java
    assert "Certificate was added" not in result.out


def test_a_failing_keytool_is_reported_by_its_error_line() -> None:
    """keytool says "Certificate was added to keystore" on stderr, then fails (stdout)."""
    from trustwire.pki.anchor import error_line

    home = Path(tempfile.mkdtemp(prefix="tw-java-", dir="/tmp"))
    try:
        home.chmod(0o755)
        ca = Home(home / "h")
        ca.init_ca(name="java CA")
        ca.ca_cert_path.parent.chmod(0o755)
        result = subprocess.run(
            [require_tool("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             _keytool(), "-importcert", "-noprompt", "-alias", "x", "-file", str(ca.ca_cert_path),
             "-cacerts", "-storepass", "changeit"],
            capture_output=True, text=True, timeout=60, check=False, env=plain_env())
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert result.returncode != 0, result
    line = error_line(result)
    assert line.startswith("keytool error:") and "Permission denied" in line, (line, result)
