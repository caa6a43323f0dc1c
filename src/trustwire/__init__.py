"""trustwire: mutually-authenticated TLS services in Python.

Your own certificate authority (:mod:`trustwire.pki`), servers and clients
that prove who they are to each other, a tunnel that puts any TCP service
behind mutual TLS, and a probe that audits any TLS endpoint.
"""

from __future__ import annotations

from trustwire.errors import (
    AccessDenied,
    ConfigError,
    ConnectionBroken,
    ConnectionClosed,
    FrameTooLarge,
    HandshakeError,
    PKIError,
    ProtocolError,
    StreamError,
    TLSError,
    TrustwireError,
)

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "ConfigError",
    "ConnectionBroken",
    "ConnectionClosed",
    "FrameTooLarge",
    "HandshakeError",
    "PKIError",
    "ProtocolError",
    "StreamError",
    "TLSError",
    "TrustwireError",
    "__version__",
]
