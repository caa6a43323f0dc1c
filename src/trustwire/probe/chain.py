"""Is the served chain in order, and why does it not verify? Pure.

Order is checked by names and key identifiers, never by verifying signatures: cryptography
refuses SHA-1 signatures, and a SHA-1-signed leaf is a signature problem (reported once, by
the signature check), not an ordering one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from trustwire.pki.extensions import find_extension

__all__ = ["TrustProblem", "explain_untrusted", "issued_by", "out_of_order"]

# OpenSSL X509_V_ERR codes the explanation distinguishes
UNABLE_TO_GET_ISSUER_CERT = 2
DEPTH_ZERO_SELF_SIGNED = 18
SELF_SIGNED_IN_CHAIN = 19
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent`` is ``child``'s issuer by name and, when both carry them, key id."""
    if child.issuer != parent.subject:
        return False
    aki = find_extension(child, x509.AuthorityKeyIdentifier)
    ski = find_extension(parent, x509.SubjectKeyIdentifier)
    if aki is not None and aki.key_identifier is not None and ski is not None:
        return aki.key_identifier == ski.digest
    return True


def out_of_order(chain: list[x509.Certificate]) -> int | None:
    """The index of the first certificate not issued by the next one, or None."""
    for index in range(len(chain) - 1):
        if not issued_by(chain[index], chain[index + 1]):
            return index
    return None


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = find_extension(cert, x509.BasicConstraints)
    return bool(constraints and constraints.ca)


def _ca_issuers(cert: x509.Certificate) -> list[str]:
    access = find_extension(cert, x509.AuthorityInformationAccess)
    if access is None:
        return []
    return [str(d.access_location.value) for d in access
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]


@dataclass(frozen=True)
class TrustProblem:
    kind: str
    """``untrusted-root``, ``self-signed``, ``incomplete`` or ``other``."""
    detail: str
    fix: str


def explain_untrusted(chain: list[x509.Certificate], code: int | None, why: str | None,
                      store: str | None) -> TrustProblem:
    """Why the chain does not verify against ``store``, in the words that lead to the fix."""
    against = f"checked against {store}" if store else "checked against the trust store"
    private = "pass --ca with it if it is your private CA (or add it to the trust store)"
    if not chain:
        return TrustProblem("other", f"the chain does not verify: {why}", "serve the certificate chain")
    leaf, last = chain[0], chain[-1]
    if code == DEPTH_ZERO_SELF_SIGNED or (len(chain) == 1 and _self_signed(leaf)):
        return TrustProblem("self-signed", f"the certificate is self-signed "
                            f"({leaf.subject.rfc4514_string()}); {against}",
                            f"serve a certificate issued by a CA, or {private}")
    # A root in the served chain explains the failure only when OpenSSL gave no other reason:
    # a root that is in the store, under a SHA-1 leaf or an expired one, fails for that reason.
    root_in_chain = next((c for c in chain[1:] if _self_signed(c)), None) if code is None else None
    if code == SELF_SIGNED_IN_CHAIN or root_in_chain is not None:
        root = root_in_chain or last
        return TrustProblem("untrusted-root", f"issued by a root you do not trust: "
                            f"{root.subject.rfc4514_string()} ({against})", private)
    if code in (UNABLE_TO_GET_ISSUER_CERT, UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                UNABLE_TO_VERIFY_LEAF_SIGNATURE):
        issuer = last.issuer.rfc4514_string()
        urls = _ca_issuers(last)
        if _is_ca(last) or not urls:
            # An intermediate was sent and its issuer is unknown, or a leaf names no
            # intermediate to fetch: the missing certificate is a root.
            return TrustProblem("untrusted-root", f"issued by a root you do not trust: {issuer} "
                                f"(neither sent nor in {store or 'the trust store'})", private)
        return TrustProblem("incomplete", f"incomplete: the intermediate {issuer} is not sent "
                            f"(the certificate names it at {urls[0]}); {against}",
                            "add the missing intermediate to the served chain, after the leaf")
    if why and any(w in why.lower() for w in ("digest", "md too weak", "key too small", "too weak")):
        return TrustProblem("other", f"the chain does not verify: {why} ({against})",
                            "reissue the certificates with SHA-256 (or stronger) signatures "
                            "and keys of at least 2048 bits (RSA) or P-256")
    return TrustProblem("other", f"the chain does not verify: {why} ({against})",
                        "serve the full chain from a trusted CA (or pass --ca for a private one)")
