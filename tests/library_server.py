"""A library server, run as the README shows, for the tests that need a real process.

``python -m tests.library_server HOME serve|tunnel [--target HOST:PORT] [--policy FILE]``

It announces ``library server on 127.0.0.1:PORT`` on stderr (as the CLI does), reports
reloads on stderr, writes its audit log to HOME/library-audit.jsonl, and relies on
``Server.serve()`` for SIGHUP, SIGTERM, SIGINT and file watching: no CLI code involved.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trustwire as tw
from trustwire.ops.audit import AuditLog, AuditObserver


def say(text: str) -> None:
    print(f"trustwire: {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("kind", choices=["serve", "tunnel"])
    parser.add_argument("--target")
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--reload-interval", type=float, default=0.2)
    args = parser.parse_args()
    logging.basicConfig(format="trustwire: %(message)s", stream=sys.stderr)  # library notices
    tls = tw.ServerTLS.from_identity(args.home, "server")
    audit = AuditLog.open(str(Path(args.home) / "library-audit.jsonl"))
    server: tw.Server | tw.TunnelServer
    if args.kind == "serve":
        server = tw.Server(tw.services.upper, tls=tls, policy=args.policy, audit=audit)
    else:
        host, _, port = args.target.rpartition(":")
        server = tw.TunnelServer(target=tw.Target(host=host, port=int(port)), tls=tls,
                                 policy=args.policy, observer=AuditObserver(audit))
    assert server.reloader is not None
    server.reloader.say = say

    def ready(addresses: list[tuple[str, int]]) -> None:
        say(f"library server on {addresses[0][0]}:{addresses[0][1]}")

    tw.run(server.serve("127.0.0.1", 0, operations=tw.Operations(
        reload_interval=args.reload_interval), ready=ready))
    say("stopped")


if __name__ == "__main__":
    main()
