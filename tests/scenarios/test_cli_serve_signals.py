"""Signals and workers: SIGTERM or SIGINT under load loses no reply; a killed worker is replaced."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.servers import children_of, running, serve_process
from trustwire.client import connect
from trustwire.errors import StreamError, TrustwireError


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_under_load_loses_no_in_flight_reply(pki: Pki, tmp_path: Path,
                                                        signum: signal.Signals) -> None:
    audit = tmp_path / "audit.jsonl"
    results: dict[str, int] = {}
    errors: list[str] = []
    stop = threading.Event()

    def client(port: int, index: int) -> None:
        try:
            c = connect("127.0.0.1", port, tls=pki.client("alice"), timeout=10)
        except TrustwireError as exc:
            errors.append(f"connect: {exc}")
            return
        address = "127.0.0.1:%d" % c._sock.getsockname()[1]  # noqa: UP031
        replies = 0
        try:
            while not stop.is_set():
                message = f"{index}-{replies}".encode()
                assert c.request(message) == message.upper()
                replies += 1
        except StreamError:
            pass  # the server closed us: expected at shutdown
        finally:
            results[address] = replies
            c.close()

    with serve_process(pki.home.root, "--identity", "server", "--audit-log", str(audit),
                       "--shutdown-grace", "5") as (proc, port):
        threads = [threading.Thread(target=client, args=(port, i)) for i in range(16)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        proc.send_signal(signum)
        assert proc.wait(20) == 0
        stop.set()
        for t in threads:
            t.join(20)
    assert not errors
    closed = {e["peer"]: e for e in map(json.loads, audit.read_text().splitlines())
              if e["event"] == "closed"}
    assert len(results) == 16 and sum(results.values()) > 100
    for address, replies in results.items():
        # every message the server received was answered and the answer arrived
        assert closed[address]["messages"] == replies, (address, closed[address], replies)
    assert {e["reason"] for e in closed.values()} <= {"server shutdown", "closed by peer"}


def test_killed_worker_is_replaced_and_the_others_keep_serving(pki: Pki) -> None:
    with running(pki.home.root, "serve", "--listen", "127.0.0.1:0", "--identity", "server",
                 "--workers", "2") as server:
        proc, port = server.proc, server.port
        deadline = time.monotonic() + 20
        while len(children_of(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = children_of(proc.pid)
        assert len(workers) == 2
        with connect("127.0.0.1", port, tls=pki.client("alice")) as c:
            assert c.request(b"before") == b"BEFORE"
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        served = 0
        for _ in range(20):  # the survivor keeps serving while the victim is replaced
            try:
                with connect("127.0.0.1", port, tls=pki.client("alice"), timeout=5) as c:
                    served += c.request(b"during") == b"DURING"
            except TrustwireError:
                pass
        assert served >= 15
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = children_of(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # a replacement that dies at start would be gone (and re-forked) by now
        replaced = children_of(proc.pid)
        assert len(replaced) == 2 and victim not in replaced
        said = server.said()
        assert said.count("died") == 1, said  # only the victim; no replacement died at start
        assert f"worker {victim} died (signal 9)" in said
        for _ in range(10):
            with connect("127.0.0.1", port, tls=pki.client("alice")) as c:
                assert c.request(b"after") == b"AFTER"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for pid in replaced:  # the parent reaped every worker before it exited
            assert not os.path.exists(f"/proc/{pid}")

