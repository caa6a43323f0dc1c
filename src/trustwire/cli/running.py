"""Running listeners from the CLI: one process or supervised workers.

Everything a listener is built from (certificates, key, CA, CRL, policy file)
is validated by :meth:`trustwire.ops.reload.TrustSource.build` before
anything is bound: the command builds its listener once in this process
first, so a bad file stops it with one sentence. Each process (or worker)
then runs :func:`trustwire.ops.runtime.run_listener`, the same loop a library
``Server.serve()`` runs: signals, the file watcher, the reloader, metrics.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from trustwire.cli.common import info
from trustwire.cli.options import OpsFlags
from trustwire.net.listener import Listener
from trustwire.net.workers import bind_reuseport, supervise
from trustwire.ops.audit import AuditLog, AuditObserver
from trustwire.ops.reload import Reloader
from trustwire.ops.runtime import Operations, listen_error, run_listener
from trustwire.server.server import run

__all__ = ["Make", "observer_for", "run_from_cli", "say"]

Make = Callable[[bool], tuple[Listener, Reloader | None]]
"""``make(open_audit) -> (listener, reloader)``; ``open_audit`` is False for the check run."""


def say(text: str) -> None:
    info(f"trustwire: {text}")


def observer_for(ops: OpsFlags, open_audit: bool) -> AuditObserver | None:
    if not open_audit or ops.audit_log is None:
        return None
    return AuditObserver(AuditLog.open(ops.audit_log))


async def _serve(make: Make, host: str, port: int, sock: socket.socket | None,
                 operations: Operations, index: int,
                 announce: Callable[[list[tuple[str, int]]], None] | None) -> None:
    listener, reloader = make(True)
    if reloader is not None:
        reloader.say = say
    await run_listener(listener, host, port, operations=operations, reloader=reloader,
                       sock=sock, announce=announce, say=say, metrics_port_offset=index)


def run_from_cli(make: Make, host: str, port: int, *, ops: OpsFlags, role: str,
                 grace: float, announce: Callable[[list[tuple[str, int]]], None]) -> None:
    """Serve until SIGTERM/SIGINT, in this process or in ``ops.workers`` supervised ones.

    Raises:
        TrustwireError: invalid certificates, key, CA, CRL or policy (before binding).
    """
    operations = ops.operations(role)
    make(False)  # validate everything before binding; a ReloadError is a TrustwireError
    if ops.workers == 1:
        run(_serve(make, host, port, None, operations, 0, announce))
        return
    try:
        reserved = bind_reuseport(host, port, listen=False)
    except OSError as exc:
        raise listen_error(host, port, exc) from exc
    address = reserved.getsockname()[:2]

    def worker(sock: socket.socket, index: int) -> int:
        run(_serve(make, host, port, sock, operations, index, None))
        return 0

    supervise(ops.workers, reserved, worker, grace=grace, log=say,
              ready=lambda: announce([address]))
