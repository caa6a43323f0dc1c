"""The few OpenSSL settings Python's ``ssl`` module cannot make, through ctypes.

Python (through 3.13) cannot choose TLS 1.3 cipher suites or key-exchange
groups, ask for a stapled OCSP response, set session-ticket keys, or take part
in certificate verification and ticket acceptance. trustwire needs all of it:
the probe offers one suite or group per handshake, contexts pin Mozilla's
groups, server workers share one ticket key so a client resumes on whichever
worker it reaches, and the admission decision must run inside the handshake
(so a refusal is a TLS alert) and before a session ticket is honoured (so a
revoked client cannot resume). This module calls ``SSL_CTX_set_ciphersuites``,
``SSL_CTX_set1_groups_list``, ``SSL_CTX_set_tlsext_status_type``,
``SSL_CTX_set_tlsext_ticket_keys``, ``SSL_CTX_set_session_cache_mode``,
``SSL_CTX_set_verify`` and ``SSL_CTX_set_session_ticket_cb`` on the ``SSL_CTX``
behind an ``ssl.SSLContext``.

Callbacks: OpenSSL calls them inside ``do_handshake`` (CPython releases the GIL
there; ctypes takes it back for the call). They run Python code, so they fail
closed: any exception inside one refuses the peer. The ctypes function objects
are kept on the context (``ssl.SSLContext`` instances take attributes) for as
long as OpenSSL may call them. CPython's own ``verify_mode`` setter keeps a
verify callback that is already set (``_set_verify_mode`` passes
``SSL_CTX_get_verify_callback`` back in), so setting modes later is safe.

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
from collections.abc import Callable

__all__ = ["TICKET_KEYS_SIZE", "X509_V_ERR_CERT_HAS_EXPIRED", "X509_V_ERR_CERT_NOT_YET_VALID",
           "X509_V_ERR_CERT_REVOKED", "X509_V_ERR_CRL_HAS_EXPIRED", "X509_V_ERR_CRL_NOT_YET_VALID",
           "X509_V_ERR_CRL_SIGNATURE_FAILURE", "X509_V_ERR_KEYUSAGE_NO_CRL_SIGN",
           "X509_V_ERR_POLICY_REFUSED", "X509_V_ERR_UNABLE_TO_GET_CRL",
           "X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER",
           "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "X509_V_ERR_UNSPECIFIED",
           "VerifyJudge", "available", "disable_session_cache", "request_ocsp",
           "set_ciphersuites", "set_groups", "set_session_ticket_judge", "set_ticket_keys",
           "set_verify_judge"]

_SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE = 65
_SSL_CTRL_SET_GROUPS_LIST = 92
_SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59
TICKET_KEYS_SIZE = 80
"""Key name (16 bytes), HMAC key (32) and AES key (32), as OpenSSL 3 takes them."""
_TLSEXT_STATUSTYPE_OCSP = 1
_SSL_CTRL_SET_SESS_CACHE_MODE = 44
_SSL_SESS_CACHE_OFF = 0

# X509_V_ERR_* codes (openssl/x509_vfy.h) and the alert OpenSSL 3 sends for each
# (ssl_x509err2alert in ssl/statem/statem_lib.c; checked on this OpenSSL by
# tests/unit/tls/test_native.py).
X509_V_ERR_UNSPECIFIED = 1
"""-> internal_error: the server's own trust state is unusable (its CRL has expired)."""
X509_V_ERR_UNABLE_TO_GET_CRL = 3
"""OpenSSL's code for "no CRL from the leaf's issuer", reported as unknown_ca: untrue, the
CA is known; this side lacks its CRL. Remapped to X509_V_ERR_UNSPECIFIED."""
X509_V_ERR_CRL_SIGNATURE_FAILURE = 8
"""A CRL in the file whose signature does not verify (-> decrypt_error): this side's CRL
is unusable, the peer's certificate may be fine. Remapped to X509_V_ERR_UNSPECIFIED."""
X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER = 33
X509_V_ERR_KEYUSAGE_NO_CRL_SIGN = 35
"""Two more ways this side's CRL is unusable; remapped to X509_V_ERR_UNSPECIFIED too."""
X509_V_ERR_CERT_NOT_YET_VALID = 9
"""-> bad_certificate."""
X509_V_ERR_CERT_HAS_EXPIRED = 10
"""-> certificate_expired."""
X509_V_ERR_CRL_NOT_YET_VALID = 11
"""OpenSSL's code for a CRL issued in the future (a clock is wrong), reported as
bad_certificate: remapped to X509_V_ERR_UNSPECIFIED too."""
X509_V_ERR_CRL_HAS_EXPIRED = 12
"""OpenSSL's own code for an expired CRL, which it reports as certificate_expired: a lie
to the peer, whose certificate is fine. Remapped to X509_V_ERR_UNSPECIFIED."""
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
"""-> unknown_ca: the certificate's CA is no longer trusted."""
X509_V_ERR_CERT_REVOKED = 23
"""-> certificate_revoked."""
X509_V_ERR_POLICY_REFUSED = 30
"""X509_V_ERR_AKID_SKID_MISMATCH, which OpenSSL has not raised since 1.1.0: used for "the
access policy refuses this identity", so that code means exactly that (-> certificate_unknown,
RFC 8446: "some other issue arose in processing the certificate, rendering it unacceptable").
No TLS alert maps to access_denied through certificate verification."""

