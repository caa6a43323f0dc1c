"""Private keys: the four key types trustwire issues, and their PEM forms.

Keys are serialised as PKCS#8 PEM, encrypted with the best available scheme
when a passphrase is given. Error messages name files, never contents.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from trustwire.errors import ConfigError, KeyFileError, PassphraseError

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "describe_public_key",
    "key_type_of",
    "load_private_key",
    "private_key_pem",
    "public_keys_match",
    "signing_hash",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class KeyType(enum.Enum):
    """Key algorithms trustwire generates (ECDSA P-256 is the default everywhere)."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ED25519 = "ed25519"
    RSA_3072 = "rsa-3072"

    @classmethod
    def parse(cls, value: str) -> KeyType:
        """Raises ConfigError listing the valid choices."""
        try:
            return cls(value.lower())
        except ValueError:
            choices = ", ".join(k.value for k in cls)
            raise ConfigError(f"unknown key type {value!r}: choose one of {choices}") from None

    def generate(self) -> PrivateKey:
        if self is KeyType.ECDSA_P256:
            return ec.generate_private_key(ec.SECP256R1())
        if self is KeyType.ECDSA_P384:
            return ec.generate_private_key(ec.SECP384R1())
        if self is KeyType.ED25519:
            return ed25519.Ed25519PrivateKey.generate()
        # 3072-bit RSA: the NIST SP 800-57 size for security beyond 2030.
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def key_type_of(key: PrivateKey | PublicKey) -> KeyType | None:
    """The KeyType of a key, or None for sizes and curves trustwire does not generate."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": KeyType.ECDSA_P256, "secp384r1": KeyType.ECDSA_P384}.get(
            key.curve.name,
        )
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return KeyType.ED25519
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) and key.key_size == 3072:
        return KeyType.RSA_3072
    return None


def describe_public_key(key: object) -> str:
    """Human description such as ``ECDSA P-256`` or ``RSA 2048``."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
            key.curve.name, key.curve.name,
        )
        return f"ECDSA {curve}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def signing_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The digest to sign with: SHA-384 for P-384, none for Ed25519, else SHA-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption,
    )


def load_private_key(data: bytes, *, source: str, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM private key.

    Args:
        data: the PEM bytes.
        source: the file name, used in error messages (never the contents).
        passphrase: for encrypted keys.

    Raises:
        PassphraseError: encrypted without passphrase, or wrong passphrase.
        KeyFileError: not a supported private key.
    """
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0] or b"Proc-Type: 4,ENCRYPTED" in data
    if encrypted and not passphrase:
        raise PassphraseError(
            f"{source} is encrypted and no passphrase was given",
            hint="pass --passphrase-file FILE (or set TRUSTWIRE_PASSPHRASE_FILE)",
        )
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise PassphraseError(
                f"wrong passphrase for {source}",
                hint="check the file given with --passphrase-file",
            ) from None
        raise KeyFileError(f"{source} is not a valid PEM private key") from exc
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{source} holds a key of an unsupported algorithm") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey,
                            ed25519.Ed25519PrivateKey)):
        raise KeyFileError(f"{source} holds a key type trustwire cannot use")
    return key


def public_keys_match(a: object, b: object) -> bool:
    """True when two public keys are the same key (compares SubjectPublicKeyInfo DER)."""
    def spki(k: object) -> bytes:
        return k.public_bytes(  # type: ignore[attr-defined,no-any-return]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    return spki(a) == spki(b)
