"""The probe's verdict vocabulary: a :class:`Check` per finding, and the overall :class:`Verdict`.

Pure values, imported by every judging module (:mod:`trustwire.probe.checks` and one module
per family of checks), so none of them needs another to say what it found.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Check", "Findings", "Status", "Verdict", "verdict"]


class Status(enum.Enum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"
    INFO = "info"
    SKIP = "skip"


@dataclass(frozen=True, kw_only=True)
class Check:
    id: str
    section: str
    title: str
    status: Status
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"id": self.id, "section": self.section, "title": self.title,
                "status": self.status.value, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    failures: int
    warnings: int


class Findings:
    """Collects the checks of one section in report order."""

    def __init__(self, section: str) -> None:
        self.section = section
        self.checks: list[Check] = []

    def add(self, id_: str, title: str, status: Status, detail: str,
            fix: str | None = None) -> None:
        self.checks.append(Check(id=id_, section=self.section, title=title, status=status,
                                 detail=detail, fix=fix))


def verdict(checks: list[Check]) -> Verdict:
    failures = sum(1 for c in checks if c.status is Status.FAIL)
    warnings = sum(1 for c in checks if c.status is Status.WARN)
    return Verdict(passed=failures == 0, failures=failures, warnings=warnings)
