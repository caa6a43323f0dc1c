"""Certificates in the form other programs import: PKCS#12 (``.p12`` / ``.pfx``).

A PKCS#12 file carries an identity's private key, its certificate and the chain
up to the root, under one passphrase: what browsers, the Windows and macOS
certificate stores, Java keystores and ``curl --cert-type P12`` take.

Two encryption profiles:

* ``modern`` (the default): key and certificates encrypted with PBES2
  (PBKDF2-HMAC-SHA256, 100000 iterations, AES-256-CBC), integrity by an HMAC-SHA256
  MAC. What OpenSSL 3, Windows 10 1709+, macOS 13+ and Java 12+ read.
* ``legacy``: PBE-SHA1-3DES and a SHA-1 MAC, for older Windows, macOS and Java
  importers that know nothing else. Weaker; only when an importer needs it.

What a stolen file costs an attacker: the MAC is the cheaper check. Its key comes
from the passphrase through the PKCS#12 KDF with :data:`MAC_ITERATIONS` (2048)
SHA-256 rounds, a count cryptography fixes (its encryption builder sets the
cipher's rounds, not the MAC's), so each passphrase guess costs about 2048 hash
rounds, not 100000, whatever the profile. The passphrase's own strength is what
protects the file: use a long random one (``openssl rand -base64 24``).

An empty passphrase is refused: a PKCS#12 file exists to travel (to another
machine, a browser, a keystore), and one without a passphrase carries the
private key in the clear; several importers (macOS Keychain, some Java
versions) cannot even read one. Whoever wants the key unencrypted already has
HOME/certs/NAME.key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import (
    KeySerializationEncryption,
    PrivateFormat,
    pkcs12,
)

from trustwire.errors import ConfigError, KeyFileError, PKIError
from trustwire.pki.files import atomic_write
from trustwire.pki.info import load_certificates
from trustwire.pki.inventory import State
from trustwire.pki.keys import load_private_key
from trustwire.pki.store import Home

__all__ = ["MAC_ITERATIONS", "P12Encryption", "PKCS12Export", "check_destination", "export_pkcs12",
           "pkcs12_bytes", "write_pkcs12"]

MODERN_KDF_ROUNDS = 100_000
"""PBKDF2-SHA256 iterations that encrypt the key and certificates in the modern profile.
Not the cost of a guess: a guess is checked against the MAC (:data:`MAC_ITERATIONS`)."""

MAC_ITERATIONS = 2048
"""PKCS#12-KDF iterations behind the MAC, in both profiles: fixed by cryptography
(``serialize_key_and_certificates`` offers no setting for it), and what each passphrase
guess against a stolen file costs."""

LEGACY_KDF_ROUNDS = 2048
"""The iteration count old importers were tested with (OpenSSL's and Windows' default)."""


class P12Encryption(enum.Enum):
    """How a PKCS#12 file is protected."""

    MODERN = "modern"
    """AES-256-CBC with PBKDF2/SHA-256, HMAC-SHA256 MAC (2048 KDF iterations)."""
    LEGACY = "legacy"
    """3DES with the PKCS#12 SHA-1 KDF, SHA-1 MAC: older Windows, macOS and Java."""

    def algorithm(self, passphrase: bytes) -> KeySerializationEncryption:
        builder = PrivateFormat.PKCS12.encryption_builder()
        if self is P12Encryption.LEGACY:
            builder = (builder.kdf_rounds(LEGACY_KDF_ROUNDS)
                       .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                       .hmac_hash(hashes.SHA1()))  # noqa: S303 - what legacy importers read
        else:
            builder = (builder.kdf_rounds(MODERN_KDF_ROUNDS)
                       .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                       .hmac_hash(hashes.SHA256()))
        return builder.build(passphrase)


@dataclass(frozen=True)
class PKCS12Export:
    """What went into a PKCS#12 file."""

    name: str
    """The friendly name (the identity's NAME)."""
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    """Intermediates (nearest first), then the root."""
    encryption: P12Encryption
    data: bytes


