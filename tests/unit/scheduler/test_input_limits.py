"""Every TaskSpec size limit, hit exactly: at the bound passes, one over is refused by name."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler import validation
from farm_scheduler.validation import validate_spec

ROOT = Path(__file__).resolve().parents[3]
CAP = 10


def spec(**fields: Any) -> tasks_pb2.TaskSpec:
    """A TaskSpec from its JSON form; a screenshot of example.com unless told otherwise."""
    body: dict[str, Any] = {"url": "https://example.com/", "screenshot": {}}
    body.update(fields)
    return json_format.ParseDict(
        {k: v for k, v in body.items() if v is not None}, tasks_pb2.TaskSpec()
    )


def url_of(length: int) -> tasks_pb2.TaskSpec:
    prefix = "https://example.com/"
    return spec(url=prefix + "a" * (length - len(prefix)))


@dataclass(frozen=True)
class Limit:
    """One bound: the field it names, its value, a spec whose field has size n, and how
    to read that size back from a spec."""

    field: str
    bound: int
    build: Callable[[int], tasks_pb2.TaskSpec]
    size: Callable[[tasks_pb2.TaskSpec], int]


def extract(**fields: str) -> tasks_pb2.TaskSpec:
    return spec(screenshot=None, extract={"fields": fields})


LIMITS: dict[str, Limit] = {
    "url length": Limit("url", validation.MAX_URL_CHARS, url_of, lambda s: len(s.url)),
    "steps": Limit(
        "steps",
        validation.MAX_STEPS,
        lambda n: spec(steps=[{"click": "#a"}] * n),
        lambda s: len(s.steps),
    ),
    "click selector": Limit(
        "steps[3].click",
        validation.MAX_SELECTOR_CHARS,
        lambda n: spec(steps=[{"click": "#a"}] * 3 + [{"click": "a" * n}]),
        lambda s: len(s.steps[3].click),
    ),
    "waitFor selector": Limit(
        "steps[0].waitFor",
        validation.MAX_SELECTOR_CHARS,
        lambda n: spec(steps=[{"waitFor": "a" * n}]),
        lambda s: len(s.steps[0].wait_for),
    ),
    "scroll selector": Limit(
        "steps[0].scroll",
        validation.MAX_SELECTOR_CHARS,
        lambda n: spec(steps=[{"scroll": "a" * n}]),
        lambda s: len(s.steps[0].scroll),
    ),
    "fill selector": Limit(
        "steps[0].fill.selector",
        validation.MAX_SELECTOR_CHARS,
        lambda n: spec(steps=[{"fill": {"selector": "a" * n, "value": "x"}}]),
        lambda s: len(s.steps[0].fill.selector),
    ),
    "fill value": Limit(
        "steps[0].fill.value",
        validation.MAX_FILL_VALUE_CHARS,
        lambda n: spec(steps=[{"fill": {"selector": "#q", "value": "x" * n}}]),
        lambda s: len(s.steps[0].fill.value),
    ),
    "press key": Limit(
        "steps[0].press",
        validation.MAX_KEY_NAME_CHARS,
        lambda n: spec(steps=[{"press": "K" * n}]),
        lambda s: len(s.steps[0].press),
    ),
    "screenshot selector": Limit(
        "screenshot.selector",
        validation.MAX_SELECTOR_CHARS,
        lambda n: spec(screenshot={"selector": "a" * n}),
        lambda s: len(s.screenshot.selector),
    ),
    "script size": Limit(
        "script.source",
        validation.MAX_SCRIPT_CHARS,
        lambda n: spec(screenshot=None, script={"source": "x" * n}),
        lambda s: len(s.script.source),
    ),
    "extract fields": Limit(
        "extract.fields",
        validation.MAX_EXTRACT_FIELDS,
        lambda n: extract(**{f"f{i}": "h1" for i in range(n)}),
        lambda s: len(s.extract.fields),
    ),
    "extract field name": Limit(
        "extract.fields",
        validation.MAX_EXTRACT_NAME_CHARS,
        lambda n: extract(**{"f" * n: "h1"}),
        lambda s: len(next(iter(s.extract.fields))),
    ),
    "extract selector": Limit(
        "extract.fields.title",
        validation.MAX_SELECTOR_CHARS,
        lambda n: extract(title="a" * n),
        lambda s: len(s.extract.fields["title"]),
    ),
    "viewport width": Limit(
        "viewport.width",
        validation.MAX_VIEWPORT_PIXELS,
        lambda n: spec(viewport={"width": n, "height": 1}),
        lambda s: s.viewport.width,
    ),
    "viewport height": Limit(
        "viewport.height",
        validation.MAX_VIEWPORT_PIXELS,
        lambda n: spec(viewport={"width": 1, "height": n}),
        lambda s: s.viewport.height,
    ),
    "device name": Limit(
        "device",
        validation.MAX_DEVICE_CHARS,
        lambda n: spec(device="d" * n),
        lambda s: len(s.device),
    ),
    "timeout": Limit(
        "timeoutMs",
        validation.MAX_TIMEOUT_MS,
        lambda n: spec(timeoutMs=n),
        lambda s: s.timeout_ms,
    ),
    "labels count": Limit(
        "labels",
        validation.MAX_LABELS,
        lambda n: spec(labels={f"k{i}": "v" for i in range(n)}),
        lambda s: len(s.labels),
    ),
    "label key": Limit(
        "labels",
        validation.MAX_LABEL_KEY_CHARS,
        lambda n: spec(labels={"k" * n: "v"}),
        lambda s: len(next(iter(s.labels))),
    ),
    "label value": Limit(
        "labels",
        validation.MAX_LABEL_VALUE_CHARS,
        lambda n: spec(labels={"job": "v" * n}),
        lambda s: len(s.labels["job"]),
    ),
    "idempotency key": Limit(
        "idempotencyKey",
        validation.MAX_IDEMPOTENCY_KEY_CHARS,
        lambda n: spec(idempotencyKey="k" * n),
        lambda s: len(s.idempotency_key),
    ),
    "region": Limit(
        "region",
        validation.MAX_REGION_CHARS,
        lambda n: spec(region="r" * n),
        lambda s: len(s.region),
    ),
    "attempts": Limit("maxAttempts", CAP, lambda n: spec(maxAttempts=n), lambda s: s.max_attempts),
    "audit budget": Limit(
        "audit.budget.lcpMs",
        validation.MAX_AUDIT_BUDGET_MS,
        lambda n: spec(screenshot=None, audit={"budget": {"lcpMs": n}}),
        lambda s: s.audit.budget.lcp_ms,
    ),
    "audit budget cls": Limit(
        "audit.budget.cls",
        validation.MAX_AUDIT_BUDGET_CLS,
        lambda n: spec(screenshot=None, audit={"budget": {"cls": n}}),
        lambda s: int(s.audit.budget.cls),
    ),
}


def validate(task_spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    return validate_spec(task_spec, max_attempts_cap=CAP, default_timeout_ms=30000)


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_a_value_at_the_limit_is_kept_at_its_full_size(limit: Limit) -> None:
    assert limit.size(validate(limit.build(limit.bound))) == limit.bound


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_one_over_the_limit_is_refused_naming_the_field_and_the_bound(limit: Limit) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(limit.build(limit.bound + 1))
    assert caught.value.field == limit.field
    assert caught.value.message.startswith(f"{limit.field}: ")
    assert str(limit.bound) in caught.value.message


LOWER_BOUNDS: dict[str, Limit] = {
    "timeout": Limit(
        "timeoutMs",
        validation.MIN_TIMEOUT_MS,
        lambda n: spec(timeoutMs=n),
        lambda s: s.timeout_ms,
    ),
    "viewport width": Limit(
        "viewport.width",
        1,
        lambda n: spec(viewport={"width": n, "height": 1}),
        lambda s: s.viewport.width,
    ),
    "viewport height": Limit(
        "viewport.height",
        1,
        lambda n: spec(viewport={"width": 1, "height": n}),
        lambda s: s.viewport.height,
    ),
}


@pytest.mark.parametrize("limit", LOWER_BOUNDS.values(), ids=LOWER_BOUNDS.keys())
def test_lower_bounds_are_kept_and_one_under_is_refused(limit: Limit) -> None:
    assert limit.size(validate(limit.build(limit.bound))) == limit.bound
    with pytest.raises(InvalidArgument) as caught:
        validate(limit.build(limit.bound - 1))
    assert caught.value.field == limit.field


def documented_limits() -> dict[str, int]:
    """The limits table of docs/api.md: the constant's name in backticks, then its value."""
    text = (ROOT / "docs" / "api.md").read_text()
    rows = re.findall(r"^\| .*?`(MAX_\w+|MIN_\w+)` \| ([\d ,]+) \|", text, flags=re.MULTILINE)
    return {name: int(value.replace(",", "").replace(" ", "")) for name, value in rows}


def test_docs_list_every_limit_with_its_value() -> None:
    constants = {
        name: value
        for name, value in vars(validation).items()
        if re.fullmatch(r"(MAX|MIN)_[A-Z_]+", name) and isinstance(value, int)
    }
    assert documented_limits() == constants
