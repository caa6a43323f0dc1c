"""Judge collected observations against a profile: the probe's pure half.

Every check has a stable id, a section, a status (pass, warn, fail, info,
skip), one sentence of detail and, when something is wrong, the fix. The
verdict passes when no check fails.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from trustwire.pki.extensions import UNPARSABLE, find_extension, unparsable
from trustwire.pki.info import describe_certificate
from trustwire.pki.lint import Purpose, Severity, lint_certificate
from trustwire.probe.chain import TrustProblem, explain_untrusted, out_of_order
from trustwire.probe.completeness import INCOMPLETE, incomplete
from trustwire.probe.consequences import judge_consequences
from trustwire.probe.exploits import judge_exploits
from trustwire.probe.findings import Check, Status, Verdict, verdict
from trustwire.probe.legacy import judge_legacy
from trustwire.probe.observations import VALID_FROM_YOUR_CA, Observations
from trustwire.probe.profiles import Profile
from trustwire.probe.sessions import judge_sessions

__all__ = ["INCOMPLETE", "Check", "Status", "Verdict", "evaluate", "hostname_matches", "verdict",
           "weaknesses"]


VERSION_LABEL = {"SSLv2": "SSL 2.0", "SSLv3": "SSL 3.0", "TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1",
                 "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}
_CANONICAL_GROUP = {"prime256v1": "secp256r1", "p-256": "secp256r1", "p-384": "secp384r1",
                    "p-521": "secp521r1", "x25519mlkem768": "X25519MLKEM768"}


def canonical_group(name: str) -> str:
    low = name.lower()
    return _CANONICAL_GROUP.get(low, low if low != "x25519mlkem768" else "X25519MLKEM768")


def weaknesses(cipher: dict[str, Any], profile: Profile) -> list[str]:
    """Why an accepted TLS <= 1.2 suite is weak (empty when it is not)."""
    name = str(cipher.get("name", ""))
    kea, symmetric = str(cipher.get("kea") or ""), str(cipher.get("symmetric") or "")
    auth, digest = str(cipher.get("auth") or ""), str(cipher.get("digest") or "")
    found = []
    if kea == "kx-rsa":
        found.append("RSA key exchange (no forward secrecy)")
    if "NULL" in name or symmetric in ("null", ""):
        found.append("NULL encryption")
    if "EXP" in name:
        found.append("EXPORT grade")
    if "rc4" in symmetric:
        found.append("RC4")
    if "des-ede3" in symmetric or "DES-CBC3" in name:
        found.append("3DES (Sweet32)")
    if symmetric == "des-cbc" and "EXP" not in name:
        found.append("DES (56-bit key)")
    if symmetric.endswith("-cbc") and digest == "sha1":
        found.append("CBC with SHA-1")
    elif symmetric.endswith("-cbc"):
        found.append("CBC mode (not AEAD)")
    if auth == "auth-null" or name.startswith(("ADH", "AECDH")):
        found.append("anonymous (no server authentication)")
    if kea == "kx-dhe" and name not in profile.ciphers:
        found.append("DHE key exchange, which the profile drops")
    return found


def _weak_id(reason: str) -> str:
    """A stable id per weakness: its first word, but both CBC findings kept apart."""
    return "cbc_sha1" if reason.startswith("CBC with SHA-1") else reason.partition(" ")[0].lower()


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """RFC 6125: IP addresses against IP SANs, names against DNS SANs (left-most wildcard).
    False when the certificate has no SANs, or extensions that cannot be parsed."""
    sans = find_extension(cert, x509.SubjectAlternativeName)
    if sans is None:
        return False
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return address in sans.get_values_for_type(x509.IPAddress)
    wanted = name.lower().rstrip(".")
    for san in sans.get_values_for_type(x509.DNSName):
        pattern = san.lower().rstrip(".")
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted:
            head, _, tail = wanted.partition(".")
            if head and tail == pattern[2:]:
                return True
    return False


def _key_facts(cert: x509.Certificate) -> tuple[str, str | None, int | None]:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa", {"secp256r1": "prime256v1"}.get(key.curve.name, key.curve.name), key.key_size
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", None, key.key_size
    return type(key).__name__.lower().replace("publickey", ""), None, None


class _Judge:
    def __init__(self, obs: Observations, profile: Profile, now: dt.datetime) -> None:
        self.obs, self.profile, self.now = obs, profile, now
        self.checks: list[Check] = []

    def add(self, id_: str, section: str, title: str, status: Status, detail: str,
            fix: str | None = None) -> None:
        self.checks.append(Check(id=id_, section=section, title=title, status=status,
                                 detail=detail, fix=fix))

    def protocols(self) -> None:
        section = "Protocols"
        allowed = set(self.profile.tls_versions)
        for version, support in self.obs.versions.items():
            label = VERSION_LABEL.get(version, version)
            key = f"protocol.{version.lower().replace('.', '_')}"
            if support.accepted is None:
                self.add(key, section, label, Status.SKIP, f"not tested: {support.note}")
            elif support.accepted and version not in allowed:
                self.add(key, section, label, Status.FAIL, f"{label} is accepted; the profile "
                         f"allows only {', '.join(VERSION_LABEL[v] for v in sorted(allowed))}",
                         fix=f"disable {label} (nginx: ssl_protocols "
                             f"{' '.join(sorted(allowed))};)")
            elif support.accepted:
                self.add(key, section, label, Status.PASS, f"{label} is accepted")
            elif version in allowed:
                self.add(key, section, label, Status.WARN, f"{label} is not offered, though the "
                         "profile recommends it", fix=f"enable {label}")
            else:
                self.add(key, section, label, Status.PASS, f"{label} is refused")
        known = [self.obs.versions[v] for v in allowed if v in self.obs.versions]
        if not any(s.accepted for s in known) and all(s.accepted is False for s in known):
            self.add("protocol.none", section, "Allowed versions", Status.FAIL,
                     "none of the profile's TLS versions is accepted",
                     fix=f"enable {', '.join(sorted(allowed))}")

    def ciphers(self) -> None:
        section = "Cipher suites"
        profile = self.profile
        for version in sorted(set(self.obs.ciphers) | set(self.obs.untested_suites)):
            suites = self.obs.ciphers.get(version, [])
            label = VERSION_LABEL.get(version, version)
            names = [str(c["name"]) for c in suites]
            allowed = profile.ciphersuites if version == "TLSv1.3" else profile.ciphers
            extra = [n for n in names if n not in allowed]
            key = f"ciphers.{version.lower().replace('.', '_')}"
            if version != "TLSv1.3" and version not in profile.tls_versions:
                continue  # the version itself already failed
            if extra:
                status = Status.WARN if version == "TLSv1.3" else Status.FAIL
                self.add(key, section, f"{label} suites", status,
                         f"{len(extra)} of {len(names)} accepted suites are outside the profile: "
                         f"{', '.join(extra)}", fix="configure only the profile's suites")
            elif version in self.obs.untested_suites:
                self.add(key, section, f"{label} suites", Status.SKIP,
                         f"not tested: {self.obs.untested_suites[version]}" + (
                             f"; {len(names)} accepted, all in the profile: {', '.join(names)}"
                             if names else ""))
            else:
                self.add(key, section, f"{label} suites", Status.PASS,
                         f"{len(names)} accepted, all in the profile: {', '.join(names)}")
        weak: dict[str, list[str]] = {}
        for version, suites in self.obs.ciphers.items():
            if version == "TLSv1.3":
                for suite in suites:
                    if "CCM_8" in str(suite["name"]):
                        weak.setdefault("8-byte authentication tag (CCM_8)", []).append(
                            str(suite["name"]))
                continue
            for suite in suites:
                for reason in weaknesses(suite, profile):
                    weak.setdefault(reason, []).append(f"{suite['name']} ({VERSION_LABEL[version]})")
        for reason, offenders in weak.items():
            self.add(f"ciphers.weak.{_weak_id(reason)}", section, f"Weak: {reason}",
                     Status.FAIL, f"accepted: {', '.join(sorted(set(offenders)))}",
                     fix="remove these suites; keep ECDHE with AES-GCM or ChaCha20-Poly1305")
        tls12 = self.obs.ciphers.get("TLSv1.2", [])
        gap = self.obs.untested_suites.get("TLSv1.2")
        no_fs = [str(c["name"]) for c in tls12 if c.get("kea") not in ("kx-ecdhe", "kx-dhe")]
        if tls12 and gap and not no_fs:
            self.add("ciphers.forward_secrecy", section, "Forward secrecy", Status.SKIP,
                     f"not tested: {gap}")
        elif tls12:
            self.add("ciphers.forward_secrecy", section, "Forward secrecy",
                     Status.FAIL if no_fs else Status.PASS,
                     f"without forward secrecy: {', '.join(no_fs)}" if no_fs
                     else "every accepted suite uses ephemeral key exchange",
                     fix="use only ECDHE suites" if no_fs else None)
        if self.obs.server_order is not None:
            self._order(section)

    def _order(self, section: str) -> None:
        enforced, order = self.obs.server_order, self.obs.server_cipher_order
        if not enforced:
            status = Status.WARN if self.profile.server_preferred_order else Status.INFO
            self.add("ciphers.server_order", section, "Suite order", status,
                     "the server follows the client's preference")
            return
        weak = {name: reasons for name in order
                if (reasons := weaknesses(self._tls12_suite(name), self.profile))}
        strong = [name for name in order if name not in weak]
        shown = f"the server enforces its own order: {', '.join(order)}" if order else \
            "the server enforces its own order"
        for index, name in enumerate(order):
            later = [s for s in strong if order.index(s) > index]
            if name in weak and later:
                self.add("ciphers.server_order", section, "Suite order", Status.FAIL,
                         f"{shown}; it picks {name} ({', '.join(weak[name])}) over {later[0]} "
                         "when a client offers both",
                         fix=f"put strong suites first (nginx: ssl_ciphers with {later[0]} "
                             "ahead; or ssl_prefer_server_ciphers off)")
                return
        self.add("ciphers.server_order", section, "Suite order", Status.INFO, shown)

    def _tls12_suite(self, name: str) -> dict[str, Any]:
        return next((c for c in self.obs.ciphers.get("TLSv1.2", []) if c["name"] == name),
                    {"name": name})

    def groups(self) -> None:
        section = "Key exchange"
        wanted = {canonical_group(g) for g in self.profile.tls_curves}
        accepted = [g for g, s in self.obs.groups.items() if s.accepted]
        untested = [g for g, s in self.obs.groups.items() if s.accepted is None]
        if not self.obs.groups:
            self.add("groups", section, "Groups", Status.SKIP, "not tested: no usable TLS version")
            return
        extra = [g for g in accepted if g not in wanted]
        unknown = [g for g in untested if g in wanted]
        if not any(g in wanted for g in accepted) and unknown:
            self.add("groups.profile", section, "Groups", Status.SKIP,
                     f"not tested: {', '.join(unknown)} "
                     f"({self.obs.groups[unknown[0]].note or 'no answer'})")
        elif not any(g in wanted for g in accepted):
            self.add("groups.profile", section, "Groups", Status.FAIL,
                     f"none of the profile's groups is accepted (accepted: {', '.join(accepted) or 'none'})",
                     fix="enable X25519 and P-256")
        else:
            self.add("groups.profile", section, "Groups", Status.PASS,
                     f"accepted: {', '.join(accepted)}")
        if extra:  # the profile lists the groups it allows: any other is a failure
            self.add("groups.extra", section, "Groups outside the profile", Status.FAIL,
                     f"also accepted: {', '.join(extra)} (the profile allows "
                     f"{', '.join(canonical_group(g) for g in self.profile.tls_curves)})",
                     fix=f"offer only {':'.join(self.profile.tls_curves)} (nginx: ssl_ecdh_curve)")
        if untested:
            self.add("groups.untested", section, "Groups not tested", Status.SKIP,
                     "; ".join(f"{g}: {self.obs.groups[g].note or 'not tested'}"
                               for g in untested))
        self._sizes(section)

    def _sizes(self, section: str) -> None:
        dh, ec = self.obs.dh_param_size, self.obs.ecdh_param_size
        want_dh, want_ec = self.profile.dh_param_size, self.profile.ecdh_param_size
        if dh is not None:
            small = want_dh is not None and dh < want_dh
            self.add("kex.dh_size", section, "DH parameters", Status.FAIL if small else Status.PASS,
                     f"{dh}-bit DH prime" + (f", under the profile's {want_dh}" if small else ""),
                     fix=f"use {want_dh}-bit or larger DH parameters (the RFC 7919 ffdhe groups; "
                         "nginx: ssl_dhparam) or drop DHE suites" if small else None)
        if ec is not None:
            small = want_ec is not None and ec < want_ec
            self.add("kex.ecdh_size", section, "ECDH group size",
                     Status.FAIL if small else Status.PASS,
                     f"smallest group: {ec} bits" + (f", under the profile's {want_ec}" if small else ""),
                     fix="offer only X25519, P-256 and P-384" if small else None)

    def certificate(self) -> None:
        section = "Certificate"
        chain = self.obs.chain
        if not chain:
            if self.obs.chain_untested is not None:
                self.add("cert.present", section, "Certificate", Status.SKIP,
                         f"not tested: {self.obs.chain_untested}")
                self.add("cert.trusted", section, "Trusted", Status.SKIP,
                         f"not verified: {self.obs.trust_error or self.obs.chain_untested}")
            else:
                self.add("cert.present", section, "Certificate", Status.FAIL,
                         "the server sent no certificate")
            return
        leaf = chain[0]
        info = describe_certificate(leaf)
        malformed = unparsable(leaf)
        self.add("cert.subject", section, "Subject", Status.INFO,
                 f"{info.subject} issued by {info.issuer}; SANs: "
                 f"{'unreadable' if malformed else ', '.join(info.sans.describe()) or 'none'}")
        if malformed:
            self.add("cert.malformed", section, "Extensions", Status.FAIL,
                     f"{UNPARSABLE}: {malformed}",
                     fix="reissue the certificate with well-formed extensions (clients that "
                         "parse them strictly refuse it)")
        if self.obs.trusted is True:
            self.add("cert.trusted", section, "Trusted", Status.PASS,
                     "the chain verifies strictly against the trust store")
        elif self.obs.trusted is False:
            problem = self._trust_problem()
            self.add("cert.trusted", section, "Trusted", Status.FAIL, problem.detail,
                     fix=problem.fix)
        else:
            self.add("cert.trusted", section, "Trusted", Status.SKIP,
                     f"not verified: {self.obs.trust_error or 'no verifying handshake'}")
        name = self.obs.target.server_name
        if malformed:
            self.add("cert.hostname", section, "Name", Status.SKIP, f"not tested: {UNPARSABLE}")
        elif hostname_matches(leaf, name):
            self.add("cert.hostname", section, "Name", Status.PASS, f"valid for {name}")
        else:
            self.add("cert.hostname", section, "Name", Status.FAIL,
                     f"not valid for {name} (it names {', '.join(info.sans.describe()) or 'nothing'})",
                     fix=f"reissue it with {name} in its subjectAltName")
        days = (leaf.not_valid_after_utc - self.now).total_seconds() / 86400
        if self.now > leaf.not_valid_after_utc:
            self.add("cert.validity", section, "Validity", Status.FAIL,
                     f"expired on {leaf.not_valid_after_utc:%Y-%m-%d} ({-days:.0f} days ago)",
                     fix="renew the certificate")
        elif self.now < leaf.not_valid_before_utc:
            self.add("cert.validity", section, "Validity", Status.FAIL,
                     f"not valid until {leaf.not_valid_before_utc:%Y-%m-%d}",
                     fix="check the server's clock and the certificate's dates")
        else:
            self.add("cert.validity", section, "Validity",
                     Status.WARN if days < 14 else Status.PASS,
                     f"{days:.0f} days left (until {leaf.not_valid_after_utc:%Y-%m-%d})",
                     fix="renew soon" if days < 14 else None)
        lifetime = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days
        limit = self.profile.maximum_certificate_lifespan
        self.add("cert.lifetime", section, "Lifetime",
                 Status.FAIL if lifetime > limit else Status.PASS,
                 f"{lifetime} days" + (f", over the profile's {limit}" if lifetime > limit else ""),
                 fix=f"issue certificates for at most {limit} days" if lifetime > limit else None)
        kind, curve, size = _key_facts(leaf)
        problems = []
        if kind not in self.profile.certificate_types:
            problems.append(f"{kind} keys are not in the profile "
                            f"({', '.join(self.profile.certificate_types)})")
        if kind == "ecdsa" and curve not in self.profile.certificate_curves:
            problems.append(f"curve {curve} is not in the profile")
        if kind == "rsa" and self.profile.rsa_key_size and (size or 0) < self.profile.rsa_key_size:
            problems.append(f"RSA {size} is under {self.profile.rsa_key_size} bits")
        self.add("cert.key", section, "Key", Status.FAIL if problems else Status.PASS,
                 "; ".join(problems) if problems else info.key,
                 fix="use an ECDSA P-256 key" if problems else None)
        signature = leaf.signature_algorithm_oid._name
        ok = signature in self.profile.certificate_signatures
        self.add("cert.signature", section, "Signature", Status.PASS if ok else Status.FAIL,
                 signature + ("" if ok else " is not in the profile"),
                 fix=None if ok else "reissue with SHA-256 (or stronger)")
        self._chain_order(section, chain)
        self._lint(section, chain)
        if self.obs.ocsp_stapled is None:
            self.add("cert.ocsp", section, "OCSP stapling", Status.SKIP, "not tested")
        elif self.obs.ocsp_stapled:
            self.add("cert.ocsp", section, "OCSP stapling", Status.PASS, "a response is stapled")
        else:
            # The profile asks for stapling; a certificate that names no OCSP responder
            # (a private CA's, usually) has nothing to staple, so that is not the server's fault.
            responder = _ocsp_responder(chain[0])
            if malformed and self.profile.ocsp_staple:
                self.add("cert.ocsp", section, "OCSP stapling", Status.SKIP,
                         f"no OCSP response is stapled; not judged: {UNPARSABLE} (does it "
                         "name a responder?)")
            elif self.profile.ocsp_staple and responder:
                self.add("cert.ocsp", section, "OCSP stapling", Status.FAIL,
                         f"no OCSP response is stapled, though the certificate names the "
                         f"responder {responder} and the profile requires stapling",
                         fix="enable OCSP stapling (nginx: ssl_stapling on; ssl_stapling_verify on;)")
            else:
                self.add("cert.ocsp", section, "OCSP stapling", Status.INFO,
                         "no OCSP response is stapled" + (
                             "; the certificate names no OCSP responder, so there is nothing "
                             "to staple" if not responder else ""))

    def _trust_problem(self) -> TrustProblem:
        return explain_untrusted(self.obs.chain, self.obs.trust_code, self.obs.trust_error,
                                 self.obs.trust_store)

    def _chain_order(self, section: str, chain: list[x509.Certificate]) -> None:
        index = out_of_order(chain)
        if index is not None:
            child, parent = chain[index], chain[index + 1]
            self.add("cert.chain", section, "Chain order", Status.FAIL,
                     f"certificate {index + 1} ({child.subject.rfc4514_string()}) is not issued "
                     f"by the next one ({parent.subject.rfc4514_string()})",
                     fix="send the leaf first, then each issuer in order")
            return
        if self.obs.trusted is False and self._trust_problem().kind == "incomplete":
            self.add("cert.chain", section, "Chain", Status.FAIL,
                     self._trust_problem().detail,
                     fix="add the missing intermediate to the served chain")
        else:
            self.add("cert.chain", section, "Chain", Status.PASS,
                     f"{len(chain)} certificate(s), in order")

    def _lint(self, section: str, chain: list[x509.Certificate]) -> None:
        errors: list[str] = []
        warnings: list[str] = []
        for index, cert in enumerate(chain):
            purpose = Purpose.SERVER if index == 0 else Purpose.CA
            for finding in lint_certificate(cert, purpose=purpose, now=self.now):
                if finding.code in ("expired", "not-yet-valid", "lifetime-too-long"):
                    continue  # reported above, with the profile's numbers
                text = f"{finding.code} ({'leaf' if index == 0 else f'CA {index}'}): {finding.message}"
                (errors if finding.severity is Severity.ERROR else warnings).append(text)
        if errors:
            self.add("cert.strict", section, "Strict verification", Status.FAIL, "; ".join(errors),
                     fix="reissue the certificate; `trustwire cert lint FILE` explains each point")
        elif warnings:
            self.add("cert.strict", section, "Strict verification", Status.WARN, "; ".join(warnings))
        else:
            self.add("cert.strict", section, "Strict verification", Status.PASS,
                     "no defects that strict verifiers reject")

    def client_auth(self) -> None:
        section = "Client authentication"
        obs = self.obs
        if obs.client_auth_requested is None:
            self.add("clientauth.requested", section, "Requested", Status.SKIP,
                     "not tested: the server did not answer the handshakes that would tell")
            return
        if not obs.client_auth_requested:
            status = Status.FAIL if self.profile.require_client_auth else Status.INFO
            self.add("clientauth.requested", section, "Requested", status,
                     "the server does not ask for client certificates",
                     fix="require client certificates" if status is Status.FAIL else None)
            return
        self.add("clientauth.requested", section, "Requested", Status.INFO,
                 "the server asks for a client certificate")
        if obs.our_certificate_accepted is not None:
            self.add("clientauth.ours", section, "Our certificate",
                     Status.PASS if obs.our_certificate_accepted else Status.FAIL,
                     "accepted" if obs.our_certificate_accepted else "refused",
                     fix=None if obs.our_certificate_accepted else
                     "check that --cert is issued by the CA the server trusts")
        let_in = []
        for case in obs.enforcement:
            key = "clientauth." + case.case.replace(" ", "_").replace("(", "").replace(")", "")
            if case.case == VALID_FROM_YOUR_CA:
                self.add(key, section, "Good certificate", Status.PASS if case.refused is False
                         else Status.WARN, case.detail)
                continue
            if case.refused is None:
                self.add(key, section, f"Refuses {case.case}", Status.WARN, case.detail)
            elif case.refused:
                self.add(key, section, f"Refuses {case.case}", Status.PASS, case.detail)
            else:
                let_in.append(case.case)
                self.add(key, section, f"Refuses {case.case}", Status.FAIL, case.detail,
                         fix="require and verify client certificates "
                             "(nginx: ssl_verify_client on; trustwire serve does by default)")
        if let_in:
            self.add("clientauth.enforced", section, "Enforcement", Status.FAIL,
                     f"the server does not enforce client authentication: {', '.join(let_in)} "
                     "got in")
        elif obs.enforcement:
            unjudged = [c.case for c in obs.enforcement
                        if c.refused is None and c.case != VALID_FROM_YOUR_CA]
            good = next((c for c in obs.enforcement if c.case == VALID_FROM_YOUR_CA), None)
            if unjudged:
                self.add("clientauth.enforced", section, "Enforcement", Status.WARN,
                         f"not judged: no verdict for {', '.join(unjudged)}")
            elif (good is not None and good.refused is not False) or (
                    good is None and obs.our_certificate_accepted is False):
                self.add("clientauth.enforced", section, "Enforcement", Status.WARN,
                         "every bad or missing certificate was refused, but so was the good "
                         "one: the refusals may have other reasons")
            else:
                self.add("clientauth.enforced", section, "Enforcement", Status.PASS,
                         "every bad or missing certificate was refused")

    def http(self) -> None:
        section = "HTTP"
        obs = self.obs
        if not obs.target.https:
            return
        if obs.http_status is None:
            self.add("http.status", section, "Response", Status.WARN,
                     f"no HTTP response ({obs.http_error})")
            return
        note = "" if obs.http_verified else " (read over an unverified connection: the " \
                                            "certificate did not verify)"
        self.add("http.status", section, "Response", Status.INFO, f"HTTP {obs.http_status}{note}")
        hsts = obs.http_headers.get("strict-transport-security")
        if hsts is None:
            self.add("http.hsts", section, "Strict-Transport-Security", Status.FAIL, "missing",
                     fix=f'add "Strict-Transport-Security: max-age={self.profile.hsts_min_age}; '
                         'includeSubDomains"')
        else:
            max_age = _max_age(hsts)
            if max_age is None or max_age < self.profile.hsts_min_age:
                self.add("http.hsts", section, "Strict-Transport-Security", Status.FAIL,
                         f"max-age {max_age} is under {self.profile.hsts_min_age}",
                         fix=f"set max-age={self.profile.hsts_min_age}")
            else:
                self.add("http.hsts", section, "Strict-Transport-Security", Status.PASS, hsts)
            if "includesubdomains" not in hsts.lower().replace(" ", ""):
                self.add("http.hsts_subdomains", section, "HSTS includeSubDomains", Status.WARN,
                         "missing", fix="add includeSubDomains")
        for header, wanted in (("x-content-type-options", "nosniff"),
                               ("content-security-policy", None), ("referrer-policy", None)):
            value = obs.http_headers.get(header)
            ok = value is not None and (wanted is None or value.lower() == wanted)
            self.add(f"http.{header}", section, header.title(), Status.PASS if ok else Status.WARN,
                     value or "missing", fix=None if ok else f"send {header}")
        frame = obs.http_headers.get("x-frame-options") or (
            "frame-ancestors" if "frame-ancestors" in obs.http_headers.get(
                "content-security-policy", "") else None)
        self.add("http.framing", section, "Clickjacking protection",
                 Status.PASS if frame else Status.WARN, frame or "no X-Frame-Options or "
                 "frame-ancestors", fix=None if frame else "send X-Frame-Options: DENY")
        encoding = obs.http_headers.get("content-encoding", "").strip().lower()
        if encoding and encoding != "identity":
            self.add("http.compression", section, "HTTP compression (BREACH)", Status.WARN,
                     f"the response is compressed (Content-Encoding: {encoding}) for a request "
                     "that accepts gzip: a page that reflects input next to a secret leaks it "
                     "to BREACH", fix="turn off compression for pages with secrets (nginx: "
                     "gzip off;) or mask secrets per response")
        else:
            self.add("http.compression", section, "HTTP compression (BREACH)", Status.PASS,
                     "the response is not compressed, though the request accepts gzip")
        if obs.redirect is not None:
            status, location = obs.redirect
            ok = status in (301, 302, 307, 308) and bool(location and location.startswith("https://"))
            self.add("http.redirect", section, "HTTP redirects to HTTPS",
                     Status.PASS if ok else Status.FAIL,
                     f"{status} -> {location}" if status else str(location),
                     fix=None if ok else "redirect http:// to https:// with 301")


def _ocsp_responder(cert: x509.Certificate) -> str | None:
    access = find_extension(cert, x509.AuthorityInformationAccess)
    if access is None:
        return None
    return next((str(d.access_location.value) for d in access
                 if d.access_method == AuthorityInformationAccessOID.OCSP), None)


def _max_age(header: str) -> int | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "max-age":
            try:
                return int(value.strip().strip('"'))
            except ValueError:
                return None
    return None


def evaluate(obs: Observations, profile: Profile, now: dt.datetime | None = None) -> list[Check]:
    """Every check, in report order."""
    judge = _Judge(obs, profile, now or dt.datetime.now(dt.UTC))
    judge.protocols()
    judge.ciphers()
    judge.groups()
    judge.certificate()
    judge.client_auth()
    judge.http()
    judge.checks += judge_consequences(obs)
    judge.checks += incomplete(obs)
    judge.checks += judge_legacy(obs.legacy)
    judge.checks += judge_exploits(obs.exploits)
    judge.checks += judge_sessions(obs, profile)
    return judge.checks
