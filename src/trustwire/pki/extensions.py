"""A certificate's extensions, when they may not parse. Pure.

``cryptography`` parses all of a certificate's extensions at the first look at any of
them, and raises ``ValueError`` when one is malformed (a subjectAltName that is not a
``GeneralNames``, say), though OpenSSL serves such a certificate without complaint. Code that
reads certificates it did not make (the probe's, a served chain's) reads extensions here:
:func:`unparsable` says whether and why they cannot be read, :func:`find_extension` gives
one or None.
"""

from __future__ import annotations

from typing import TypeVar

from cryptography import x509

__all__ = ["UNPARSABLE", "find_extension", "unparsable"]

_T = TypeVar("_T", bound=x509.ExtensionType)

UNPARSABLE = "the certificate's extensions cannot be parsed"
"""The phrase for it, in reports (followed by :func:`unparsable`'s reason where it fits)."""


def unparsable(cert: x509.Certificate) -> str | None:
    """Why ``cert``'s extensions cannot be parsed (cryptography's words), or None when they can.

    >>> import datetime as dt
    >>> from cryptography.hazmat.primitives import hashes
    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> key = ec.generate_private_key(ec.SECP256R1())
    >>> name = x509.Name([])
    >>> san = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.17"), bytes.fromhex("3003020101"))
    >>> cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
    ...         .public_key(key.public_key()).serial_number(1)
    ...         .not_valid_before(dt.datetime(2025, 1, 1)).not_valid_after(dt.datetime(2026, 1, 1))
    ...         .add_extension(san, critical=False).sign(key, hashes.SHA256()))
    >>> unparsable(cert) is not None and find_extension(cert, x509.SubjectAlternativeName) is None
    True
    """
    try:
        cert.extensions  # noqa: B018 - parsed on first access
    except (ValueError, x509.DuplicateExtension) as exc:
        return str(exc) or type(exc).__name__
    return None


def find_extension(cert: x509.Certificate, kind: type[_T]) -> _T | None:
    """The value of ``cert``'s extension of type ``kind``: None when it has none, or when its
    extensions cannot be parsed (:func:`unparsable` says why)."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError, x509.DuplicateExtension):
        return None
