"""What every audit reports in: checks that passed or failed, findings worst first, scores."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from farm.tasks.v1 import tasks_pb2

Impact = Literal["critical", "serious", "moderate", "minor"]

IMPACT_WEIGHTS: dict[Impact, int] = {"critical": 10, "serious": 7, "moderate": 3, "minor": 1}
"""How much a check of each impact weighs in a weighted score (accessibility, SEO)."""

MAX_TARGETS = 20
"""Targets kept per finding; the first ones in page order."""

MAX_TARGET_CHARS = 300
"""Characters kept of one target (a selector, a console message)."""


@dataclass(frozen=True)
class Check:
    """One check as it came out: its id and impact, and when it failed, what and where."""

    id: str
    impact: Impact
    failed: bool = False
    title: str = ""
    hint: str = ""
    targets: tuple[str, ...] = ()
    penalty: int = 0
    """Points off a score that starts at 100 (best practices)."""


def passed(check_id: str, impact: Impact = "moderate") -> Check:
    """A check that passed."""
    return Check(check_id, impact)


def failed(
    check_id: str,
    impact: Impact,
    title: str,
    hint: str,
    targets: Iterable[str] = (),
    penalty: int = 0,
) -> Check:
    """A check that failed, with what it wants (`title`), how to fix it and where."""
    return Check(check_id, impact, True, title, hint, tuple(_cut_targets(targets)), penalty=penalty)


def _cut_targets(targets: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for target in targets:
        cut = target[:MAX_TARGET_CHARS]
        if cut not in kept:
            kept.append(cut)
        if len(kept) == MAX_TARGETS:
            break
    return kept


def impact_of(value: str | None) -> Impact:
    """`value` as an Impact; "moderate" when it is none of the four."""
    for impact in IMPACT_WEIGHTS:
        if value == impact:
            return impact
    return "moderate"


def weighted_score(checks: Sequence[Check]) -> int:
    """The share of the checks' weight (by impact) that passed, 0 to 100; 100 with no checks."""
    total = sum(IMPACT_WEIGHTS[check.impact] for check in checks)
    if total == 0:
        return 100
    kept = sum(IMPACT_WEIGHTS[check.impact] for check in checks if not check.failed)
    return round(100 * kept / total)


def penalty_score(checks: Sequence[Check]) -> int:
    """100 less every failed check's penalty, at least 0 (as Mozilla's HTTP Observatory)."""
    return max(0, 100 - sum(check.penalty for check in checks if check.failed))


def audit_result(
    kind: "tasks_pb2.AuditKind.ValueType", checks: Sequence[Check], score: int
) -> tasks_pb2.AuditResult:
    """The AuditResult of `checks`: failed ones worst first (by impact, then penalty)."""
    failures = sorted(
        (check for check in checks if check.failed),
        key=lambda check: (-IMPACT_WEIGHTS[check.impact], -check.penalty),
    )
    return tasks_pb2.AuditResult(
        kind=kind,
        score=score,
        passed=sum(1 for check in checks if not check.failed),
        findings=[
            tasks_pb2.AuditFinding(
                id=check.id,
                title=check.title,
                impact=check.impact,
                hint=check.hint,
                targets=check.targets,
            )
            for check in failures
        ],
    )
