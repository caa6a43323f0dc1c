"""Known attacks as consequences of the enumeration: pure, on synthetic observations."""

from __future__ import annotations

from tests.unit.probe.test_checks import INTERMEDIATE, NOW, good
from trustwire.probe.checks import evaluate, verdict
from trustwire.probe.consequences import consequences
from trustwire.probe.findings import Status
from trustwire.probe.observations import Support
from trustwire.probe.report import to_json, to_junit, to_sarif


def suite(name: str, symmetric: str, kea: str = "kx-rsa") -> dict[str, object]:
    return {"name": name, "kea": kea, "auth": "auth-rsa", "symmetric": symmetric, "aead": False,
            "digest": "sha1"}


def by_name(obs: object) -> dict[str, bool | None]:
    return {c.name: c.vulnerable for c in consequences(obs)}  # type: ignore[arg-type]


def test_a_modern_server_is_clear_of_every_attack_it_could_be_tested_for() -> None:
    obs = good()
    obs.versions["SSLv2"] = Support(False)
    obs.versions["SSLv3"] = Support(False)
    assert by_name(obs) == {"poodle": False, "beast": False, "sweet32": False, "lucky13": False,
                            "freak": False, "logjam": False, "drown": False, "rc4": False}


def test_untestable_inputs_are_not_tested_never_safe() -> None:
    obs = good()  # SSLv3 "built without": not tested; SSLv2 never looked at
    obs.untested.append(("RC4, EXPORT cipher suites", "the local OpenSSL cannot offer them"))
    found = by_name(obs)
    assert found["poodle"] is None and found["drown"] is None
    assert found["rc4"] is None and found["freak"] is None
    checks = {c.id: c for c in evaluate(obs, INTERMEDIATE, now=NOW)}
    assert checks["vuln.poodle"].status is Status.SKIP and "not tested" in checks["vuln.poodle"].detail


def test_each_attack_from_what_was_enumerated() -> None:
    obs = good()
    obs.versions.update(SSLv2=Support(True), SSLv3=Support(True), TLSv1=Support(True))
    obs.ciphers["SSLv3"] = [suite("DES-CBC3-SHA", "des-ede3-cbc")]
    obs.ciphers["TLSv1"] = [suite("AES128-SHA", "aes-128-cbc"), suite("RC4-SHA", "rc4"),
                            suite("EXP-RC4-MD5", "rc4"), suite("EXP-EDH-RSA-DES-CBC-SHA", "des-cbc",
                                                                 "kx-dhe")]
    obs.dh_param_size = 1024
    assert {k for k, v in by_name(obs).items() if v} == {
        "poodle", "beast", "sweet32", "lucky13", "freak", "logjam", "drown", "rc4"}
    checks = evaluate(obs, INTERMEDIATE, now=NOW)
    statuses = {c.id: c.status for c in checks}
    assert statuses["vuln.beast"] is Status.WARN and statuses["vuln.lucky13"] is Status.WARN
    assert statuses["vuln.poodle"] is Status.FAIL and statuses["vuln.drown"] is Status.FAIL
    report = to_json(obs, INTERMEDIATE, checks, verdict(checks))
    assert report["known_attacks"]["logjam"] == {"vulnerable": True,
                                                 "because": "DH EXPORT suites accepted: "
                                                            "EXP-EDH-RSA-DES-CBC-SHA"}
    sarif = to_sarif(obs, INTERMEDIATE, checks)["runs"][0]["results"]
    assert {r["ruleId"] for r in sarif} >= {"vuln.poodle", "vuln.drown", "vuln.beast"}
    junit = to_junit(obs, INTERMEDIATE, checks).decode()
    assert 'type="vuln.freak"' in junit


def test_a_version_or_suites_that_got_no_answer_are_not_tested_never_safe() -> None:
    obs = good()
    obs.versions["SSLv3"] = Support(False)
    obs.versions["TLSv1"] = Support(None, "no answer within 5s")
    found = by_name(obs)
    assert found["beast"] is None and found["sweet32"] is None and found["rc4"] is None
    assert found["lucky13"] is None and found["freak"] is None
    checks = {c.id: c for c in evaluate(obs, INTERMEDIATE, now=NOW)}
    assert checks["vuln.beast"].status is Status.SKIP
    assert "TLS 1.0 could not be tested (no answer within 5s)" in checks["vuln.beast"].detail
    obs = good()
    obs.untested_suites["TLSv1.2"] = "40 of 155 suites got no answer: no answer within 5s"
    found = by_name(obs)
    assert found["beast"] is False  # TLS 1.0 is known refused: BEAST does not depend on 1.2
    assert found["sweet32"] is None and found["rc4"] is None and found["lucky13"] is None
    checks = {c.id: c for c in evaluate(obs, INTERMEDIATE, now=NOW)}
    assert checks["ciphers.tlsv1_2"].status is Status.SKIP
    assert checks["ciphers.forward_secrecy"].status is Status.SKIP
