"""The tunnel's TCP semantics and faults, with real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Pki
from tests.peers import free_port
from tests.servers import listener_process


class Backend:
    """An asyncio TCP (or Unix) server in a thread, running ``handler(reader, writer)``."""

    def __init__(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                 unix: Path | None = None) -> None:
        self.handler = handler
        self.unix = unix
        self.port = 0
        self.events: list[str] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.unix is not None:
            server = await asyncio.start_unix_server(self.handler, str(self.unix))
        else:
            server = await asyncio.start_server(self.handler, "127.0.0.1", 0, limit=1 << 20)
            self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()

    def __enter__(self) -> Backend:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def tunnel_pair(pki: Pki) -> Callable[..., contextlib.AbstractContextManager[int]]:
    """Start tunnel server (to TARGET) + tunnel client; yields the client's plain port."""

    @contextlib.contextmanager
    def start(target: str, *server_args: str) -> Iterator[int]:
        with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                              "--target", target, "--identity", "server", *server_args) as (_, ts), \
                listener_process(pki.home.root, "tunnel", "client", "--listen", "127.0.0.1:0",
                                 "--target", f"localhost:{ts}", "--identity", "alice") as (_, tc):
            yield tc

    return start


async def read_all_then_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read()  # to EOF
    writer.write(f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode())
    await writer.drain()
    writer.close()


def test_backend_that_answers_after_eof(
    tunnel_pair: Callable[..., contextlib.AbstractContextManager[int]],
) -> None:
    with Backend(read_all_then_answer) as backend, \
            tunnel_pair(f"127.0.0.1:{backend.port}") as port:
        payload = os.urandom(3 * 1024 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)  # EOF our way; the other way stays open
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
    assert answer.decode() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"


async def speak_then_listen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"greeting, then my side is done")
    await writer.drain()
    writer.write_eof()  # the backend's EOF first; it keeps reading
    data = await reader.read()
    with open(os.environ["TW_TEST_SINK"], "wb") as f:
        f.write(data)
    writer.close()


