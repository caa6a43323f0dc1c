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
    verify: bool = True, env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """``openssl s_server`` requiring a client certificate (-Verify 1), on 127.0.0.1:port
    (``env``: its environment, e.g. an ``OPENSSL_CONF``)."""
    args = [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert),
            "-key", str(key), "-CAfile", str(ca), "-naccept", "1", "-rev"]
    if verify:
        args += ["-Verify", "1", "-verify_return_error"]
    proc = subprocess.Popen([*args, *(extra or [])], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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


@contextlib.contextmanager
def daemon(args: list[str], *, port: int, host: str = "127.0.0.1", timeout: float = 15,
           cwd: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """Run a peer in the foreground until its port accepts connections; kill it after.

    Its stdin is a pipe that stays open: ``openssl s_server`` closes every connection right
    after the handshake once its stdin is at EOF, which no real server does."""
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise RuntimeError(f"{args[0]} exited with {proc.returncode}: {out}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{args[0]} did not listen on {port}") from None
                time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def nginx_config(tmp: Path, *, port: int, root: Path, extra_server: str = "") -> Path:
    """nginx serving ``root`` over plain HTTP, with PUT uploads (WebDAV) into it."""
    return nginx_sites_config(tmp, f"""
    client_max_body_size 200m;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ dav_methods PUT; create_full_put_path on; dav_access user:rw; }}
        {extra_server}
    }}""", head="user root;", connections=4096, log="warn")


def nginx_sites_config(tmp: Path, servers: str, *, head: str = "", connections: int = 1024,
                       log: str = "error") -> Path:
    """nginx in the foreground with ``servers`` (``server { ... }`` blocks and other http
    directives) as its http block, temporary files under ``tmp``."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    config = tmp / "nginx.conf"
    config.write_text(f"""
{head}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log stderr {log};
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    {servers}
}}
""")
    return config


@contextlib.contextmanager
def openssl_www(openssl: str, *, cert: Path, key: Path, ca: Path | None = None,
                port: int | None = None) -> Iterator[int]:
    """``openssl s_server -www`` (an HTTPS page describing the session) on 127.0.0.1; yields
    the port. ``cert`` may hold a chain (leaf first). With ``ca``, a client certificate
    issued under it is required."""
    port = port or free_port()
    args = [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-www", "-cert", str(cert),
            "-cert_chain", str(cert), "-key", str(key)]
    if ca is not None:
        args += ["-CAfile", str(ca), "-Verify", "1", "-verify_return_error"]
    with daemon(args, port=port):
        yield port
