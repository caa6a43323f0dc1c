"""``--workers N``: N processes sharing one port with SO_REUSEPORT, supervised.

Theory of operation: the parent binds the address once *without* listening,
which reserves the port (port 0 becomes a real port) and lets every worker
bind the same port later, restarted ones included. Each worker is a forked
child that binds its own SO_REUSEPORT socket, listens, and runs its own event
loop, so the kernel spreads new connections over the workers' accept queues.

The parent runs no event loop. It waits for children and for signals:

* a worker that dies (crash, SIGKILL) is replaced, with a short back-off if
  workers keep dying at start (a broken config must not fork-bomb);
* SIGTERM / SIGINT are forwarded to every worker, which shut down gracefully;
  after the grace period the rest are killed;
* SIGHUP is forwarded (workers reload; see the operations issue).

Connections already accepted by a dying worker die with it; the others go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

__all__ = ["bind_reuseport", "supervise"]

RESTART_BACKOFF = 1.0
"""Seconds between restarts when workers die within a second of starting."""


def bind_reuseport(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket with SO_REUSEPORT bound to (host, port), listening if asked.

    Raises:
        OSError: the address is in use by another program, or not local.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        if listen:
            sock.listen(1024)
            sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def supervise(
    count: int, reserved: socket.socket, worker: Callable[[socket.socket, int], int], *,
    grace: float, log: Callable[[str], None], ready: Callable[[], None] = lambda: None,
    start_timeout: float = 60.0,
) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; returns the exit code.

    Args:
        count: number of worker processes.
        reserved: the parent's bound, non-listening socket (keeps the port).
        worker: runs in each child with its listening socket and its index (0..count-1,
            kept by a replacement); returns an exit code.
        grace: seconds workers get to finish after the parent is told to stop.
        log: where supervision messages go (stderr).
        ready: called once every first-generation worker is listening (announce here:
            a client that reads the announcement must find someone accepting).
        start_timeout: seconds to wait for that.
    """
    host, port = reserved.getsockname()[:2]
    children: dict[int, float] = {}
    indexes: dict[int, int] = {}
    stopping = False
    signals: list[int] = []
    ready_r, ready_w = os.pipe()  # each worker writes one byte once it listens

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                reserved.close()
                os.close(ready_r)
                sock = bind_reuseport(host, port, listen=True)
                os.write(ready_w, b".")
                os.close(ready_w)
                code = worker(sock, index)
            except BaseException as exc:
                print(f"error: worker {os.getpid()} failed: {exc}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        children[pid] = time.monotonic()
        indexes[pid] = index

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGCHLD, on_signal)  # wake the sleep below when a child exits
    for index in range(count):
        spawn(index)
    # The write end stays open in the parent: restarted workers report through it too.
    os.set_blocking(ready_r, False)
    listening = 0
    deadline = time.monotonic() + start_timeout
    while listening < count and time.monotonic() < deadline and not signals:
        try:
            listening += len(os.read(ready_r, count))
        except BlockingIOError:
            time.sleep(0.02)
    log(f"started {count} workers (pids {', '.join(map(str, children))})")
    ready()

    while children:
        while signals:
            signum = signals.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT) and not stopping:
                stopping = True
                deadline = time.monotonic() + grace + 2
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            elif signum == signal.SIGHUP:
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            started = children.pop(pid, time.monotonic())
            index = indexes.pop(pid, 0)
            if stopping:
                continue
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit code {os.WEXITSTATUS(status)}")
            log(f"worker {pid} died ({how}); starting a new one")
            if time.monotonic() - started < 1.0:
                time.sleep(RESTART_BACKOFF)
            spawn(index)
        if stopping and children and time.monotonic() > deadline:
            for pid in list(children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if children and not signals:
            time.sleep(0.05)
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(ready_r, 64)  # restarted workers report too; nobody waits for them
    reserved.close()
    os.close(ready_r)
    os.close(ready_w)
    return 0
