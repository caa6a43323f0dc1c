"""The cipher suites OpenSSL 3 can no longer offer, by IANA id: RC4, 3DES, DES, EXPORT, NULL,
anonymous; and the SSL 2.0 cipher specs. Pure data.

OpenSSL 3 dropped RC4, single and triple DES, RC2, the EXPORT grades, static (EC)DH and SSL 2.0/3.0,
so the probe cannot ask about them with a handshake of its own: it offers them in hand-built
ClientHellos (:mod:`trustwire.probe.legacy_scan`) and reads the server's choice by IANA id. This
table says what each id is, in the shape :mod:`trustwire.probe.tls_scan` uses for the suites
OpenSSL can offer, so :func:`trustwire.probe.checks.weaknesses` judges both alike.

Each row is (IANA id, IANA name, OpenSSL name); key exchange, authentication, cipher and MAC
are read from the IANA name (``TLS_<kx>_WITH_<cipher>_<mac>``), so there is one source of truth
per suite. The 0x0060-0x0065 ``EXPORT1024`` suites were never registered (IANA reserves those
ids "to avoid conflicts with widely deployed implementations"); their names are the ones those
implementations used. Suites that need credentials the probe does not have (PSK, SRP,
Kerberos) are left out, as are GOST and FIPS-private ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LEGACY_SUITES", "SSLV2_CIPHERS", "SSLV2_SPECS", "LegacySuite", "SSLv2Cipher",
           "suite_by_id"]

# kx part of the IANA name, without _EXPORT/_EXPORT1024 -> (OpenSSL kea, auth). Static DH and
# ECDH have no OpenSSL 3 name: "kx-dh"/"kx-ecdh" keep them apart from the ephemeral kinds (so
# the forward-secrecy check counts them as what they are: without forward secrecy).
_KX = {
    "RSA": ("kx-rsa", "auth-rsa"),
    "DH_DSS": ("kx-dh", "auth-dss"), "DH_RSA": ("kx-dh", "auth-rsa"),
    "DHE_DSS": ("kx-dhe", "auth-dss"), "DHE_RSA": ("kx-dhe", "auth-rsa"),
    "DH_anon": ("kx-dhe", "auth-null"),
    "ECDH_ECDSA": ("kx-ecdh", "auth-ecdsa"), "ECDH_RSA": ("kx-ecdh", "auth-rsa"),
    "ECDHE_ECDSA": ("kx-ecdhe", "auth-ecdsa"), "ECDHE_RSA": ("kx-ecdhe", "auth-rsa"),
    "ECDH_anon": ("kx-ecdhe", "auth-null"),
}
# cipher part -> OpenSSL's name for the symmetric cipher (None: no encryption at all)
_CIPHER: dict[str, str | None] = {
    "NULL": None, "RC4_128": "rc4", "RC4_40": "rc4-40", "RC4_56": "rc4-56",
    "RC2_CBC_40": "rc2-40-cbc", "RC2_CBC_56": "rc2-56-cbc", "DES40_CBC": "des-40-cbc",
    "DES_CBC": "des-cbc", "3DES_EDE_CBC": "des-ede3-cbc", "SEED_CBC": "seed-cbc",
}
_MAC = {"MD5": "md5", "SHA": "sha1", "SHA256": "sha256"}

_ROWS: tuple[tuple[int, str, str], ...] = (
    # NULL encryption
    (0x0001, "TLS_RSA_WITH_NULL_MD5", "NULL-MD5"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA", "NULL-SHA"),
    (0x003B, "TLS_RSA_WITH_NULL_SHA256", "NULL-SHA256"),
    (0xC001, "TLS_ECDH_ECDSA_WITH_NULL_SHA", "ECDH-ECDSA-NULL-SHA"),
    (0xC006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA", "ECDHE-ECDSA-NULL-SHA"),
    (0xC00B, "TLS_ECDH_RSA_WITH_NULL_SHA", "ECDH-RSA-NULL-SHA"),
    (0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA", "ECDHE-RSA-NULL-SHA"),
    (0xC015, "TLS_ECDH_anon_WITH_NULL_SHA", "AECDH-NULL-SHA"),
    # RC4
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5", "RC4-MD5"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA"),
    (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", "ADH-RC4-MD5"),
    (0x0066, "TLS_DHE_DSS_WITH_RC4_128_SHA", "DHE-DSS-RC4-SHA"),
    (0xC002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA", "ECDH-ECDSA-RC4-SHA"),
    (0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA"),
    (0xC00C, "TLS_ECDH_RSA_WITH_RC4_128_SHA", "ECDH-RSA-RC4-SHA"),
    (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA"),
    (0xC016, "TLS_ECDH_anon_WITH_RC4_128_SHA", "AECDH-RC4-SHA"),
    # 3DES
    (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"),
    (0x000D, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA", "DH-DSS-DES-CBC3-SHA"),
    (0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA", "DH-RSA-DES-CBC3-SHA"),
    (0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", "EDH-DSS-DES-CBC3-SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", "EDH-RSA-DES-CBC3-SHA"),
    (0x001B, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", "ADH-DES-CBC3-SHA"),
    (0xC003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA", "ECDH-ECDSA-DES-CBC3-SHA"),
    (0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-ECDSA-DES-CBC3-SHA"),
    (0xC00D, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA", "ECDH-RSA-DES-CBC3-SHA"),
    (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"),
    (0xC017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA", "AECDH-DES-CBC3-SHA"),
    # single DES
    (0x0009, "TLS_RSA_WITH_DES_CBC_SHA", "DES-CBC-SHA"),
    (0x000C, "TLS_DH_DSS_WITH_DES_CBC_SHA", "DH-DSS-DES-CBC-SHA"),
    (0x000F, "TLS_DH_RSA_WITH_DES_CBC_SHA", "DH-RSA-DES-CBC-SHA"),
    (0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA", "EDH-DSS-DES-CBC-SHA"),
    (0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", "EDH-RSA-DES-CBC-SHA"),
    (0x001A, "TLS_DH_anon_WITH_DES_CBC_SHA", "ADH-DES-CBC-SHA"),
    # EXPORT (40-bit ciphers, 512-bit key exchange) and EXPORT1024 (56-bit, 1024-bit)
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", "EXP-RC4-MD5"),
    (0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", "EXP-RC2-CBC-MD5"),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "EXP-DES-CBC-SHA"),
    (0x000B, "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA", "EXP-DH-DSS-DES-CBC-SHA"),
    (0x000E, "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA", "EXP-DH-RSA-DES-CBC-SHA"),
    (0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA", "EXP-EDH-DSS-DES-CBC-SHA"),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", "EXP-EDH-RSA-DES-CBC-SHA"),
    (0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", "EXP-ADH-RC4-MD5"),
    (0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA", "EXP-ADH-DES-CBC-SHA"),
    (0x0060, "TLS_RSA_EXPORT1024_WITH_RC4_56_MD5", "EXP1024-RC4-MD5"),
    (0x0061, "TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5", "EXP1024-RC2-CBC-MD5"),
    (0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA", "EXP1024-DES-CBC-SHA"),
    (0x0063, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA", "EXP1024-DHE-DSS-DES-CBC-SHA"),
    (0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA", "EXP1024-RC4-SHA"),
    (0x0065, "TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA", "EXP1024-DHE-DSS-RC4-SHA"),
    # anonymous suites OpenSSL 3 lacks besides the ones above (it still has ADH-AES etc.)
    (0x009B, "TLS_DH_anon_WITH_SEED_CBC_SHA", "ADH-SEED-SHA"),
)


@dataclass(frozen=True)
class LegacySuite:
    """One TLS <= 1.2 cipher suite, described from its IANA name."""

    id: int
    iana: str
    name: str
    """The OpenSSL name, as the report spells suites for TLS <= 1.2."""

    @property
    def _parts(self) -> tuple[str, str, str]:
        kx, _, rest = self.iana.removeprefix("TLS_").partition("_WITH_")
        cipher, _, mac = rest.rpartition("_")
        return kx, cipher, mac

    @property
    def export(self) -> bool:
        return "_EXPORT" in self._parts[0]

    @property
    def kea(self) -> str:
        return _KX[self._base_kx][0]

    @property
    def auth(self) -> str:
        return _KX[self._base_kx][1]

    @property
    def _base_kx(self) -> str:
        return self._parts[0].replace("_EXPORT1024", "").replace("_EXPORT", "")

    @property
    def symmetric(self) -> str | None:
        return _CIPHER[self._parts[1]]

    @property
    def digest(self) -> str:
        return _MAC[self._parts[2]]

    @property
    def tls12_only(self) -> bool:
        """Defined for TLS 1.2 only (SHA-256 MACs): not offered in older hellos."""
        return self.digest == "sha256"

    @property
    def families(self) -> tuple[str, ...]:
        """Which of the weak families it belongs to: EXPORT, RC4, 3DES, DES, NULL, anonymous."""
        symmetric = self.symmetric or ""
        found = []
        if self.export:
            found.append("EXPORT")
        if symmetric.startswith("rc4"):
            found.append("RC4")
        if symmetric == "des-ede3-cbc":
            found.append("3DES")
        if symmetric == "des-cbc" and not self.export:
            found.append("DES")
        if self.symmetric is None:
            found.append("NULL")
        if self.auth == "auth-null":
            found.append("anonymous")
        return tuple(found)

    def as_cipher(self) -> dict[str, Any]:
        """The dict :mod:`trustwire.probe.tls_scan` files accepted suites as."""
        return {"name": self.name, "kea": self.kea, "auth": self.auth,
                "symmetric": self.symmetric, "aead": False, "digest": self.digest}


LEGACY_SUITES: tuple[LegacySuite, ...] = tuple(LegacySuite(*row) for row in _ROWS)
_BY_ID = {suite.id: suite for suite in LEGACY_SUITES}


def suite_by_id(suite_id: int) -> LegacySuite | None:
    return _BY_ID.get(suite_id)


@dataclass(frozen=True)
class SSLv2Cipher:
    """An SSL 2.0 cipher spec (3 bytes). All use RSA key exchange and an MD5 MAC."""

    spec: int
    iana: str
    name: str
    symmetric: str
    export: bool = False

    def as_cipher(self) -> dict[str, Any]:
        return {"name": self.name, "kea": "kx-rsa", "auth": "auth-rsa",
                "symmetric": self.symmetric, "aead": False, "digest": "md5"}


SSLV2_CIPHERS: tuple[SSLv2Cipher, ...] = (
    SSLv2Cipher(0x010080, "SSL_CK_RC4_128_WITH_MD5", "RC4-MD5", "rc4"),
    SSLv2Cipher(0x020080, "SSL_CK_RC4_128_EXPORT40_WITH_MD5", "EXP-RC4-MD5", "rc4-40", True),
    SSLv2Cipher(0x030080, "SSL_CK_RC2_128_CBC_WITH_MD5", "RC2-CBC-MD5", "rc2-cbc"),
    SSLv2Cipher(0x040080, "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5", "EXP-RC2-CBC-MD5",
                "rc2-40-cbc", True),
    SSLv2Cipher(0x050080, "SSL_CK_IDEA_128_CBC_WITH_MD5", "IDEA-CBC-MD5", "idea-cbc"),
    SSLv2Cipher(0x060040, "SSL_CK_DES_64_CBC_WITH_MD5", "DES-CBC-MD5", "des-cbc"),
    SSLv2Cipher(0x0700C0, "SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "DES-CBC3-MD5", "des-ede3-cbc"),
    SSLv2Cipher(0x080080, "SSL_CK_RC4_64_WITH_MD5", "RC4-64-MD5", "rc4-64"),
)
SSLV2_SPECS = {cipher.spec: cipher for cipher in SSLV2_CIPHERS}
