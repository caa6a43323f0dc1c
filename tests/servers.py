"""A trustwire listener (Server or tunnel) on a loopback port, in a thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from trustwire.net.listener import Listener
from trustwire.ops.audit import AuditLog, AuditObserver
from trustwire.server.server import run


class ServerThread:
    """Start with ``with ServerThread(lambda audit: Server(...), host) as st: st.port``."""

    def __init__(self, make: Callable[[AuditLog | None], Listener], host: str = "127.0.0.1",
                 audit_path: Path | None = None) -> None:
        self.make = make
        self.host = host
        self.audit_path = audit_path
        self.port = 0
        self.server: Listener | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            audit = AuditLog.open(str(self.audit_path)) if self.audit_path else None
            self.server = self.make(audit)
            if audit is not None and self.server.observer is None:
                self.server.observer = AuditObserver(audit)
            (_, self.port), *_ = await self.server.start(self.host, 0)
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await self.server.close(grace=2)
            if audit is not None:
                audit.close()

        try:
            run(serve)
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` on the server's loop and return its result."""
        assert self._loop is not None
        done = threading.Event()
        box: list[Any] = []

        def wrapper() -> None:
            box.append(func())
            done.set()

        self._loop.call_soon_threadsafe(wrapper)
        done.wait(10)
        return box[0]

    def flush_audit(self) -> None:
        if self.server is not None and self.server.observer is not None:
            self.call(self.server.observer.flush)

    def audit_events(self) -> list[dict[str, Any]]:
        self.flush_audit()
        if self.audit_path is None or not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line]

    def wait_for_event(self, predicate: Callable[[dict[str, Any]], bool],
                       timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.audit_events():
                if predicate(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no matching audit event; got {self.audit_events()}")

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)



def serve_process(home: Path, *args: str, env: dict[str, str] | None = None,
                  timeout: float = 30) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[str], int]]:
    """``trustwire --home HOME serve --listen 127.0.0.1:0 ARGS`` as a subprocess; yields (proc, port)."""
    return listener_process(home, "serve", "--listen", "127.0.0.1:0", *args, env=env,
                            timeout=timeout)


class Running:
    """A listener subprocess: its port, what it said on stderr, its metrics URL."""

    def __init__(self, proc: subprocess.Popen[str], port: int, lines: list[str]) -> None:
        self.proc = proc
        self.port = port
        self.lines = lines

    def said(self) -> str:
        return "".join(self.lines)

    def metrics_url(self) -> str:
        for line in self.lines:
            match = re.search(r"metrics and status on (http://\S+/)", line)
            if match:
                return match.group(1)
        raise AssertionError(f"no metrics URL in {self.lines}")

    def wait_for(self, text: str, timeout: float = 10, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.said().count(text) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not said within {timeout}s: {self.said()}")


@contextlib.contextmanager
def running(home: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 30, command: list[str] | None = None) -> Iterator[Running]:
    """``trustwire --home HOME ARGS`` (or ``command``) until it announces its port; stderr
    is collected."""
    proc = subprocess.Popen(
        command or [sys.executable, "-m", "trustwire", "--home", str(home), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            match = re.search(r" on (?:127\.0\.0\.1|\[::1\]):(\d+)", line)
            if match and "metrics and status" not in line:
                port = int(match.group(1))
                break
            if not line and proc.poll() is not None:
                raise AssertionError(f"exited with {proc.returncode}: {''.join(lines)}")
        if port is None:
            raise AssertionError(f"did not announce a port: {''.join(lines)}")
        stream = proc.stderr
        threading.Thread(target=lambda: [lines.append(x) for x in stream], daemon=True).start()
        yield Running(proc, port, lines)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def listener_process(home: Path, *args: str, env: dict[str, str] | None = None,
                     timeout: float = 30) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``trustwire --home HOME ARGS`` (serve or tunnel, listening on 127.0.0.1:0); yields (proc, port)."""
    with running(home, *args, env=env, timeout=timeout) as r:
        yield r.proc, r.port


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found
