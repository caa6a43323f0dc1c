"""Errors people actually hit, each one sentence plus a hint, exit code, no traceback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, Pki, run_trustwire
from tests.scenarios.helpers import NOBODY, as_user, assert_clean_error, shared_home
from tests.servers import serve_process

Cli = Callable[..., CliResult]


def serve_args(pki: Pki, cert: Path, key: Path, ca: Path | None = None) -> list[str | Path]:
    return ["--home", pki.home.root, "serve", "--listen", "127.0.0.1:0", "--cert", cert,
            "--key", key, "--ca", ca or pki.home.ca_cert_path]


def test_a_key_where_the_certificate_belongs(pki: Pki, cli: Cli) -> None:
    files = pki.home.identity("server")
    result = cli(*serve_args(pki, files.key, files.key))
    assert_clean_error(result, 1, f"{files.key} holds a private key, not a certificate")
    assert "PEM lib" not in result.err
    assert "hint: pass the certificate (NAME.crt) with --cert and its key (NAME.key) with --key" in result.err
    result = cli(*serve_args(pki, files.cert, files.cert))
    assert_clean_error(result, 1, f"{files.cert} holds a certificate, not a private key")
    assert "hint: pass the certificate" in result.err
    result = cli(*serve_args(pki, files.cert, files.key, ca=files.key))
    assert_clean_error(result, 1, f"{files.key} holds a private key, not a CA certificate")
    assert "hint: pass the CA certificate (HOME/ca/ca.crt) with --ca" in result.err


def test_a_client_certificate_used_for_a_server(pki: Pki, cli: Cli) -> None:
    result = cli("--home", pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "alice")
    assert_clean_error(result, 1, "is not a server certificate (unsuitable purpose")
    assert "hint: issue one for servers: trustwire cert issue NAME --server" in result.err


def test_a_missing_file(pki: Pki, cli: Cli, tmp_path: Path) -> None:
    files = pki.home.identity("server")
    missing = tmp_path / "nope.crt"
    for args, hint in ((serve_args(pki, missing, files.key), "check the path, or use --identity NAME"),
                       (serve_args(pki, files.cert, files.key, ca=missing),
                        "check the path given with --ca")):
        result = cli(*args)
        assert_clean_error(result, 1, f"{missing}: no such file")
        assert f"hint: {hint}" in result.err


def test_a_privileged_port_as_a_user(pki: Pki) -> None:
    with shared_home(pki.home.root, owner=NOBODY) as copy:
        result = as_user(NOBODY, "--home", copy, "serve", "--listen", "127.0.0.1:443",
                         "--identity", "server")
    assert_clean_error(result, 1, "cannot listen on 127.0.0.1:443: ports below 1024 need root or "
                                  "CAP_NET_BIND_SERVICE")
    assert "hint: use a port of 1024 or more" in result.err


@pytest.mark.parametrize(("server", "client", "message"), [
    ("line", "length", "hello"), ("length", "line", "hello"),
    ("length", "line", "a"),  # "a\n": 2 bytes of a length header that never completes
])
def test_framing_mismatch_is_named_without_waiting_out_the_timeout(pki: Pki, server: str,
                                                                   client: str, message: str) -> None:
    with serve_process(pki.home.root, "--identity", "server", "--framing", server) as (_, port):
        started = time.monotonic()
        result = run_trustwire("--home", pki.home.root, "send", f"localhost:{port}", message,
                               "--identity", "alice", "--framing", client, "--timeout", "30")
        took = time.monotonic() - started
    cli_result = CliResult(result.returncode, result.stdout, result.stderr)
    assert_clean_error(cli_result, 1, f"may use {server} framing")
    assert "hint: use the same --framing on both sides" in result.stderr
    assert result.stdout == "" and took < 5, took


def test_a_silent_server_hints_at_framing(pki: Pki, cli: Cli) -> None:
    tls = pki.server_tls().context()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    done = threading.Event()

    def accept() -> None:  # handshakes, then never answers
        conn, _ = listener.accept()
        with tls.wrap_socket(conn, server_side=True) as tls_conn:
            done.wait(10)
            del tls_conn

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        result = cli("--home", pki.home.root, "send", f"localhost:{port}", "hello",
                     "--identity", "alice", "--timeout", "1")
    finally:
        done.set()
        thread.join(10)
        listener.close()
    assert_clean_error(result, 1, "no reply within 1 seconds")
    assert "hint: the server may use the other framing (this client sends length; try --framing line)" in result.err


def test_hints_name_the_right_fix(pki: Pki, cli: Cli, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    nosuch = cli("--home", pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "nosuch")
    assert_clean_error(nosuch, 1, "there is no certificate named 'nosuch'")
    assert "hint: issue one with `trustwire cert issue nosuch --server`" in nosuch.err
    assert "--client" not in nosuch.err

    missing_ca = cli("--home", pki.home.root, "send", "localhost:1", "x", "--identity", "alice",
                     "--ca", tmp_path / "nope")
    assert_clean_error(missing_ca, 1, "cannot load the CA certificate")
    assert "hint: check the path given with --ca" in missing_ca.err
    assert "use --identity NAME" not in missing_ca.err

    (tmp_path / "hint_svc_mod.py").write_text("async def handle(conn):\n    pass\n\n"
                                              "def helper():\n    pass\n\nVALUE = 3\n")
    monkeypatch.chdir(tmp_path)
    wrong = cli("--home", pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                "--service", "hint_svc_mod:nope")
    assert_clean_error(wrong, 2, "'hint_svc_mod' has no attribute 'nope'")
    assert "hint: it has handle, helper; give --service MODULE:CALLABLE" in wrong.err