_TICKET_SUCCESS = 5
_TICKET_SUCCESS_RENEW = 6
_TICKET_RETURN_IGNORE_RENEW = 2
_TICKET_RETURN_USE = 3
_TICKET_RETURN_USE_RENEW = 4

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_DECRYPT_TICKET_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                      ctypes.c_void_p)

VerifyJudge = Callable[[int, bytes | None, bytes | None], int]
"""``judge(error, leaf_der, root_der) -> X509 error code (0: accept)``.

Called once per verification at depth 0 when OpenSSL's own checks passed (``error`` 0,
with the leaf and the chain's root), and wherever OpenSSL's checks failed (``error`` set,
with the leaf when the failure is the leaf's) so the caller chooses what is reported:
return ``error`` to keep it."""


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
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_set_session_ticket_cb.restype = ctypes.c_int
        lib.SSL_CTX_set_session_ticket_cb.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                                      _DECRYPT_TICKET_CB, ctypes.c_void_p]
        lib.SSL_SESSION_get0_peer.restype = ctypes.c_void_p
        lib.SSL_SESSION_get0_peer.argtypes = [ctypes.c_void_p]
        lib.X509_STORE_CTX_get_error_depth.restype = ctypes.c_int
        lib.X509_STORE_CTX_get_error_depth.argtypes = [ctypes.c_void_p]
        lib.X509_STORE_CTX_get_error.restype = ctypes.c_int
        lib.X509_STORE_CTX_get_error.argtypes = [ctypes.c_void_p]
        lib.X509_STORE_CTX_set_error.restype = None
        lib.X509_STORE_CTX_set_error.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.X509_STORE_CTX_get_current_cert.restype = ctypes.c_void_p
        lib.X509_STORE_CTX_get_current_cert.argtypes = [ctypes.c_void_p]
        lib.X509_STORE_CTX_get0_chain.restype = ctypes.c_void_p
        lib.X509_STORE_CTX_get0_chain.argtypes = [ctypes.c_void_p]
        lib.OPENSSL_sk_num.restype = ctypes.c_int
        lib.OPENSSL_sk_num.argtypes = [ctypes.c_void_p]
        lib.OPENSSL_sk_value.restype = ctypes.c_void_p
        lib.OPENSSL_sk_value.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.i2d_X509.restype = ctypes.c_int
        lib.i2d_X509.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
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


def disable_session_cache(ctx: ssl.SSLContext) -> bool:
    """Turn off the server's session-ID cache, so TLS 1.2 sessions resume only through
    tickets, which pass :func:`set_session_ticket_judge` (a cached session would not)."""
    found = _pointer(ctx)
    return bool(found and found[0].SSL_CTX_ctrl(found[1], _SSL_CTRL_SET_SESS_CACHE_MODE,
                                                _SSL_SESS_CACHE_OFF, None) >= 0)


