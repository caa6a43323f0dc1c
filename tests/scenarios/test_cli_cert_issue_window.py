"""`cert issue --not-before/--not-after`, `--ou`/`--org`, and the fingerprint it prints."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.conftest import CliResult
from tests.scenarios.helpers import assert_clean_error
from trustwire.authz.policy import Policy
from trustwire.pki.ca import fingerprint
from trustwire.pki.store import Home

Cli = Callable[..., CliResult]


def leaf(home: Home, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(home.cert_path(name).read_bytes())


def test_absolute_window_utc_unless_an_offset_is_given(home: Home, cli: Cli) -> None:
    result = cli("--home", home.root, "cert", "issue", "job", "--client",
                 "--not-before", "2030-01-02T03:04:05", "--not-after", "2030-02-01T12:00+01:00")
    assert result.code == 0, result.err
    cert = leaf(home, "job")
    assert cert.not_valid_before_utc == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert cert.not_valid_after_utc == dt.datetime(2030, 2, 1, 11, 0, tzinfo=dt.UTC)
    assert "valid:       2030-01-02 03:04 UTC to 2030-02-01 11:00 UTC" in result.out
    only_end = cli("--home", home.root, "cert", "issue", "end", "--client", "--not-after",
                   (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert only_end.code == 0, only_end.err
    cert = leaf(home, "end")
    assert abs(cert.not_valid_before_utc - (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))) < \
        dt.timedelta(minutes=1)


def test_window_refusals(home: Home, cli: Cli, tmp_path: Path) -> None:
    reversed_ = cli("--home", home.root, "cert", "issue", "a", "--client",
                    "--not-before", "2030-02-01", "--not-after", "2030-01-01")
    assert_clean_error(reversed_, 2, "would end (2030-01-01T00:00:00+00:00) before it begins")
    assert "hint: give --not-after later than --not-before" in reversed_.err
    mixed = cli("--home", home.root, "cert", "issue", "a", "--client", "--days", "3",
                "--not-after", "2030-01-01")
    assert_clean_error(mixed, 2, "give either --days/--hours or --not-before/--not-after")
    assert "hint: see `trustwire cert issue --help`" in mixed.err
    garbled = cli("--home", home.root, "cert", "issue", "a", "--client", "--not-after", "soon")
    assert_clean_error(garbled, 2, "--not-after 'soon' is not an ISO 8601 time")
    assert "hint: write it like 2026-03-01T12:00:00Z" in garbled.err

    short = Home(tmp_path / "short")
    short.init_ca(name="short CA", lifetime=dt.timedelta(days=401))
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=350)
    late = cli("--home", short.root, "cert", "issue", "a", "--client",
               "--not-before", start.isoformat(), "--not-after",
               (start + dt.timedelta(days=60)).isoformat())
    assert_clean_error(late, 1, "the certificate would expire after its CA")
    assert "hint: use a --not-after before " in late.err
    assert not short.cert_path("a").exists() and not home.cert_path("a").exists()


def test_org_and_ou_in_the_subject_and_kept_on_renewal(home: Home, cli: Cli) -> None:
    result = cli("--home", home.root, "cert", "issue", "svc", "--server", "--org", "Acme Ltd",
                 "--ou", "payments")
    assert result.code == 0, result.err
    assert leaf(home, "svc").subject.rfc4514_string() == "OU=payments,O=Acme Ltd,CN=svc"
    assert cli("--home", home.root, "cert", "renew", "svc").code == 0
    renewed = leaf(home, "svc").subject
    assert renewed.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme Ltd"
    for flag, what in (("--org", "organization"), ("--ou", "organizational unit")):
        bad = cli("--home", home.root, "cert", "issue", "x", "--client", flag, "Acme\u202eevil")
        assert_clean_error(bad, 2, f"invalid {what}")
        assert "hint: " in bad.err
        too_long = cli("--home", home.root, "cert", "issue", "x", "--client", flag, "o" * 65)
        assert_clean_error(too_long, 2, "65 characters, more than the 64 allowed")
        assert "hint: shorten it to 1-64 characters" in too_long.err
    assert not home.cert_path("x").exists()


def test_printed_fingerprint_is_what_allow_fingerprint_takes(home: Home, cli: Cli) -> None:
    result = cli("--home", home.root, "cert", "issue", "pinned", "--client")
    assert result.code == 0, result.err
    match = re.search(r"^  fingerprint: (sha256:[0-9A-F]{64})$", result.out, re.MULTILINE)
    assert match, result.out
    printed = match.group(1)
    cert = leaf(home, "pinned")
    assert Policy.build(fingerprint=[printed]).fingerprint == {fingerprint(cert)}
    other = cli("--home", home.root, "cert", "issue", "other", "--client", "--json")
    assert json.loads(other.out)["fingerprint"] != printed
    shown = cli("--home", home.root, "cert", "show", "pinned", "--json")
    assert json.loads(shown.out)["fingerprint"] == printed
    listed = cli("--home", home.root, "cert", "list", "--json")
    assert printed in [r["fingerprint"] for r in json.loads(listed.out)]
    human = cli("--home", home.root, "cert", "show", "pinned")
    assert printed in human.out.replace("\n", " ").split()


def test_a_window_before_the_ca_is_refused_and_one_in_the_past_warned(cli: Cli, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    old = Home(tmp_path / "old")
    old.init_ca(name="old CA", now=now - dt.timedelta(days=30))
    ca_start = old.root_cert().not_valid_before_utc
    early = cli("--home", old.root, "cert", "issue", "a", "--client",
                "--not-before", "2001-01-01", "--not-after", "2001-02-01")
    assert_clean_error(early, 1, "would start (2001-01-01 00:00 UTC) before its CA")
    assert f"hint: give a --not-before on or after {ca_start:%Y-%m-%dT%H:%M}Z" in early.err
    past = cli("--home", old.root, "cert", "issue", "b", "--client",
               "--not-before", (now - dt.timedelta(days=20)).isoformat(),
               "--not-after", (now - dt.timedelta(days=10)).isoformat())
    assert past.code == 0, past.err
    (warning,) = past.err.strip().splitlines()
    assert warning.startswith("warning: the whole validity window ends in the past"), past.err
    assert "b is expired from the start" in warning


def test_a_window_past_the_ca_names_the_cas_end(home: Home, cli: Cli) -> None:
    end = home.root_cert().not_valid_after_utc
    late = cli("--home", home.root, "cert", "issue", "a", "--client", "--not-after",
               f"{end.year + 4}-01-01")
    assert_clean_error(late, 1, f"its CA, which expires on {end:%Y-%m-%d %H:%M} UTC")
    assert f"hint: use a --not-after before {end:%Y-%m-%dT%H:%M}Z" in late.err
    assert "--days 90" not in late.err
    long = cli("--home", home.root, "cert", "issue", "a", "--client", "--not-before", "2030-01-01",
               "--not-after", "2031-06-01")
    assert_clean_error(long, 2, "may live at most 397 days")
    assert "hint: give a --not-after at most 397 days after --not-before" in long.err


def test_export_refuses_a_revoked_identity_and_warns_for_an_expired_one(
    home: Home, cli: Cli, tmp_path: Path,
) -> None:
    from trustwire.pki.ca import CertKind

    passfile = tmp_path / "p"
    passfile.write_text("a long passphrase\n")
    passfile.chmod(0o600)
    home.issue("gone", kind=CertKind.CLIENT)
    home.revoke("gone")
    revoked = cli("--home", home.root, "cert", "export", "gone", "--p12", tmp_path / "gone.p12",
                  "--passphrase-file", passfile)
    assert_clean_error(revoked, 1, "gone (serial", "is revoked; refusing to export it")
    assert "hint: renew it (`trustwire cert renew gone`) or issue a new one" in revoked.err
    assert not (tmp_path / "gone.p12").exists()
    now = dt.datetime.now(dt.UTC)
    home.issue("stale", kind=CertKind.CLIENT, lifetime=dt.timedelta(days=1),
               now=now - dt.timedelta(days=10))
    stale = cli("--home", home.root, "cert", "export", "stale", "--p12", tmp_path / "stale.p12",
                "--passphrase-file", passfile)
    assert stale.code == 0, stale.err
    assert stale.err.startswith("warning: stale expired on "), stale.err
    assert "`trustwire cert renew stale`" in stale.err


def test_ou_and_org_text_hints(home: Home, cli: Cli) -> None:
    empty = cli("--home", home.root, "cert", "issue", "x", "--client", "--ou", "")
    assert_clean_error(empty, 2, "invalid organizational unit '': it is empty")
    assert "hint: give 1-64 characters, or leave the organizational unit out" in empty.err
    spaced = cli("--home", home.root, "cert", "issue", "x", "--client", "--org", " Acme ")
    assert_clean_error(spaced, 2, "invalid organization ' Acme ': it begins or ends with a space")
    assert "hint: write it without them: 'Acme'" in spaced.err
    decomposed = "Caf" + "e\u0301"  # e + combining acute: NFC makes it one character
    issued = cli("--home", home.root, "cert", "issue", "x", "--client", "--ou", decomposed, "--json")
    assert issued.code == 0, issued.err
    assert json.loads(issued.out)["organizational_unit"] == "Caf\u00e9"
    assert leaf(home, "x").subject.get_attributes_for_oid(
        NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Caf\u00e9"


def test_passphrase_file_and_missing_directory_hints(home: Home, cli: Cli, tmp_path: Path) -> None:
    missing = cli("--home", home.root, "cert", "issue", "x", "--client", "--passphrase-file",
                  tmp_path / "nope.pass")
    assert_clean_error(missing, 2, "cannot read the passphrase file")
    assert "hint: check the path given with --passphrase-file" in missing.err
    blank_first = tmp_path / "blank.pass"
    blank_first.write_text("\nsecret\n")
    blank = cli("--home", home.root, "cert", "issue", "x", "--client", "--passphrase-file", blank_first)
    assert_clean_error(blank, 2, "has an empty first line")
    assert "hint: put the passphrase on the file's first line" in blank.err
    out = tmp_path / "out" / "crl.pem"
    nodir = cli("--home", home.root, "ca", "crl", "--out", out)
    assert_clean_error(nodir, 1, f"could not write {out}")
    assert f"hint: create the directory first (mkdir -p {out.parent})" in nodir.err
