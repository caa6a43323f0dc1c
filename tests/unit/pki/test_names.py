"""Names: what may go into a certificate, and name-constraint matching."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustwire.errors import ConfigError
from trustwire.pki.names import (
    NameConstraints,
    SubjectAltNames,
    default_server_sans,
    looks_like_hostname,
    parse_dns_name,
    parse_ip,
    parse_ip_network,
    parse_uri,
    validate_cert_name,
)


@pytest.mark.parametrize("name", ["alice", "web-1", "svc.example", "a_b", "user@corp", "A1"])
def test_valid_cert_names_are_kept(name: str) -> None:
    assert validate_cert_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../etc/passwd", "a/b", ".hidden", "-dash", "a..b", "x" * 65, "sp ace", "k.key",
             "c.crt", "trailing.", "ümlaut", "a\x00b", "alice\n", "alice\r\n", "ali\nce", "alice\t",
             "alice\x7f", "\nalice"],
)
def test_cert_names_that_could_escape_or_confuse_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid certificate name"):
        validate_cert_name(name)


@pytest.mark.parametrize(("given_name", "expected"), [
    ("Example.COM", "example.com"),
    ("example.com.", "example.com"),
    ("*.example.com", "*.example.com"),
    ("localhost", "localhost"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("bücher.example", "xn--bcher-kva.example"),
])
def test_dns_names_are_normalised(given_name: str, expected: str) -> None:
    assert parse_dns_name(given_name) == expected


@pytest.mark.parametrize(("bad", "why"), [
    ("10.0.0.1", "is an IP address"),
    ("::1", "is an IP address"),
    ("a..b", "empty label"),
    ("-a.example", "may not start or end"),
    ("a_b.example", "letters, digits"),
    ("foo.*.example", "only as the whole left-most label"),
    ("f*o.example", "only as the whole left-most label"),
    ("*.com", "at least two labels"),
    ("x" * 64 + ".example", "1-63"),
    ("a." * 127 + "example", "longer than 253"),
    ("", "empty DNS name"),
])
def test_invalid_dns_names_say_what_is_wrong(bad: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_dns_name(bad)


def test_wildcard_refused_where_not_allowed() -> None:
    with pytest.raises(ConfigError, match="wildcard is not allowed"):
        parse_dns_name("*.example.com", allow_wildcard=False)


def test_ip_addresses_parse_both_families() -> None:
    assert parse_ip("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")
    with pytest.raises(ConfigError, match="invalid IP address"):
        parse_ip("localhost")
    with pytest.raises(ConfigError, match="invalid IP address"):
        parse_ip("300.1.1.1")


def test_networks_need_cidr_with_zero_host_bits() -> None:
    assert str(parse_ip_network("10.0.0.0/8")) == "10.0.0.0/8"
    with pytest.raises(ConfigError, match="CIDR"):
        parse_ip_network("10.0.0.1/8")


@pytest.mark.parametrize("uri", [
    "spiffe://example.org/ns/prod/sa/web", "spiffe://example.org", "https://svc.example/x",
    "urn://host.example/path",
])
def test_valid_uris(uri: str) -> None:
    assert parse_uri(uri) == uri


@pytest.mark.parametrize(("bad", "why"), [
    ("example.org/path", "needs a scheme"),
    ("spiffe:///path", "needs a host"),
    ("spiffe://Example.org/a", "trust domain"),
    ("spiffe://example.org/a//b", "path segments"),
    ("spiffe://example.org/a/../b", "path segments"),
    ("spiffe://example.org/a?q=1", "no port, user, query"),
    ("spiffe://example.org:8443/a", "no port, user, query"),
    ("SPIFFE://example.org/a", "lower-case"),
    ("spiffe://exa mple.org/a", "spaces"),
])
def test_invalid_uris_and_spiffe_ids(bad: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_uri(bad)


def test_sans_deduplicate_and_describe() -> None:
    sans = SubjectAltNames.parse(dns=["a.example", "A.example"], ips=["::1", "::1"],
                                 uris=["spiffe://x.org/a"])
    assert sans.describe() == ["DNS:a.example", "IP:::1", "URI:spiffe://x.org/a"]
    assert SubjectAltNames.from_dict(sans.as_dict()) == sans
    assert SubjectAltNames.from_extension(sans.to_extension()) == sans


def test_server_without_names_gets_its_name_as_dns() -> None:
    assert default_server_sans("web", SubjectAltNames()).dns == ("web",)
    kept = SubjectAltNames.parse(ips=["10.0.0.1"])
    assert default_server_sans("web", kept) is kept
    with pytest.raises(ConfigError, match="needs a DNS name or IP"):
        default_server_sans("user@corp", SubjectAltNames())


def test_hostname_like_common_names() -> None:
    assert looks_like_hostname("db.example.internal")
    assert not looks_like_hostname("alice")
    assert not looks_like_hostname("user@corp")


class TestNameConstraints:
    nc = NameConstraints.parse(dns=["example.internal"], ips=["10.0.0.0/8"],
                               uris=["spiffe://example.org"])

    def test_names_inside_pass(self) -> None:
        sans = SubjectAltNames.parse(dns=["example.internal", "a.b.example.internal",
                                          "*.example.internal"],
                                     ips=["10.1.2.3"], uris=["spiffe://example.org/svc"])
        assert self.nc.violations(sans) == []

    def test_each_type_outside_is_reported(self) -> None:
        sans = SubjectAltNames.parse(dns=["evil.com", "notexample.internal"], ips=["192.168.0.1"],
                                     uris=["spiffe://evil.org/x"])
        assert self.nc.violations(sans) == [
            "DNS:evil.com", "DNS:notexample.internal", "IP:192.168.0.1", "URI:spiffe://evil.org/x",
        ]

    def test_type_without_permitted_subtree_is_refused(self) -> None:
        only_dns = NameConstraints.parse(dns=["example.internal"])
        assert only_dns.violations(SubjectAltNames.parse(ips=["10.0.0.1"])) == ["IP:10.0.0.1"]

    def test_hostname_like_cn_is_checked_like_dns(self) -> None:
        assert self.nc.violations(SubjectAltNames(), common_name="db.evil.com") == ["DNS:db.evil.com"]
        assert self.nc.violations(SubjectAltNames(), common_name="alice") == []

    def test_leading_dot_means_subdomains_only(self) -> None:
        nc = NameConstraints.parse(dns=[".example.internal"])
        assert nc.violations(SubjectAltNames.parse(dns=["a.example.internal"])) == []
        assert nc.violations(SubjectAltNames.parse(dns=["example.internal"])) == [
            "DNS:example.internal"]

    def test_extension_roundtrip_and_ip_exclusion(self) -> None:
        assert NameConstraints.from_extension(self.nc.to_extension()) == self.nc
        dns_only = NameConstraints.parse(dns=["example.internal"]).to_extension()
        assert dns_only.excluded_subtrees is not None
        assert {str(n.value) for n in dns_only.excluded_subtrees} == {"0.0.0.0/0", "::/0"}

    def test_bad_permit_uri(self) -> None:
        with pytest.raises(ConfigError, match="scheme and host only"):
            NameConstraints.parse(uris=["spiffe://example.org/path"])


# -- properties ---------------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
dns_names = st.lists(_label, min_size=1, max_size=5).map(".".join).filter(
    lambda n: not n.replace(".", "").isdigit() and len(n) <= 253)


@given(dns_names)
def test_valid_dns_names_roundtrip(name: str) -> None:
    assert parse_dns_name(name) == name
    assert parse_dns_name(name.upper() + ".") == name


@given(st.text(max_size=80))
def test_dns_parser_never_crashes_and_output_is_valid(text: str) -> None:
    try:
        result = parse_dns_name(text)
    except ConfigError:
        return
    assert result == result.lower()
    assert all(0 < len(label) <= 63 for label in result.split("."))
    assert parse_dns_name(result) == result  # idempotent


@given(st.text(max_size=80))
def test_uri_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_uri(text)


@given(st.text(max_size=70))
def test_cert_names_never_escape_the_directory(text: str) -> None:
    try:
        name = validate_cert_name(text)
    except ConfigError:
        return
    assert "/" not in name and "\x00" not in name and not name.startswith(".")


@given(dns_names, dns_names)
def test_constraint_matching_is_suffix_based(base: str, prefix: str) -> None:
    nc = NameConstraints.parse(dns=[base])
    assert nc.violations(SubjectAltNames.parse(dns=[f"{prefix}.{base}"])) == []
    assert nc.violations(SubjectAltNames.parse(dns=[base])) == []
    outside = f"{prefix}x{base}" if not base.startswith(".") else prefix
    if outside != base and not outside.endswith("." + base):
        assert nc.violations(SubjectAltNames.parse(dns=[outside])) == [f"DNS:{outside}"]


@pytest.mark.parametrize("bad", ["example.com\nevil", "exa\x00mple.com", "exam ple.com"])
def test_dns_names_with_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_dns_name(bad)


@pytest.mark.parametrize("bad", ["spiffe://td/a\n", "spiffe://td\n/a", "spiffe://td/a\x00b"])
def test_uris_with_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_uri(bad)
