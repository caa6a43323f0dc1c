"""trustwire: mutually-authenticated TLS services in Python.

Your own certificate authority (:class:`Home`), servers and clients
that prove who they are to each other, a tunnel that puts any TCP service
behind mutual TLS, and a probe that audits any TLS endpoint::

    import trustwire as tw

    server = tw.Server(tw.services.upper, tls=tw.ServerTLS.from_identity(home, "server"),
                       policy=tw.Policy(cn={"alice"}))
    tw.run(server.serve("127.0.0.1", 8443))   # reloads on SIGHUP and file changes; Ctrl-C drains

    with tw.connect("localhost", 8443, tls=tw.ClientTLS.from_identity(home, "alice")) as c:
        print("Response from server:", c.request(b"Hello, server!").decode())
"""

from __future__ import annotations

from trustwire import services
from trustwire.authz.policy import Decision, Policy
from trustwire.client import AsyncClient, Client, aconnect, connect
from trustwire.errors import (
    AccessDenied,
    ConfigError,
    ConnectionBroken,
    ConnectionClosed,
    Diagnosis,
    FrameTooLarge,
    HandshakeError,
    PKIError,
    ProtocolError,
    ReloadError,
    StreamError,
    Timeout,
    TLSError,
    TrustwireError,
)
from trustwire.identity import PeerIdentity
from trustwire.ops.reload import TrustSource
from trustwire.ops.runtime import Operations
from trustwire.pki.store import Home
from trustwire.server import Connection, Limits, Server, responder, run
from trustwire.tls.context import ClientTLS, Profile, ServerTLS
from trustwire.tunnel import Target, TunnelClient, TunnelServer
from trustwire.version import __version__

__all__ = [
    "AccessDenied",
    "AsyncClient",
    "Client",
    "ClientTLS",
    "ConfigError",
    "Connection",
    "ConnectionBroken",
    "ConnectionClosed",
    "Decision",
    "Diagnosis",
    "FrameTooLarge",
    "HandshakeError",
    "Home",
    "Limits",
    "Operations",
    "PKIError",
    "PeerIdentity",
    "Policy",
    "Profile",
    "ProtocolError",
    "ReloadError",
    "Server",
    "ServerTLS",
    "StreamError",
    "TLSError",
    "Target",
    "Timeout",
    "TrustSource",
    "TrustwireError",
    "TunnelClient",
    "TunnelServer",
    "__version__",
    "aconnect",
    "connect",
    "responder",
    "run",
    "services",
]