def test_eof_from_the_backend_keeps_the_client_direction_open(
    tunnel_pair: Callable[..., contextlib.AbstractContextManager[int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = tmp_path / "sink"
    monkeypatch.setenv("TW_TEST_SINK", str(sink))
    with Backend(speak_then_listen) as backend, \
            tunnel_pair(f"127.0.0.1:{backend.port}") as port:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            received = b""
            while chunk := s.recv(4096):  # until the backend's EOF arrives through the tunnel
                received += chunk
            assert received == b"greeting, then my side is done"
            s.sendall(b"still sending after your EOF")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(10) == b""
        deadline = time.monotonic() + 10
        while not sink.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sink.read_bytes() == b"still sending after your EOF"


def tls_connect(pki: Pki, port: int) -> ssl.SSLSocket:
    """A strict TLS client: without close_notify an end is an error, not a quiet EOF
    (Python's default, suppress_ragged_eofs=True, even reports a TCP reset as EOF)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return pki.client("alice").context().wrap_socket(raw, server_hostname="localhost",
                                                     suppress_ragged_eofs=False)


def test_target_down_then_up(pki: Pki, tmp_path: Path) -> None:
    target = free_port()
    audit = tmp_path / "a.jsonl"
    with listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                          "--target", f"127.0.0.1:{target}", "--identity", "server",
                          "--audit-log", str(audit)) as (_, ts):
        with tls_connect(pki, ts) as s:
            s.sendall(b"anyone there?")
            assert s.recv(100) == b""  # closed: nobody behind the tunnel
        time.sleep(1.2)
        events = [json.loads(line) for line in audit.read_text().splitlines()]
        closed = [e for e in events if e["event"] == "closed"]
        assert closed[-1]["reason"] == f"target 127.0.0.1:{target} unreachable: Connection refused"

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        backend = Backend(echo)
        backend.port = target
        # the tunnel keeps serving: once the target is up, the same tunnel works
        server = socket.create_server(("127.0.0.1", target))
        server.listen()

        def accept_once() -> None:
            conn, _ = server.accept()
            conn.sendall(conn.recv(100))
            conn.close()

        threading.Thread(target=accept_once, daemon=True).start()
        with tls_connect(pki, ts) as s:
            s.sendall(b"hello")
            assert s.recv(100) == b"hello"
        server.close()


async def reset_mid_transfer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"x" * 1_000_000)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_target_resets_mid_transfer(pki: Pki, tmp_path: Path) -> None:
    audit = tmp_path / "a.jsonl"
    with Backend(reset_mid_transfer) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server",
                             "--audit-log", str(audit)) as (_, ts):
        received = 0
        failed = None
        with tls_connect(pki, ts) as s:
            s.sendall(b"go")
            try:
                while chunk := s.recv(65536):
                    received += len(chunk)
            except (ConnectionResetError, ssl.SSLEOFError) as exc:
                failed = exc
        assert received <= 1_000_000
        assert failed is not None, "a reset behind the tunnel must not look like a clean end"
        time.sleep(1.2)
    closed = [json.loads(line) for line in audit.read_text().splitlines() if '"closed"' in line]
    assert closed and closed[-1]["reason"] == "target connection failed: Connection reset by peer"


def test_target_reset_reaches_a_plain_client_through_both_modes(
    tunnel_pair: Callable[..., contextlib.AbstractContextManager[int]],
) -> None:
    def read_to_end(s: socket.socket) -> None:
        while s.recv(65536):
            pass

    with Backend(reset_mid_transfer) as backend, \
            tunnel_pair(f"127.0.0.1:{backend.port}") as port, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"go")
        with pytest.raises(ConnectionResetError):
            read_to_end(s)


def test_client_reset_reaches_the_target(pki: Pki) -> None:
    outcome: list[str] = []

    async def slurp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
            outcome.append("eof")
        except ConnectionResetError:
            outcome.append("reset")
        writer.close()

    with Backend(slurp) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server") as (_, ts):
        s = tls_connect(pki, ts)
        s.sendall(b"y" * 500_000)
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        deadline = time.monotonic() + 10
        while not outcome and time.monotonic() < deadline:
            time.sleep(0.05)
    assert outcome == ["reset"]


def test_unix_socket_target(tunnel_pair: Callable[..., contextlib.AbstractContextManager[int]], tmp_path: Path) -> None:
    path = tmp_path / "svc.sock"
    with Backend(read_all_then_answer, unix=path), tunnel_pair(str(path)) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"over a unix socket")
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.decode() == f"18 {hashlib.sha256(b'over a unix socket').hexdigest()}"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_five_hundred_concurrent_tunnelled_transfers(pki: Pki) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    size = 256 * 1024
    with Backend(echo) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server",
                             "--max-connections", "2000") as (proc, ts):
        baseline = rss(proc.pid)
        peak = [baseline]
        context = pki.client("alice").context()

        async def one(index: int, gate: asyncio.Semaphore) -> bool:
            async with gate:
                reader, writer = await asyncio.open_connection("127.0.0.1", ts, ssl=context,
                                                               server_hostname="localhost")
            payload = os.urandom(size)

            async def send() -> None:
                for offset in range(0, size, 32768):
                    writer.write(payload[offset:offset + 32768])
                    await writer.drain()

            sender = asyncio.create_task(send())
            echoed = await reader.readexactly(size)
            await sender
            writer.close()
            return hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()

        async def watch(stop: asyncio.Event) -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss(proc.pid))
                await asyncio.sleep(0.05)

        async def main() -> list[bool]:
            stop = asyncio.Event()
            watcher = asyncio.create_task(watch(stop))
            gate = asyncio.Semaphore(100)
            results = await asyncio.wait_for(asyncio.gather(*(one(i, gate) for i in range(500))), 240)
            stop.set()
            await watcher
            return results

        results = asyncio.run(main())
    assert all(results) and len(results) == 500
    growth = peak[0] - baseline
    # 500 live tunnels: OpenSSL state plus bounded buffers; far below what unbounded
    # buffering of 2 x 128 MiB in flight would need.
    assert growth < 150 * 1024 * 1024, f"tunnel server grew by {growth / 2**20:.0f} MiB"
    print(f"\npeak RSS growth for 500 concurrent tunnels: {growth / 2**20:.1f} MiB")


def test_idle_tunnel_is_closed_and_logged(pki: Pki, tmp_path: Path) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    audit = tmp_path / "a.jsonl"
    with Backend(silent) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server",
                             "--idle-timeout", "1", "--audit-log", str(audit)) as (_, ts):
        with tls_connect(pki, ts) as s:
            started = time.monotonic()
            s.sendall(b"hello")
            assert s.recv(100) == b""  # close_notify from the tunnel: a clean, deliberate close
            assert 0.9 < time.monotonic() - started < 5
        time.sleep(1.2)
    closed = [json.loads(line) for line in audit.read_text().splitlines() if '"closed"' in line]
    assert closed[-1]["reason"] == "idle timeout" and closed[-1]["cn"] == "alice"


def test_target_closes_mid_transfer(tunnel_pair: Callable[..., contextlib.AbstractContextManager[int]]) -> None:
    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        writer.write(b"partial")
        await writer.drain()
        writer.close()  # FIN while the client still thinks it is mid-conversation

    with Backend(half_answer) as backend, tunnel_pair(f"127.0.0.1:{backend.port}") as port, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"request...")
        received = b""
        while chunk := s.recv(100):
            received += chunk
    assert received == b"partial"


def test_graceful_shutdown_lets_a_transfer_finish(pki: Pki) -> None:
    async def slow_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        for _ in range(5):
            writer.write(b"tick ")
            await writer.drain()
            await asyncio.sleep(0.2)
        writer.close()

    with Backend(slow_answer) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server",
                             "--shutdown-grace", "5") as (proc, ts):
        with tls_connect(pki, ts) as s:
            s.sendall(b"start")
            time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            received = b""
            while chunk := s.recv(100):  # strict client: only close_notify ends this quietly
                received += chunk
        assert received == b"tick " * 5
        assert proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ts), timeout=2)


def test_tunnel_server_with_workers(pki: Pki) -> None:
    async def shout(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.read(100)).upper())
        await writer.drain()
        writer.close()

    with Backend(shout) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server",
                             "--workers", "2") as (_, ts):
        for i in range(6):  # the port is announced only once both workers listen
            with tls_connect(pki, ts) as s:
                s.sendall(f"message {i}".encode())
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            assert answer == f"MESSAGE {i}".encode()


@pytest.mark.parametrize("direction", ["client-floods", "target-floods"])
def test_a_slow_side_bounds_the_tunnels_memory(pki: Pki, direction: str) -> None:
    """Nobody reads on one side while the other pushes as fast as it can: the tunnel must
    stop reading the fast side instead of buffering (RSS stays flat)."""
    stalled = threading.Event()

    async def target(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if direction == "target-floods":
            chunk = b"z" * 65536
            try:
                for _ in range(2000):  # 125 MiB if nobody pushed back
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), 3)
            except (TimeoutError, ConnectionError):
                stalled.set()
        else:
            await asyncio.sleep(8)  # never reads
        writer.close()

    with Backend(target) as backend, \
            listener_process(pki.home.root, "tunnel", "server", "--listen", "127.0.0.1:0",
                             "--target", f"127.0.0.1:{backend.port}", "--identity", "server") as (proc, ts):
        baseline = rss(proc.pid)
        s = tls_connect(pki, ts)
        s.settimeout(3)
        if direction == "client-floods":
            sent = 0
            chunk = b"a" * 65536
            with contextlib.suppress(TimeoutError):
                while sent < 125 * 2**20:
                    s.sendall(chunk)
                    sent += len(chunk)
            assert sent < 125 * 2**20, "the tunnel never pushed back"
        else:
            s.recv(10)  # start the flood, then stop reading
            assert stalled.wait(20), "the target was never pushed back"
        growth = rss(proc.pid) - baseline
        s.close()
    assert growth < 16 * 2**20, f"tunnel grew by {growth / 2**20:.1f} MiB"
