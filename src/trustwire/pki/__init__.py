"""trustwire's certificate authority: keys, certificates, CRLs, the home and the linter.

The pure parts (``ca``, ``crl``, ``lint``, ``names``, ``keys``) never touch the
disk; ``store.Home`` owns the home directory and the inventory.
"""

from __future__ import annotations

from trustwire.pki.ca import (
    Authority,
    Blob,
    CertKind,
    IssuedCert,
    create_intermediate,
    create_root,
    fingerprint,
)
from trustwire.pki.crl import RevocationReason, RevokedEntry, build_crl
from trustwire.pki.info import CertInfo, describe_certificate
from trustwire.pki.inventory import Inventory, Record, State, Status
from trustwire.pki.keys import KeyType
from trustwire.pki.lint import Finding, Purpose, Severity, lint_certificate
from trustwire.pki.names import NameConstraints, SubjectAltNames
from trustwire.pki.store import Home, IdentityFiles

__all__ = [
    "Authority",
    "Blob",
    "CertInfo",
    "CertKind",
    "Finding",
    "Home",
    "IdentityFiles",
    "Inventory",
    "IssuedCert",
    "KeyType",
    "NameConstraints",
    "Purpose",
    "Record",
    "RevocationReason",
    "RevokedEntry",
    "Severity",
    "State",
    "Status",
    "SubjectAltNames",
    "build_crl",
    "create_intermediate",
    "create_root",
    "describe_certificate",
    "fingerprint",
    "lint_certificate",
]
