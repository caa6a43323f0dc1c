"""`trustwire serve` and `trustwire send` as a user runs them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, Pki, run_trustwire
from tests.scenarios.helpers import assert_clean_error
from tests.servers import serve_process
from trustwire.errors import DOCS_URL

Cli = Callable[..., CliResult]


def send(pki: Pki, port: int, *args: str, name: str = "alice") -> tuple[int, str, str]:
    result = run_trustwire("--home", pki.home.root, "send", f"localhost:{port}", *args,
                           "--identity", name)
    return result.returncode, result.stdout, result.stderr


def test_the_tutorial_flow(pki: Pki, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with serve_process(pki.home.root, "--service", "upper", "--identity", "server",
                       "--audit-log", str(audit)) as (_, port):
        code, out, err = send(pki, port, "Hello, server!")
        assert (code, out) == (0, "HELLO, SERVER!\n"), err
        code, out, _ = send(pki, port, "one", "two", name="bob")
        assert out == "ONE\nTWO\n"
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    kinds = [(e["event"], e.get("cn")) for e in events]
    assert ("handshake_ok", "alice") in kinds and ("closed", "bob") in kinds
    closed = next(e for e in events if e["event"] == "closed" and e["cn"] == "bob")
    assert closed["messages"] == 2 and closed["bytes_in"] == 2 * (4 + 3)
    assert audit.stat().st_mode & 0o777 == 0o600


def test_send_reports_refusals_with_diagnosis(pki: Pki) -> None:
    with serve_process(pki.home.root, "--identity", "server", "--allow-cn", "alice") as (_, port):
        code, _, err = send(pki, port, "hi", name="mallory")
        assert code == 1 and err.startswith("error: this client's certificate (CN=mallory) was refused by the "
                                             "server: the server's CRL lists it as revoked")
        assert "hint: get a new certificate" in err and "Traceback" not in err
        assert err.splitlines()[-1] == f"see: {DOCS_URL}/reasons/revoked.html"  # the reason's page
        code, _, err = send(pki, port, "hi", name="bob")
        assert code == 1 and err.startswith("error: this client's certificate (CN=bob, OU=sales) was "
                                            "refused by the server: the server does not accept "
                                            "this identity")
        assert "alice" not in err  # the allow-list stays on the server
        assert err.splitlines()[-1] == f"see: {DOCS_URL}/reasons/policy-denied.html"
        code, out, _ = send(pki, port, "hi", name="alice")
        assert (code, out) == (0, "HI\n")


def test_line_framing_and_stdin(pki: Pki) -> None:
    with serve_process(pki.home.root, "--identity", "server", "--framing", "line") as (_, port):
        result = run_trustwire("--home", pki.home.root, "send", f"127.0.0.1:{port}",
                               "--identity", "alice", "--framing", "line")
        assert result.returncode == 0  # no messages and empty stdin: nothing to do
        proc = __import__("subprocess").run(
            [__import__("sys").executable, "-m", "trustwire", "--home", str(pki.home.root), "send",
             f"127.0.0.1:{port}", "--identity", "alice", "--framing", "line"],
            input="first line\nsecond line\n", capture_output=True, text=True, timeout=30)
        assert proc.stdout == "FIRST LINE\nSECOND LINE\n", proc.stderr


def test_custom_service_module(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "myservice.py").write_text(textwrap.dedent('''
        async def greet(conn):
            async for message in conn:
                await conn.send(b"hello " + conn.peer.common_name.encode() + b": " + message)
    '''))
    with serve_process(pki.home.root, "--identity", "server", "--service", "myservice:greet",
                       env={"PYTHONPATH": str(tmp_path)}) as (_, port):
        _code, out, err = send(pki, port, "hi")
        assert out == "hello alice: hi\n", err


def test_send_to_nothing(pki: Pki, cli: Cli) -> None:
    from tests.peers import free_port

    result = cli("--home", pki.home.root, "send", f"127.0.0.1:{free_port()}", "x",
                 "--identity", "alice", "--timeout", "3")
    assert_clean_error(result, 1, "cannot connect to 127.0.0.1:")
    assert "Connection refused" in result.err


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["--listen", "nonsense"], 2, "is not HOST:PORT"),
    (["--listen", "127.0.0.1:70000"], 2, "is not a port number"),
    (["--listen", "::1:80"], 2, "brackets"),
    (["--listen", "127.0.0.1:0", "--service", "nope"], 2, "unknown service 'nope'"),
    (["--listen", "127.0.0.1:0", "--service", "no_such_module:x"], 2, "cannot import"),
    (["--listen", "127.0.0.1:0"], 2, "give --identity NAME, or --cert FILE and --key FILE"),
    (["--listen", "127.0.0.1:0", "--identity", "ghost"], 1, "no certificate named 'ghost'"),
    (["--listen", "127.0.0.1:0", "--identity", "server", "--cert", "x.pem"], 2,
     "either --identity or --cert/--key"),
    (["--listen", "127.0.0.1:0", "--identity", "server", "--allow-fingerprint", "zz"], 2,
     "invalid fingerprint"),
    (["--listen", "127.0.0.1:0", "--identity", "server", "--no-client-auth", "--allow-cn", "a"], 2,
     "needs client certificates"),
    (["--listen", "127.0.0.1:0", "--identity", "server", "--max-frame", "0"], 2, "--max-frame"),
])
def test_serve_bad_input(pki: Pki, cli: Cli, args: list[str], code: int, fragment: str) -> None:
    result = cli("--home", pki.home.root, "serve", *args)
    assert_clean_error(result, code, fragment)


def test_serve_with_a_key_that_does_not_match(pki: Pki, cli: Cli) -> None:
    result = cli("--home", pki.home.root, "serve", "--listen", "127.0.0.1:0",
                 "--cert", pki.home.cert_path("server"), "--key", pki.home.key_path("alice"),
                 "--ca", pki.home.ca_cert_path)
    assert_clean_error(result, 1, "does not belong to the certificate")


def test_serve_bad_policy_file(pki: Pki, cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text('[allow]\ncommon_name = ["alice"]\n')
    result = cli("--home", pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity",
                 "server", "--policy", bad)
    assert_clean_error(result, 2, "unknown key(s) common_name")


def test_port_in_use(pki: Pki) -> None:
    with serve_process(pki.home.root, "--identity", "server") as (_, port):
        result = run_trustwire("--home", pki.home.root, "serve", "--listen", f"127.0.0.1:{port}",
                               "--identity", "server")
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use")


def test_policy_file_is_enforced(pki: Pki, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[allow]\nou = ["sales"]\n')
    with serve_process(pki.home.root, "--identity", "server", "--policy", str(policy)) as (_, port):
        assert send(pki, port, "x", name="bob")[1] == "X\n"
        code, _, err = send(pki, port, "x", name="alice")
        assert code == 1 and "OU=engineering" in err


def test_service_module_is_imported_from_the_current_directory(pki: Pki, tmp_path: Path) -> None:
    """As uvicorn does: `trustwire serve --service mod:fn` run where mod.py is, no PYTHONPATH."""
    import os
    import re
    import subprocess
    import sys

    (tmp_path / "localsvc.py").write_text(textwrap.dedent('''
        async def shout(conn):
            async for message in conn:
                await conn.send(message.upper() + b"!")
    '''))
    script = Path(sys.executable).parent / "trustwire"  # the console script, not python -m
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([str(script), "--home", str(pki.home.root), "serve", "--listen",
                             "127.0.0.1:0", "--identity", "server", "--service", "localsvc:shout"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None else "")
        _code, out, err = send(pki, int(match.group(1)), "hi")
        assert out == "HI!\n", err
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.parametrize(("source", "raised"), [
    ('raise RuntimeError("no database configured")', "RuntimeError: no database configured"),
    ("def broken(:\n", "SyntaxError: "),
])
def test_service_module_that_fails_to_import_is_the_users_error(
    cli: Cli, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, raised: str,
) -> None:
    """A --service module that raises while imported is named with what it raised, not
    reported as trustwire's "unexpected internal error ... report it"."""
    module = f"failing_{abs(hash(source))}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # what serve would add, undone after the test
    result = cli("--home", pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity",
                 "server", "--service", f"{module}:handler")
    assert_clean_error(result, 2, f"importing '{module}' for --service raised {raised}")
    assert "internal error" not in result.err and f"import {module}" in result.err