def _der(lib: ctypes.CDLL, cert: int | None) -> bytes | None:
    """The DER encoding of an ``X509 *`` (None for NULL or an encoding failure)."""
    if not cert:
        return None
    size = lib.i2d_X509(cert, None)
    if size <= 0:
        return None
    buffer = ctypes.create_string_buffer(size)
    cursor = ctypes.c_void_p(ctypes.addressof(buffer))
    if lib.i2d_X509(cert, ctypes.byref(cursor)) != size:
        return None
    return buffer.raw


def set_verify_judge(ctx: ssl.SSLContext, judge: VerifyJudge) -> bool:
    """Have ``judge`` take part in every certificate verification on ``ctx`` (both sides).

    OpenSSL turns the code ``judge`` returns into the TLS alert it sends (see the
    X509_V_ERR_* constants here). False if impossible. Keep the verify mode as it is:
    this only adds the callback.
    """
    found = _pointer(ctx)
    if not found:
        return False
    lib, pointer = found

    def callback(ok: int, store: int) -> int:
        try:
            if ok:
                if lib.X509_STORE_CTX_get_error_depth(store):
                    return 1  # the chain above the leaf: OpenSSL's checks are enough
                chain = lib.X509_STORE_CTX_get0_chain(store)
                count = lib.OPENSSL_sk_num(chain) if chain else 0
                leaf = _der(lib, lib.X509_STORE_CTX_get_current_cert(store))
                root = _der(lib, lib.OPENSSL_sk_value(chain, count - 1)) if count else None
                code = judge(0, leaf, root)
            else:
                at_leaf = lib.X509_STORE_CTX_get_error_depth(store) == 0
                leaf = _der(lib, lib.X509_STORE_CTX_get_current_cert(store)) if at_leaf else None
                code = judge(lib.X509_STORE_CTX_get_error(store), leaf, None)
                code = code or X509_V_ERR_UNSPECIFIED  # a failure stays a failure
        except BaseException:
            code = X509_V_ERR_UNSPECIFIED
        if code:
            lib.X509_STORE_CTX_set_error(store, code)
            return 0
        return 1

    function = _VERIFY_CB(callback)
    ctx.__dict__.setdefault("_trustwire_callbacks", []).append(function)
    lib.SSL_CTX_set_verify(pointer, lib.SSL_CTX_get_verify_mode(pointer), function)
    return True


def set_session_ticket_judge(ctx: ssl.SSLContext,
                             judge: Callable[[bytes, bytes | None], bool]) -> bool:
    """Ask ``judge(key_name, peer_certificate_der)`` before a decrypted session ticket is
    used to resume (TLS 1.2 and 1.3); ``key_name`` names the ticket key that decrypted it
    (the first 16 bytes of what :func:`set_ticket_keys` took). A refused ticket is
    ignored: the client falls back to a full handshake, which verifies its certificate
    again. False if impossible."""
    found = _pointer(ctx)
    if not found:
        return False
    lib, pointer = found

    def callback(ssl_: int, session: int, keyname: int, keyname_length: int, status: int,
                 arg: int) -> int:
        if status not in (_TICKET_SUCCESS, _TICKET_SUCCESS_RENEW) or not session:
            return _TICKET_RETURN_IGNORE_RENEW  # OpenSSL's own choice for these
        try:
            name = ctypes.string_at(keyname, keyname_length) if keyname else b""
            admitted = judge(name, _der(lib, lib.SSL_SESSION_get0_peer(session)))
        except BaseException:
            admitted = False
        if not admitted:
            return _TICKET_RETURN_IGNORE_RENEW
        return _TICKET_RETURN_USE_RENEW if status == _TICKET_SUCCESS_RENEW else _TICKET_RETURN_USE

    function = _DECRYPT_TICKET_CB(callback)
    ctx.__dict__.setdefault("_trustwire_callbacks", []).append(function)
    return bool(lib.SSL_CTX_set_session_ticket_cb(pointer, None, function, None) == 1)
