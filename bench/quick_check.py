"""Quick check of the two numbers the IO core is designed around.

1. Memory per idle mTLS connection: RSS growth of the server process.
2. Server CPU per 64-byte request/response round trip.

Usage: python bench/quick_check.py [--conns N] [--seconds S] [--home DIR]
The full comparison against haproxy, stunnel and nginx lives in bench/run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import cpu_seconds, rss_bytes  # bench/run.py: the same /proc readings for every bench

from trustwire.client import aconnect
from trustwire.pki.ca import CertKind
from trustwire.pki.names import SubjectAltNames
from trustwire.pki.store import Home
from trustwire.server import run
from trustwire.tls.context import ClientTLS


def start_server(home: Path, service: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustwire", "--home", str(home), "serve", "--service", service,
         "--listen", "127.0.0.1:0", "--identity", "server", "--max-connections", "50000",
         "--idle-timeout", "0"],
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
    return proc, port


async def idle_memory(pid: int, port: int, tls: ClientTLS, count: int) -> float:
    clients = []
    for _ in range(50):  # warm-up: the first connections pay for one-time allocations
        clients.append(await aconnect("localhost", port, tls=tls, confirm=False))
    await asyncio.sleep(0.5)
    before = rss_bytes([pid])
    sem = asyncio.Semaphore(64)

    async def one() -> None:
        async with sem:
            clients.append(await aconnect("localhost", port, tls=tls, confirm=True))

    await asyncio.gather(*(one() for _ in range(count)))
    await asyncio.sleep(1.0)
    after = rss_bytes([pid])
    for c in clients:
        c.tls.abort()
    return (after - before) / count


async def round_trips(pid: int, port: int, tls: ClientTLS, conns: int, seconds: float) -> tuple[int, float]:
    clients = [await aconnect("localhost", port, tls=tls) for _ in range(conns)]
    payload = b"x" * 64
    stop = time.monotonic() + seconds
    count = 0

    async def loop(c: object) -> None:
        nonlocal count
        while time.monotonic() < stop:
            await c.request(payload)  # type: ignore[attr-defined]
            count += 1

    cpu0 = cpu_seconds([pid])
    await asyncio.gather(*(loop(c) for c in clients))
    cpu = cpu_seconds([pid]) - cpu0
    for c in clients:
        c.tls.abort()
    return count, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conns", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        home.init_ca(name="bench CA")
        home.issue("server", kind=CertKind.SERVER, sans=SubjectAltNames.parse(dns=["localhost"]))
        home.issue("client", kind=CertKind.CLIENT)
        tls = ClientTLS.from_identity(home, "client")
        proc, port = start_server(home.root, "echo")
        try:
            per_conn = run(idle_memory(proc.pid, port, tls, args.conns))
            print(f"idle mTLS connection: {per_conn / 1024:.1f} KiB of server RSS "
                  f"({args.conns} connections)")
            count, cpu = run(round_trips(proc.pid, port, tls, 64, args.seconds))
            print(f"64-byte round trips on 64 connections: {count / args.seconds:.0f}/s, "
                  f"server CPU {cpu / count * 1e6:.1f} µs per round trip")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
