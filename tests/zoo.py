"""A builder for deliberately defective certificates (the lint zoo)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_CA_KEY = ec.generate_private_key(ec.SECP256R1())


def key_usage(**on: bool) -> x509.KeyUsage:
    flags = {"digital_signature": False, "content_commitment": False, "key_encipherment": False,
                 "data_encipherment": False, "key_agreement": False, "key_cert_sign": False,
                 "crl_sign": False, "encipher_only": False, "decipher_only": False}
    flags.update(on)
    return x509.KeyUsage(**flags)


@dataclass
class Spec:
    """Defaults describe a clean server leaf; change one field to make one defect."""

    cn: str | None = "web.example"
    ca: bool = False
    bc_critical: bool = True
    with_bc: bool = True
    ku: x509.KeyUsage | None = field(default_factory=lambda: key_usage(digital_signature=True))
    ku_critical: bool = True
    eku: list[x509.ObjectIdentifier] | None = field(
        default_factory=lambda: [ExtendedKeyUsageOID.SERVER_AUTH])
    sans: list[x509.GeneralName] | None = field(
        default_factory=lambda: [x509.DNSName("web.example")])
    san_critical: bool = False
    aki: bool = True
    aki_critical: bool = False
    ski: bool = True
    ski_critical: bool = False
    not_before: dt.datetime = NOW - dt.timedelta(days=1)
    not_after: dt.datetime = NOW + dt.timedelta(days=90)
    key: Any = None
    hash: Any = field(default_factory=hashes.SHA256)
    serial: int | None = None
    self_signed: bool = False
    extra: list[tuple[x509.ExtensionType, bool]] = field(default_factory=list)


def build(spec: Spec) -> x509.Certificate:
    key = spec.key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.cn)] if spec.cn else [])
    signer = key if spec.self_signed else _CA_KEY
    issuer = subject if spec.self_signed else x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Zoo CA")])
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(spec.serial or x509.random_serial_number())
         .not_valid_before(spec.not_before).not_valid_after(spec.not_after))
    if spec.with_bc:
        b = b.add_extension(x509.BasicConstraints(ca=spec.ca, path_length=0 if spec.ca else None),
                            critical=spec.bc_critical)
    if spec.ku is not None:
        b = b.add_extension(spec.ku, critical=spec.ku_critical)
    if spec.eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(spec.eku), critical=False)
    if spec.sans is not None:
        b = b.add_extension(x509.SubjectAlternativeName(spec.sans), critical=spec.san_critical)
    if spec.ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=spec.ski_critical)
    if spec.aki:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                            critical=spec.aki_critical)
    for ext, critical in spec.extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(signer, spec.hash)
