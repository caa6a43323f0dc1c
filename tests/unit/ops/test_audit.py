"""The audit log stays bounded whatever peers send: per line, and per second."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

from trustwire.errors import Diagnosis
from trustwire.identity import PeerIdentity
from trustwire.ops.audit import FAILURES_PER_SECOND, AuditLog, AuditObserver

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FAILED = Diagnosis(reason="unknown-ca", side="server", what="the client's certificate",
                   why="it was not issued by a CA this server trusts")


def session(*, cn: str = "alice", uris: tuple[str, ...] = (), verified: bool = True) -> object:
    peer = PeerIdentity(common_name=cn, organizational_units=(), dns=(), ips=(), uris=uris,
                        serial=7, fingerprint="ab" * 32, not_before=NOW, not_after=NOW,
                        issuer="CN=CA")
    return SimpleNamespace(peer=peer, peer_verified=verified, address="127.0.0.1:5000")


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_forged_certificate_cannot_bloat_a_line(tmp_path: Path) -> None:
    """Review finding: 1,300 URI SANs in a self-signed certificate made 97 kB per line."""
    path = tmp_path / "audit.jsonl"
    observer = AuditObserver(AuditLog.open(str(path)))
    huge = tuple(f"spiffe://td/{i:04}/" + "x" * 60 for i in range(1300))
    observer.handshake_failed(session(cn="a" * 5000, uris=huge, verified=False), FAILED)  # type: ignore[arg-type]
    observer.handshake_failed(session(uris=huge), FAILED)  # type: ignore[arg-type]
    observer.flush()
    forged, verified = lines(path)
    assert forged["verified"] is False and "uri" not in forged
    assert len(str(forged["cn"])) <= 129
    assert isinstance(verified["uri"], list) and len(verified["uri"]) == 8
    assert max(len(line) for line in path.read_text().splitlines()) < 2000


def test_failed_handshakes_are_limited_per_second_and_counted(tmp_path: Path) -> None:
    """Review finding: every connect-then-close socket wrote a line (4 MB in 8 s)."""
    path = tmp_path / "audit.jsonl"
    observer = AuditObserver(AuditLog.open(str(path)))
    for _ in range(FAILURES_PER_SECOND + 30):
        observer.handshake_failed(session(), FAILED)  # type: ignore[arg-type]
    observer.flush()  # the sweep, once a second
    for _ in range(5):
        observer.handshake_failed(session(), FAILED)  # type: ignore[arg-type]
    observer.flush()
    events = lines(path)
    failed = [e for e in events if e["event"] == "handshake_failed"]
    suppressed = [e for e in events if e["event"] == "suppressed"]
    assert len(failed) == FAILURES_PER_SECOND + 5
    assert suppressed == [{**suppressed[0], "event_name": "handshake_failed", "count": 30}]
