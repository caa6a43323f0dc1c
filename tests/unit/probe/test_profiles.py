"""Profiles: Mozilla 6.0 pinned, TOML overrides checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustwire.errors import ConfigError
from trustwire.probe.profiles import GUIDELINES_VERSION, PROFILES, load_profile
from trustwire.tls.context import INTERMEDIATE_CIPHERS


def test_mozilla_6_0_is_pinned() -> None:
    assert GUIDELINES_VERSION == "6.0"
    intermediate = PROFILES["intermediate"]
    assert intermediate.tls_versions == ("TLSv1.2", "TLSv1.3")
    assert not any("DHE-RSA" in c and not c.startswith("ECDHE") for c in intermediate.ciphers)
    assert intermediate.maximum_certificate_lifespan == 366
    assert PROFILES["modern"].tls_versions == ("TLSv1.3",)
    assert PROFILES["modern"].certificate_types == ("ecdsa",)
    # guidelines/6.0.json: dh_param_size 2048 (intermediate), null (modern); ecdh_param_size 256
    assert (intermediate.dh_param_size, intermediate.ecdh_param_size) == (2048, 256)
    assert (PROFILES["modern"].dh_param_size, PROFILES["modern"].ecdh_param_size) == (None, 256)
    # trustwire's own servers use exactly the profile's TLS 1.2 suites
    assert tuple(INTERMEDIATE_CIPHERS.split(":")) == intermediate.ciphers


def test_toml_profile_overrides_a_base(tmp_path: Path) -> None:
    path = tmp_path / "corp.toml"
    path.write_text('name = "corp"\nbase = "modern"\nmaximum_certificate_lifespan = 30\n'
                    'require_client_auth = true\nocsp_staple = false\n')
    profile = load_profile(str(path))
    assert profile.name == "corp" and profile.tls_versions == ("TLSv1.3",)
    assert profile.maximum_certificate_lifespan == 30 and profile.require_client_auth
    assert "based on Mozilla 6.0 modern" in profile.source
    path.write_text("dh_param_size = 3072\necdh_param_size = 384\n")
    sized = load_profile(str(path))
    assert (sized.dh_param_size, sized.ecdh_param_size) == (3072, 384)


@pytest.mark.parametrize(("text", "message"), [
    ('base = "old"\n', "base must be modern or intermediate"),
    ("tls_version = []\n", "unknown key"),
    ('tls_versions = "TLSv1.3"\n', "must be a list of strings"),
    ('maximum_certificate_lifespan = "90"\n', "must be a int"),
    ("ocsp_staple = 1\n", "must be a bool"),
    ('dh_param_size = "2048"\n', "dh_param_size must be a number of bits"),
    ("ecdh_param_size = true\n", "ecdh_param_size must be a number of bits"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_profiles(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_profile(str(path))


def test_unknown_profile_name() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'old'"):
        load_profile("old")
