"""Reading a CRL file and the checks every CRL in it must pass. Pure but for the reads.

A CRL is used only when a CA certificate of the CA file or the chain has its name (as
:func:`trustwire.authz.admission.name_key` compares names) and its key verifies it; it
is keyed by that CA (:func:`ca_key`: subject and key identifier, as OpenSSL tells CAs of
one name apart). It must be neither expired nor issued in the future, one per CA, and
not older than the newest seen from that CA (:func:`check_not_older`, the rollback
floor). Revoked CAs are found too (:func:`revoked_cas`): OpenSSL checks the leaf's CRL
only, admission refuses what a revoked CA issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PSS, PKCS1v15

from trustwire.authz.admission import issuer_key, name_key
from trustwire.errors import ReloadError
from trustwire.net.material import CrlFacts, Material

__all__ = [
    "CLOCK_SKEW", "CRL_BLOCK", "cas_by_name", "ca_key", "check_home_floor", "check_none_dropped",
    "check_not_older", "crl_facts", "load_certificates", "load_crls", "read_file",
    "revoked_cas", "signer_of",
]


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReloadError(f"cannot read {what} {path}: {exc.strerror}") from exc


def load_certificates(path: Path | None) -> tuple[list[x509.Certificate], bytes]:
    if path is None:
        return [], b""
    data = read_file(path, "the certificate file")
    try:
        return x509.load_pem_x509_certificates(data), data
    except ValueError as exc:
        raise ReloadError(f"{path} is not a valid PEM certificate file") from exc


CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far in the future a CRL's thisUpdate may lie (clocks differ a little)."""


def ca_key(cert: x509.Certificate) -> str:
    """:func:`issuer_key` of the CA ``cert``: its subject and subject key identifier (what
    the certificates it signs carry as their authority key identifier)."""
    try:
        digest = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        digest = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return issuer_key(cert.subject, digest.hex())


def load_crls(path: Path, issuers: list[x509.Certificate], now: dt.datetime,
               ) -> tuple[list[tuple[x509.CertificateRevocationList, str]], list[str], bytes]:
    """The CRLs in the file from one of our CAs (the chain or the CA file; a bundle needs
    one per CA), each checked: signed by that CA, neither expired nor issued in the
    future, one per CA. Names are matched as OpenSSL matches them (:func:`name_key`), and
    a CRL belongs to the CA whose key signed it (two CAs may share a name).

    A CRL from another issuer cannot be checked here (a CA removed from the bundle, or an
    intermediate the clients send that is not in the CA file): it is not used, and is
    returned by name. Admission then refuses that issuer's certificates (no CRL that can
    be checked), so an unchecked CRL can neither admit anyone nor block a later one.

    Returns:
        The CRLs used with their CA's :func:`ca_key`, the issuers of those not used, and
        the file's bytes.

    Raises:
        ReloadError: unreadable, no CRL from our CAs, one with a bad signature, expired,
            issued in the future, or two from the same issuer.
    """
    data = read_file(path, "the CRL")
    blocks = CRL_BLOCK.findall(data)
    if not blocks:
        raise ReloadError(f"{path} is not a valid PEM CRL")
    by_name = cas_by_name(issuers)
    crls: list[tuple[x509.CertificateRevocationList, str]] = []
    seen: dict[str, str] = {}
    unused: list[str] = []
    for block in blocks:
        try:
            crl = x509.load_pem_x509_crl(block)
        except ValueError as exc:
            raise ReloadError(f"{path} holds a CRL that is not valid PEM") from exc
        name = crl.issuer.rfc4514_string()
        candidates = by_name.get(name_key(crl.issuer))
        if not candidates:
            unused.append(name)
            continue
        signer = signer_of(crl, candidates)
        if signer is None:
            raise ReloadError(f"the CRL {path} from {name} is not signed by that CA's key",
                              hint="regenerate it with `trustwire ca crl`")
        key = ca_key(signer)
        if key in seen:
            raise ReloadError(f"{path} holds two CRLs from {seen[key]}"
                              f"{'' if seen[key] == name else f' (one says {name})'}: which "
                              "one is in force?", hint="keep only the newest one per CA")
        seen[key] = name
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            raise ReloadError(f"the CRL {path} (from {name}) expired on "
                              f"{crl.next_update_utc:%Y-%m-%d %H:%M} UTC; every client would be "
                              "refused", hint="regenerate it with `trustwire ca crl`")
        if crl.last_update_utc > now + CLOCK_SKEW:
            raise ReloadError(f"the CRL {path} (from {name}) is not valid before "
                              f"{crl.last_update_utc:%Y-%m-%d %H:%M} UTC: a clock is wrong, "
                              "and every client would be refused",
                              hint="check the clocks of this host and the CA (timedatectl status)")
        crls.append((crl, key))
    if not crls:
        raise ReloadError(f"the CRL {path} is not signed by this CA (it names "
                          f"{', '.join(unused)})")
    return crls, unused, data


