"""Per-connection OpenSSL calls Python's ``ssl`` does not offer, through ctypes.

:mod:`trustwire.tls.native` reaches the ``SSL_CTX *`` behind an ``ssl.SSLContext``; the
probe also needs the ``SSL *`` behind one ``ssl.SSLSocket`` to ask what Python cannot:
start a client-initiated renegotiation (``SSL_renegotiate``), send TLS 1.3 early data
(``SSL_write_early_data``) and learn whether the server took it
(``SSL_get_early_data_status``). It also asks servers for their Certificate
Transparency SCTs (``SSL_CTX_enable_ct``), a context setting.

Safety: the ``SSL *`` is read from CPython's ``PySSLSocket`` (``ssl.SSLSocket._sslobj``):
the field after the object header and the ``Socket`` weak reference (unchanged from
Python 3.7 to 3.13). It is used only when ``SSL_get_SSL_CTX`` through it returns the very
``SSL_CTX *`` that :mod:`trustwire.tls.native` verified for the socket's context. Any
doubt and the functions return None or False: callers then report "could not be
tested". Every failing call clears OpenSSL's per-thread error queue, so Python's next
``ssl`` call on this thread does not report our error as its own.

Threads: the calls below do no IO of their own except ``SSL_write_early_data``, which
writes the ClientHello and the early data (the socket must be connected; on the
non-blocking socket of an ``SSLSocket`` with a timeout it never waits).
"""

from __future__ import annotations

import ctypes
import enum
import functools
import ssl

from trustwire.tls.native import _libssl, _pointer

__all__ = ["EarlyData", "early_data_status", "enable_ct", "renegotiate", "write_early_data"]

_SSL_CT_VALIDATION_PERMISSIVE = 0
"""Collect SCTs and never fail the handshake over them (the probe only reports them)."""


class EarlyData(enum.Enum):
    """``SSL_get_early_data_status``."""

    NOT_SENT = 0
    REJECTED = 1
    ACCEPTED = 2


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    lib = _libssl()
    if lib is None:
        return None
    try:
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        lib.SSL_renegotiate.restype = ctypes.c_int
        lib.SSL_renegotiate.argtypes = [ctypes.c_void_p]
        lib.SSL_write_early_data.restype = ctypes.c_int
        lib.SSL_write_early_data.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                             ctypes.POINTER(ctypes.c_size_t)]
        lib.SSL_get_early_data_status.restype = ctypes.c_int
        lib.SSL_get_early_data_status.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_enable_ct.restype = ctypes.c_int
        lib.SSL_CTX_enable_ct.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.ERR_clear_error.restype = None
        lib.ERR_clear_error.argtypes = []
    except AttributeError:  # an OpenSSL built without TLS 1.3 or CT
        return None
    return lib


def _ssl_pointer(sock: ssl.SSLSocket) -> tuple[ctypes.CDLL, int] | None:
    lib = _lib()
    sslobj = getattr(sock, "_sslobj", None)
    found = _pointer(sock.context)
    if lib is None or sslobj is None or found is None:
        return None
    offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)  # after the Socket weakref
    pointer = ctypes.c_void_p.from_address(id(sslobj) + offset).value
    if not pointer or lib.SSL_get_SSL_CTX(pointer) != found[1]:
        return None
    return lib, pointer


def enable_ct(ctx: ssl.SSLContext) -> bool:
    """Ask servers for SCTs (the signed_certificate_timestamp extension; OpenSSL also asks
    for a stapled OCSP response, which may carry SCTs). Never fails a handshake. False if
    impossible."""
    lib, found = _lib(), _pointer(ctx)
    if lib is None or found is None:
        return False
    if lib.SSL_CTX_enable_ct(found[1], _SSL_CT_VALIDATION_PERMISSIVE) == 1:
        return True
    lib.ERR_clear_error()
    return False


def renegotiate(sock: ssl.SSLSocket) -> bool:
    """Schedule a client-initiated renegotiation on a TLS <= 1.2 connection whose handshake
    is done; the next ``sock.do_handshake()`` (or read) performs it. False if impossible
    (TLS 1.3, or this Python)."""
    found = _ssl_pointer(sock)
    if found is None:
        return False
    if found[0].SSL_renegotiate(found[1]) == 1:
        return True
    found[0].ERR_clear_error()
    return False


def write_early_data(sock: ssl.SSLSocket, data: bytes = b"") -> bool | None:
    """Before the handshake of a resumed TLS 1.3 connection (``session=`` a ticket that
    allows early data), write the ClientHello and ``data`` as 0-RTT data; then call
    ``sock.do_handshake()`` and :func:`early_data_status`. ``b""`` sends the early_data
    extension with no application bytes, so nothing reaches the server's application.

    Returns True when written, False when OpenSSL refused (the session allows no early
    data, or the socket is not ready), None when impossible in this Python.
    """
    found = _ssl_pointer(sock)
    if found is None:
        return None
    lib, pointer = found
    written = ctypes.c_size_t(0)
    if lib.SSL_write_early_data(pointer, data, len(data), ctypes.byref(written)) == 1:
        return True
    lib.ERR_clear_error()
    return False


def early_data_status(sock: ssl.SSLSocket) -> EarlyData | None:
    """After the handshake: whether the server accepted our early data. None if impossible."""
    found = _ssl_pointer(sock)
    if found is None:
        return None
    try:
        return EarlyData(found[0].SSL_get_early_data_status(found[1]))
    except ValueError:
        return None
