"""Shared fixtures: homes with a CA, the CLI runner, peer programs, tree snapshots."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trustwire.cli.main import main
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.tls.context import ClientTLS, ServerTLS

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Listeners keep their CRL rollback floors in the user's state directory
# (trustwire.ops.floors): the test run, and every server it starts, gets its own.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="trustwire-test-state-")


def require_tool(name: str) -> str:
    """Path of a peer program; a missing one fails under CI=true and skips on a laptop."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path:
        return path
    if IN_CI:
        pytest.fail(f"{name} is not installed but CI=true: .ci/run must install it")
    pytest.skip(f"{name} is not installed")


def require_root() -> None:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("this test needs root (mount) and CI runs as root")
        pytest.skip("needs root to mount a tmpfs")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``trustwire ARGS`` in-process, returning exit code, stdout and stderr."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_trustwire(*args: str | Path, env: dict[str, str] | None = None,
                  timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trustwire ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "trustwire", *[str(a) for a in args]],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A fresh home with an ECDSA P-256 root CA."""
    h = Home(tmp_path / "home")
    h.init_ca(name="test CA")
    return h


@pytest.fixture
def inter_home(tmp_path: Path) -> Home:
    """A fresh home with a root and an intermediate constrained to example.internal."""
    from trustwire.pki.names import NameConstraints

    h = Home(tmp_path / "ihome")
    h.init_ca(
        name="test CA", intermediate=True,
        constraints=NameConstraints.parse(
            dns=["example.internal", "localhost"], ips=["127.0.0.0/8", "::1/128"],
            uris=["spiffe://example.internal"],
        ),
    )
    return h


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """One CA per test session with the usual identities: server, alice, bob (client),
    both (server+client), mallory (revoked)."""
    h = Home(tmp_path_factory.mktemp("session") / "home")
    h.init_ca(name="session CA")
    local = SubjectAltNames.parse(dns=["localhost"], ips=["127.0.0.1", "::1"])
    h.issue("server", kind=CertKind.SERVER, sans=local)
    h.issue("alice", kind=CertKind.CLIENT, organizational_unit="engineering")
    h.issue("bob", kind=CertKind.CLIENT, organizational_unit="sales")
    h.issue("both", kind=CertKind.BOTH, sans=local)
    h.issue("mallory", kind=CertKind.CLIENT)
    h.revoke("mallory")
    return h


@dataclass
class Pki:
    """Every identity the server/client tests need, from one session CA (and a foreign one)."""

    home: Home
    other: Home

    def client(self, name: str, **options: object) -> ClientTLS:
        return ClientTLS.from_identity(self.home, name, **options)  # type: ignore[arg-type]

    def server_tls(self, name: str = "server", **options: object) -> ServerTLS:
        return ServerTLS.from_identity(self.home, name, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Identities: server (localhost, 127.0.0.1, ::1), elsewhere (wrong name), alice (OU eng),
    bob (OU sales), both, mallory (revoked), expired, future (not yet valid), and ``other``:
    a foreign CA with its own alice."""
    import datetime as dt

    root = tmp_path_factory.mktemp("pki")
    h = Home(root / "home")
    h.init_ca(name="session CA")
    local = SubjectAltNames.parse(dns=["localhost"], ips=["127.0.0.1", "::1"])
    h.issue("server", kind=CertKind.SERVER, sans=local)
    h.issue("elsewhere", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["elsewhere.example"]))
    h.issue("alice", kind=CertKind.CLIENT, organizational_unit="engineering")
    h.issue("bob", kind=CertKind.CLIENT, organizational_unit="sales")
    h.issue("both", kind=CertKind.BOTH, sans=local)
    h.issue("mallory", kind=CertKind.CLIENT)
    h.revoke("mallory")
    now = dt.datetime.now(dt.UTC)
    h.issue("expired", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=1),
            now=now - dt.timedelta(days=10))
    h.issue("future", kind=CertKind.CLIENT, now=now + dt.timedelta(days=10))
    h.issue("expired-server", kind=CertKind.SERVER, sans=local, lifetime=dt.timedelta(days=1),
            now=now - dt.timedelta(days=10))
    other = Home(root / "other")
    other.init_ca(name="foreign CA")
    other.issue("alice", kind=CertKind.CLIENT)
    other.issue("server", kind=CertKind.SERVER, sans=local)
    return Pki(home=h, other=other)


def snapshot(root: Path, *, exclude: tuple[str, ...] = ()) -> dict[str, tuple[int, str]]:
    """Every file under ``root``: relative path -> (mode, sha256). For "nothing changed" checks."""
    result: dict[str, tuple[int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if any(rel.startswith(e) for e in exclude) or not path.is_file():
            continue
        result[rel] = (path.stat().st_mode & 0o777, hashlib.sha256(path.read_bytes()).hexdigest())
    return result


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs filesystems (for disk-full and read-only homes); unmounted after."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "1m") -> Path:
        require_root()
        point = tmp_path / name
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(point)], check=True)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)