def _check_passphrase(passphrase: bytes) -> None:
    if not passphrase:
        raise ConfigError(
            "a PKCS#12 file needs a non-empty passphrase: without one the private key "
            "travels in the clear",
            hint="give --passphrase-file FILE, or type one when asked; the PEM key is "
                 "HOME/certs/NAME.key if you need it unencrypted",
        )


def _refuse_revoked(home: Home, name: str, leaf: x509.Certificate) -> None:
    with home.inventory(read_only=True) as inventory:
        record = inventory.by_serial(leaf.serial_number)
    if record is not None and record.state is State.REVOKED:
        raise PKIError(
            f"{name} (serial {record.serial_hex}) is revoked; refusing to export it, since "
            "every peer that checks the CRL refuses it",
            hint=f"renew it (`trustwire cert renew {name}`) or issue a new one, then export that",
        )


def pkcs12_bytes(
    home: Home, name: str, *, passphrase: bytes,
    encryption: P12Encryption = P12Encryption.MODERN,
) -> PKCS12Export:
    """The identity NAME (key, leaf, intermediates, root) as PKCS#12 bytes.

    Args:
        home: the home holding NAME.
        name: the identity; also the friendly name in the file.
        passphrase: protects the key and certificates; may not be empty.
        encryption: :attr:`P12Encryption.MODERN` unless an old importer needs legacy.

    Raises:
        ConfigError: an empty passphrase.
        PKIError: NAME's certificate is revoked (an expired one is exported: the caller warns).
        CANotFound, CertificateNotFound, KeyFileError: NAME has no certificate or key here
            (a certificate signed from a CSR has its key where the CSR was made).
    """
    _check_passphrase(passphrase)
    files = home.identity(name, crl=False)  # a PKCS#12 file holds no CRL
    try:
        chain_pem = files.cert.read_bytes()
        key_pem = files.key.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the files of {name!r}: {exc.strerror}") from exc
    leaf, *intermediates = load_certificates(chain_pem, source=str(files.cert))
    _refuse_revoked(home, name, leaf)
    key = load_private_key(key_pem, source=str(files.key))
    chain = (*intermediates, home.root_cert())
    data = pkcs12.serialize_key_and_certificates(
        name.encode(), key, leaf, list(chain),
        encryption.algorithm(passphrase),
    )
    return PKCS12Export(name=name, leaf=leaf, chain=chain, encryption=encryption, data=data)


def check_destination(home: Home, path: Path, *, overwrite: bool = False) -> None:
    """Refuse a destination inside the home (an export could replace ca.crt, a key or
    index.db there), and an existing file unless ``overwrite``.

    Raises:
        PKIError: naming the file and why (a refused operation, exit 1).
    """
    target = path.resolve()
    if target.is_relative_to(home.root.resolve()):
        raise PKIError(
            f"{path} is inside the trustwire home {home.root}; refusing to write an export there",
            hint="write the PKCS#12 file outside the home, e.g. --p12 ./NAME.p12",
        )
    if not overwrite and (path.exists() or path.is_symlink()):
        raise PKIError(f"{path} already exists; refusing to overwrite it",
                          hint="give --force to replace it, or choose another file")


def write_pkcs12(export: PKCS12Export, path: Path) -> None:
    """Write an export atomically, mode 0600 (it holds the private key).

    Raises:
        StoreError: the file cannot be written.
    """
    atomic_write(path, export.data, mode=0o600)


def export_pkcs12(
    home: Home, name: str, path: Path, *, passphrase: bytes,
    encryption: P12Encryption = P12Encryption.MODERN, overwrite: bool = False,
) -> PKCS12Export:
    """:func:`check_destination`, :func:`pkcs12_bytes`, then :func:`write_pkcs12`: the file
    appears whole or not at all, never inside the home, and over an existing file only
    with ``overwrite``.

    Raises:
        PKIError: the destination is refused.
        ConfigError: an empty passphrase.
        CANotFound, CertificateNotFound, KeyFileError, StoreError: see :func:`pkcs12_bytes`
            and :func:`write_pkcs12`.
    """
    check_destination(home, path, overwrite=overwrite)
    export = pkcs12_bytes(home, name, passphrase=passphrase, encryption=encryption)
    write_pkcs12(export, path)
    return export
