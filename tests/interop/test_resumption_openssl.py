"""Break 1 with the stock client: ``openssl s_client -sess_out`` before ``trustwire cert
revoke`` and ``-sess_in`` after it must not get back in, on every kind of server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.trust import FLAVORS, flavor, trust_home

pytestmark = pytest.mark.interop


def s_client(home_root: Path, port: int, name: str, version: str, *extra: str,
             ) -> tuple[int, str, str]:
    """One framed "hi" through s_client; returns (exit code, stdout, stderr)."""
    cmd = [require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}",
           "-servername", "localhost", f"-{version}",
           "-cert", str(home_root / "certs" / f"{name}.crt"),
           "-key", str(home_root / "certs" / f"{name}.key"),
           "-CAfile", str(home_root / "ca" / "ca.crt"), *extra]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"\x00\x00\x00\x02hi")
    proc.stdin.flush()
    time.sleep(0.4)  # the reply (and, before it, the session ticket) arrives
    proc.stdin.close()
    proc.stdin = None
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out.decode("latin-1"), err.decode("latin-1")


REPLY = "\x00\x00\x00\x02HI"  # the framed answer (base64 in the certificate dump may hold "HI")


def session_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(("New,", "Reused,")))


@pytest.mark.parametrize("kind", FLAVORS)
@pytest.mark.parametrize("version", ["tls1_2", "tls1_3"])
def test_s_client_cannot_resume_after_the_revocation(tmp_path: Path, kind: str,
                                                     version: str) -> None:
    home = trust_home(tmp_path)
    saved = tmp_path / "alice.sess"
    with flavor(kind, home) as server:
        code, out, _ = s_client(home.root, server.port, "alice", version, "-sess_out", str(saved))
        assert code == 0 and REPLY in out and session_line(out).startswith("New,")
        code, out, _ = s_client(home.root, server.port, "alice", version, "-sess_in", str(saved))
        assert code == 0 and REPLY in out and session_line(out).startswith("Reused,"), out
        home.revoke("alice")
        server.wait_for("reloaded")
        code, out, err = s_client(home.root, server.port, "alice", version, "-sess_in", str(saved))
        assert REPLY not in out and code != 0
        assert "Reused," not in out  # the ticket was not honoured: a full handshake, refused
        assert "alert certificate revoked" in err, err
