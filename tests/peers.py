"""Helpers to run real peer programs (openssl s_server/s_client, ...) on loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@contextlib.contextmanager
def openssl_s_server(
    openssl: str, *, cert: Path, key: Path, ca: Path, port: int, extra: list[str] | None = None,
    verify: bool = True,
) -> Iterator[subprocess.Popen[str]]:
    """``openssl s_server`` requiring a client certificate (-Verify 1), on 127.0.0.1:port."""
    args = [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert),
            "-key", str(key), "-CAfile", str(ca), "-naccept", "1", "-rev"]
    if verify:
        args += ["-Verify", "1", "-verify_return_error"]
    proc = subprocess.Popen([*args, *(extra or [])], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "ACCEPT" in line:
                break
            if not line and proc.poll() is not None:
                raise RuntimeError("openssl s_server exited before accepting")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def s_client(openssl: str, *, port: int, ca: Path, cert: Path | None = None,
             key: Path | None = None, data: str = "hello\nCLOSE\n", extra: list[str] | None = None,
             timeout: float = 20) -> subprocess.CompletedProcess[str]:
    args = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca),
            "-verify_return_error", "-ign_eof"]
    if cert is not None and key is not None:
        args += ["-cert", str(cert), "-key", str(key)]
    return subprocess.run([*args, *(extra or [])], input=data, capture_output=True, text=True,
                          timeout=timeout, check=False)
