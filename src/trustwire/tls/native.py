"""The few OpenSSL settings Python's ``ssl`` module cannot make, through ctypes.

Python (through 3.13) cannot choose TLS 1.3 cipher suites or key-exchange
groups, ask for a stapled OCSP response, or set session-ticket keys. trustwire
needs all four: the probe offers one suite or group per handshake, contexts pin
Mozilla's groups, and server workers share one ticket key so a client resumes
on whichever worker it reaches. This module calls ``SSL_CTX_set_ciphersuites``,
``SSL_CTX_set1_groups_list``, ``SSL_CTX_set_tlsext_status_type`` and
``SSL_CTX_set_tlsext_ticket_keys`` on the ``SSL_CTX`` behind an ``ssl.SSLContext``.

Safety: the ``SSL_CTX *`` is read from the first field after the object header
of CPython's ``PySSLContext`` (unchanged since Python 3.x began), and is used
only after two checks pass: the ctypes-loaded libssl is the very version
``_ssl`` runs on, and ``SSL_CTX_get_options`` through the pointer equals the
context's ``options``. Any doubt and every function returns False: callers
then report "could not be tested" instead of guessing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import ssl

__all__ = ["TICKET_KEYS_SIZE", "available", "request_ocsp", "set_ciphersuites", "set_groups",
           "set_ticket_keys"]

_SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE = 65
_SSL_CTRL_SET_GROUPS_LIST = 92
_SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59
TICKET_KEYS_SIZE = 80
"""Key name (16 bytes), HMAC key (32) and AES key (32), as OpenSSL 3 takes them."""
_TLSEXT_STATUSTYPE_OCSP = 1


@functools.lru_cache(maxsize=1)
def _libssl() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("ssl") or "libssl.so.3"
    try:
        lib = ctypes.CDLL(name)
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            return None  # a different libssl than the one Python's ssl runs on
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return lib


def _pointer(ctx: ssl.SSLContext) -> tuple[ctypes.CDLL, int] | None:
    lib = _libssl()
    if lib is None:
        return None
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not pointer or lib.SSL_CTX_get_options(pointer) != ctx.options:
        return None
    return lib, pointer


def available() -> bool:
    """True when the settings below can be made in this Python."""
    return _pointer(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)) is not None


def set_ciphersuites(ctx: ssl.SSLContext, suites: str) -> bool:
    """Restrict TLS 1.3 to ``suites`` (colon-separated IANA names). False if impossible."""
    found = _pointer(ctx)
    return bool(found and found[0].SSL_CTX_set_ciphersuites(found[1], suites.encode()) == 1)


def set_groups(ctx: ssl.SSLContext, groups: str) -> bool:
    """Offer only ``groups`` (e.g. ``X25519:P-256``) for key exchange. False if impossible
    or if the local OpenSSL does not know one of them."""
    found = _pointer(ctx)
    if not found:
        return False
    return bool(found[0].SSL_CTX_ctrl(found[1], _SSL_CTRL_SET_GROUPS_LIST, 0,
                                      ctypes.c_char_p(groups.encode())) == 1)


def request_ocsp(ctx: ssl.SSLContext) -> bool:
    """Ask servers to staple an OCSP response (the status_request extension)."""
    found = _pointer(ctx)
    if not found:
        return False
    return bool(found[0].SSL_CTX_ctrl(found[1], _SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE,
                                      _TLSEXT_STATUSTYPE_OCSP, None) == 1)


def set_ticket_keys(ctx: ssl.SSLContext, keys: bytes) -> bool:
    """Encrypt and accept session tickets with ``keys`` instead of the context's own
    random ones. False if impossible (tickets then work within one process only)."""
    if len(keys) != TICKET_KEYS_SIZE:
        raise ValueError(f"ticket keys are {TICKET_KEYS_SIZE} bytes")
    found = _pointer(ctx)
    if not found:
        return False
    buffer = ctypes.create_string_buffer(keys, len(keys))
    try:
        return bool(found[0].SSL_CTX_ctrl(found[1], _SSL_CTRL_SET_TLSEXT_TICKET_KEYS, len(keys),
                                          ctypes.cast(buffer, ctypes.c_void_p)) == 1)
    finally:
        ctypes.memset(buffer, 0, len(keys))  # OpenSSL copied them; no stray copy left here