def _self_signed(cert: x509.Certificate) -> bool:
    """A root: signed by its own key (a CA that merely carries its issuer's name, a key
    rollover's link certificate, is not). Checked by hand, since cryptography's
    ``verify_directly_issued_by`` refuses SHA-1 roots, which OpenSSL takes as anchors."""
    if cert.issuer != cert.subject:
        return False
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            padding = cert.signature_algorithm_parameters
            if not isinstance(padding, PKCS1v15 | PSS) or cert.signature_hash_algorithm is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding,
                       cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if cert.signature_hash_algorithm is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        elif isinstance(key, dsa.DSAPublicKey) and cert.signature_hash_algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       cert.signature_hash_algorithm)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def revoked_cas(cas: list[x509.Certificate], revoked: frozenset[tuple[str, int]],
                ) -> frozenset[str]:
    """The CAs among ``cas`` that ``revoked`` lists, and (transitively) those they issued.
    A CA without an authority key identifier (OpenSSL allows it for a self-issued one)
    counts as issued by every known CA of its issuer's name."""
    keys_by_name: dict[str, list[str]] = {}
    for ca in cas:
        keys_by_name.setdefault(name_key(ca.subject), []).append(ca_key(ca))

    def parents(cert: x509.Certificate) -> list[str]:
        try:
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            key_id = aki.key_identifier.hex() if aki.key_identifier else ""
        except x509.ExtensionNotFound:
            key_id = ""
        if key_id:
            return [issuer_key(cert.issuer, key_id)]
        return keys_by_name.get(name_key(cert.issuer), []) or [name_key(cert.issuer)]

    links = [(ca_key(c), parents(c), c.serial_number) for c in cas if not _self_signed(c)]
    out = {key for key, ups, serial in links if any((up, serial) in revoked for up in ups)}
    while True:
        more = {key for key, ups, _ in links if any(up in out for up in ups)} - out
        if not more:
            return frozenset(out)
        out |= more


def cas_by_name(issuers: list[x509.Certificate]) -> dict[str, list[x509.Certificate]]:
    by_name: dict[str, list[x509.Certificate]] = {}
    for cert in issuers:
        by_name.setdefault(name_key(cert.subject), []).append(cert)
    return by_name


def signer_of(crl: x509.CertificateRevocationList,
            candidates: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA among ``candidates`` (same name) whose key signed ``crl``, if any."""
    return next((c for c in candidates
                 if crl.is_signature_valid(c.public_key())),  # type: ignore[arg-type]
                None)


def crl_facts(crl: x509.CertificateRevocationList, key: str) -> CrlFacts:
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    return CrlFacts(issuer=crl.issuer.rfc4514_string(), key=key, number=number,
                    this_update=crl.last_update_utc, next_update=crl.next_update_utc,
                    revoked=len(crl),
                    fingerprint=hashlib.sha256(crl.public_bytes(serialization.Encoding.DER))
                    .hexdigest())


def check_not_older(new: CrlFacts, current: CrlFacts | None, path: Path) -> None:
    """Refuse a CRL older than the one in force from the same CA (a rollback would un-revoke).

    Raises:
        ReloadError: a lower CRL number, the same number with other contents, a CRL
            without a number replacing one with, or (the one in force without a number)
            a thisUpdate that is not later, numbered or not: a number alone cannot say
            that an old numbered CRL is newer than an unnumbered one.
    """
    if current is None or new.fingerprint == current.fingerprint:
        return
    hint = "put the newest CRL back (or write a new one with `trustwire ca crl`)"
    if current.number is not None:
        if new.number is not None and new.number > current.number:
            return
        shown = "no number" if new.number is None else f"number {new.number}"
        raise ReloadError(
            f"the CRL {path} from {new.issuer} has {shown}, not newer than number "
            f"{current.number} in force; refusing to roll back (that could un-revoke "
            "certificates)", hint=hint)
    if new.this_update > current.this_update:
        return
    raise ReloadError(
        f"the CRL {path} from {new.issuer} was issued {new.this_update:%Y-%m-%d %H:%M:%S} UTC, "
        f"not after the one in force ({current.this_update:%Y-%m-%d %H:%M:%S} UTC); "
        "refusing to roll back", hint=hint)


def check_home_floor(facts: CrlFacts, floor: int | None, path: Path) -> None:
    if floor is None or (facts.number is not None and facts.number >= floor):
        return
    shown = "no number" if facts.number is None else f"number {facts.number}"
    raise ReloadError(f"the CRL {path} has {shown}, but the CA has signed number {floor}: it is "
                      "an older CRL put back (that could un-revoke certificates)",
                      hint="regenerate it with `trustwire ca crl`")


def check_none_dropped(current: Material, crls: list[CrlFacts],
                        issuers: list[x509.Certificate], path: Path) -> None:
    """A CA still trusted must keep a CRL: dropping it, then putting an older one back,
    would roll its revocations back in two steps."""
    still_trusted = {ca_key(c) for c in issuers}
    present = {c.key for c in crls}
    for facts in current.crls:
        if facts.key in still_trusted and facts.key not in present:
            raise ReloadError(f"the CRL file {path} no longer holds a CRL from {facts.issuer}, "
                              "which is still trusted",
                              hint="keep its newest CRL in the file (or remove the CA from the "
                                   "bundle first)")
