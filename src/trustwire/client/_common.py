"""What the blocking and async clients share: contexts, error mapping, diagnosis inputs."""

from __future__ import annotations

import socket
import ssl

from cryptography import x509

from trustwire.errors import (
    AccessDenied,
    ConfigError,
    ConnectionBroken,
    Diagnosis,
    HandshakeError,
    TrustwireError,
)
from trustwire.net.addresses import format_hostport
from trustwire.tls.context import ClientTLS

__all__ = ["client_context", "connect_error", "own_certificate", "presents_certificate",
           "refusal", "split_server_name"]


def refusal(diagnosis: Diagnosis) -> HandshakeError:
    """The error for a failed handshake: AccessDenied when the server's access policy
    refused our identity (its alert), a HandshakeError otherwise."""
    if diagnosis.reason == "policy-denied":
        return AccessDenied(diagnosis, reason=diagnosis.why)
    return HandshakeError(diagnosis)


def client_context(tls: ClientTLS | ssl.SSLContext) -> ssl.SSLContext:
    return tls.context() if isinstance(tls, ClientTLS) else tls


def own_certificate(tls: ClientTLS | ssl.SSLContext) -> x509.Certificate | None:
    """Our leaf certificate, to sharpen the diagnosis of vague alerts (None if unknown)."""
    if not isinstance(tls, ClientTLS) or tls.cert is None:
        return None
    try:
        return x509.load_pem_x509_certificates(tls.cert.read_bytes())[0]
    except (OSError, ValueError):
        return None


def presents_certificate(tls: ClientTLS | ssl.SSLContext) -> bool:
    if isinstance(tls, ClientTLS):
        return tls.presents_certificate
    return True  # unknown: assume it does, the diagnosis then names the certificate


def connect_error(host: str, port: int, exc: OSError) -> TrustwireError:
    if isinstance(exc, socket.gaierror):
        return ConnectionBroken(f"cannot resolve {host!r}: {exc.strerror}",
                                hint="check the host name")
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ConnectionBroken(f"cannot connect to {format_hostport(host, port)}: {reason}",
                            hint="check that the server is running and the address is right")


def split_server_name(tls: ClientTLS | ssl.SSLContext, host: str) -> str:
    name = tls.server_name if isinstance(tls, ClientTLS) and tls.server_name else host
    if not name:
        raise ConfigError("no server name to verify the certificate against")
    return name.strip("[]")
