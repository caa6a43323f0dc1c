"""The client certificates the mTLS audit presents, minted on the fly through :mod:`trustwire.pki`.

A server that asks for client certificates must refuse a self-signed one, one from a
CA it does not know, an expired one and one without the clientAuth extended key usage.
With the server's own CA (``--ca`` and ``--ca-key``) the audit also mints a valid
certificate (the control: the server should let it in), an expired one and one without
clientAuth from that CA, and with ``--crl`` one that reuses a serial the CRL revokes.

Every certificate here is an ordinary pki product: the "bad" ones are bad only by
their issuer (a throw-away root), their dates (``now`` in the past) or their kind
(:attr:`CertKind.SERVER`), and the revoked one only by its serial
(:meth:`Authority.issue`'s ``serial``). The one exception is the self-signed case: pki's only
self-signed certificates are CA roots (keyCertSign only), which nginx refuses for their key
usage rather than for being self-signed, so that case is a client leaf signed by its own key
(:func:`_self_signed_client`), the shape of ``openssl req -x509`` with clientAuth.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustwire.errors import ConfigError
from trustwire.pki.ca import Authority, CertKind, IssuedCert, create_root, utcnow
from trustwire.pki.keys import load_private_key, public_keys_match
from trustwire.pki.names import SubjectAltNames
from trustwire.probe.observations import VALID_FROM_YOUR_CA
from trustwire.probe.target import ProbeOptions

__all__ = ["mint_identities"]


def mint_identities(directory: Path, options: ProbeOptions,
                    untested: list[tuple[str, str]]) -> dict[str, tuple[Path, Path]]:
    """Certificates the server must refuse (plus, with --ca-key, a good one), written to
    ``directory`` as PEM files.

    Returns:
        case description -> (certificate file, key file), in the order the audit reports them.

    Raises:
        ConfigError: --ca-key without --ca, unreadable files, or a key that is not the CA's.

    Cases that cannot be minted are appended to ``untested`` with the reason.
    """
    now = utcnow()
    stranger = create_root(name="trustwire probe: unknown CA", lifetime=dt.timedelta(days=3650))
    made: dict[str, IssuedCert] = {
        "a self-signed certificate": _self_signed_client(now),
        "a certificate from an unknown CA": stranger.issue("probe-unknown-ca", kind=CertKind.CLIENT),
        "an expired certificate (unknown CA)": _expired(stranger, now),
        "a certificate without clientAuth (unknown CA)": _server_only(stranger),
    }
    authority = _own_authority(options)
    if authority is not None:
        made[VALID_FROM_YOUR_CA] = authority.issue("probe-good", kind=CertKind.CLIENT)
        made["an expired certificate from your CA"] = _expired(authority, now)
        made["a certificate without clientAuth from your CA"] = _server_only(authority)
        revoked = _revoked_identity(authority, options, untested)
        if revoked is not None:
            made["a revoked certificate from your CA"] = revoked
    else:
        untested.append(("expired and revoked certificates from the server's own CA",
                         "pass --ca and --ca-key (and --crl) to mint them"))
    paths = {}
    for index, (case, issued) in enumerate(made.items()):
        certfile, keyfile = directory / f"{index}.crt", directory / f"{index}.key"
        issued.cert_chain_pem.write_to_path(certfile)
        issued.private_key_pem.write_to_path(keyfile)
        paths[case] = (certfile, keyfile)
    return paths


def _self_signed_client(now: dt.datetime) -> IssuedCert:
    """A client leaf signed by its own key: CA:FALSE, digitalSignature, clientAuth."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trustwire probe: self-signed")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return IssuedCert(cert=cert, private_key=key, chain=())


def _expired(authority: Authority, now: dt.datetime) -> IssuedCert:
    """Issued 30 days ago for one day: expired for 29 days."""
    return authority.issue("probe-expired", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=1),
                           now=now - dt.timedelta(days=30))


def _server_only(authority: Authority) -> IssuedCert:
    """A server certificate (serverAuth only): a client presenting it has the wrong EKU."""
    return authority.issue("probe-no-client-eku", kind=CertKind.SERVER,
                           sans=SubjectAltNames.parse(dns=["probe.invalid"]))


def _own_authority(options: ProbeOptions) -> Authority | None:
    """The server's CA from --ca and --ca-key (the first certificate in --ca), or None."""
    if options.ca_key is None:
        return None
    if options.ca is None:
        raise ConfigError("--ca-key needs --ca: the CA certificate that key belongs to")
    try:
        cert = x509.load_pem_x509_certificates(options.ca.read_bytes())[0]
        key = load_private_key(options.ca_key.read_bytes(), source=str(options.ca_key))
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    if not public_keys_match(cert.public_key(), key.public_key()):
        raise ConfigError(f"{options.ca_key} is not the key of {options.ca}")
    return Authority(cert=cert, key=key, parents=())


def _revoked_identity(authority: Authority, options: ProbeOptions,
                      untested: list[tuple[str, str]]) -> IssuedCert | None:
    """A certificate reusing a serial the server's CRL lists: the server must refuse it."""
    if options.crl is None:
        untested.append(("a revoked certificate", "pass --crl with the CRL the server checks"))
        return None
    crl = x509.load_pem_x509_crl(options.crl.read_bytes())
    serials = [entry.serial_number for entry in crl]
    if not serials:
        untested.append(("a revoked certificate", "the CRL lists no revoked serial"))
        return None
    return authority.issue("probe-revoked", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=1),
                           serial=serials[0])
