"""The audit action's validation: kinds known and named once, budgets within bounds, defaults."""

from typing import Any

import pytest
from google.protobuf import json_format

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.sessions.validation import validate_command
from farm_scheduler.validation import validate_spec

ALL_KINDS = [
    "AUDIT_KIND_ACCESSIBILITY",
    "AUDIT_KIND_PERFORMANCE",
    "AUDIT_KIND_SEO",
    "AUDIT_KIND_BEST_PRACTICES",
]
DEFAULT_BUDGET = {"ttfbMs": 800, "fcpMs": 1800, "lcpMs": 2500, "cls": 0.1, "loadMs": 3000}


def audit(**options: Any) -> tasks_pb2.TaskSpec:
    """A spec of example.com whose action is an audit with `options` (in JSON form)."""
    return json_format.ParseDict(
        {"url": "https://example.com/", "audit": options}, tasks_pb2.TaskSpec()
    )


def validate(spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    return validate_spec(spec, max_attempts_cap=10, default_timeout_ms=30000)


def stored_audit(spec: tasks_pb2.TaskSpec) -> dict[str, Any]:
    return dict(json_format.MessageToDict(validate(spec).audit))


def with_kind_number(number: int) -> tasks_pb2.TaskSpec:
    spec = audit(kinds=["AUDIT_KIND_SEO"])
    spec.audit.kinds.append(number)  # type: ignore[arg-type]
    return spec


INVALID: list[tuple[str, tasks_pb2.TaskSpec, str, str]] = [
    (
        "unspecified kind",
        audit(kinds=["AUDIT_KIND_UNSPECIFIED"]),
        "audit.kinds[0]",
        "must be one of",
    ),
    ("unknown kind number", with_kind_number(9), "audit.kinds[1]", "got 9"),
    (
        "kind named twice",
        audit(kinds=["AUDIT_KIND_SEO", "AUDIT_KIND_PERFORMANCE", "AUDIT_KIND_SEO"]),
        "audit.kinds[2]",
        "AUDIT_KIND_SEO is named twice",
    ),
    (
        "budget without performance",
        audit(kinds=["AUDIT_KIND_SEO"], budget={"lcpMs": 1000}),
        "audit.budget",
        "only allowed with AUDIT_KIND_PERFORMANCE",
    ),
    ("negative ttfb", audit(budget={"ttfbMs": -1}), "audit.budget.ttfbMs", "got -1"),
    ("fcp above the most", audit(budget={"fcpMs": 300001}), "audit.budget.fcpMs", "300000"),
    ("negative lcp", audit(budget={"lcpMs": -5}), "audit.budget.lcpMs", "got -5"),
    ("load above the most", audit(budget={"loadMs": 10**6}), "audit.budget.loadMs", "300000"),
    ("negative cls", audit(budget={"cls": -0.1}), "audit.budget.cls", "got -0.1"),
    ("cls above the most", audit(budget={"cls": 10.5}), "audit.budget.cls", "at most 10"),
    ("cls not a number", audit(budget={"cls": "NaN"}), "audit.budget.cls", "got nan"),
]


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [(spec, field, problem) for _, spec, field, problem in INVALID],
    ids=[name for name, *_ in INVALID],
)
def test_a_bad_audit_is_refused_naming_its_field(
    spec: tasks_pb2.TaskSpec, field: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(spec)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")
    assert problem in caught.value.message


def test_an_audit_without_kinds_is_stored_with_all_four_and_the_default_budget() -> None:
    assert stored_audit(audit()) == {"kinds": ALL_KINDS, "budget": DEFAULT_BUDGET}


def test_given_kinds_keep_their_order_and_only_performance_gets_a_budget() -> None:
    assert stored_audit(audit(kinds=["AUDIT_KIND_SEO", "AUDIT_KIND_ACCESSIBILITY"])) == {
        "kinds": ["AUDIT_KIND_SEO", "AUDIT_KIND_ACCESSIBILITY"]
    }


def test_budget_fields_given_are_kept_and_zero_ones_take_the_defaults() -> None:
    stored = stored_audit(
        audit(kinds=["AUDIT_KIND_PERFORMANCE"], budget={"lcpMs": 300000, "cls": 10})
    )
    assert stored["budget"] == {**DEFAULT_BUDGET, "lcpMs": 300000, "cls": 10}


def test_an_audit_is_one_action_and_cannot_come_with_another() -> None:
    spec = audit()
    spec.screenshot.SetInParent()
    with pytest.raises(InvalidArgument) as caught:
        validate(spec)
    assert caught.value.field == "spec"
    assert "screenshot, audit" in caught.value.message


def test_a_session_command_audit_is_checked_and_filled_in_like_a_tasks() -> None:
    command = sessions_pb2.SessionCommand(audit=tasks_pb2.AuditOptions())
    checked = validate_command(command, default_timeout_ms=30000)
    assert json_format.MessageToDict(checked.audit) == {
        "kinds": ALL_KINDS,
        "budget": DEFAULT_BUDGET,
    }
    command.audit.kinds.extend([tasks_pb2.AUDIT_KIND_SEO, tasks_pb2.AUDIT_KIND_SEO])
    with pytest.raises(InvalidArgument) as caught:
        validate_command(command, default_timeout_ms=30000)
    assert caught.value.field == "audit.kinds[1]"
