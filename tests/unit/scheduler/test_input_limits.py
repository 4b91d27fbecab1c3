"""Every TaskSpec size limit, hit exactly: at the bound passes, one over is refused by name."""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler import action_checks, field_checks, page_setup, step_checks, validation
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import CAP, validate

ROOT = Path(__file__).resolve().parents[3]


def url_of(length: int) -> tasks_pb2.TaskSpec:
    prefix = "https://example.com/"
    return task_spec(url=prefix + "a" * (length - len(prefix)))


@dataclass(frozen=True)
class Limit:
    """One bound: the field it names, its value, a spec whose field has size n, and how
    to read that size back from a spec."""

    field: str
    bound: int
    build: Callable[[int], tasks_pb2.TaskSpec]
    size: Callable[[tasks_pb2.TaskSpec], int]


def key_of(length: int) -> str:
    """A key Playwright presses, `length` characters long: a+a+…+a, or …+F1 when even."""
    return "a+" * ((length - 1) // 2) + ("a" if length % 2 else "F1")


def extract(**fields: str) -> tasks_pb2.TaskSpec:
    return task_spec(screenshot=None, extract={"fields": fields})


def setup(**fields: Any) -> tasks_pb2.TaskSpec:
    return task_spec(setup=fields)


def cookie(**fields: Any) -> tasks_pb2.TaskSpec:
    return setup(cookies=[{"name": "a", "value": "b", "domain": "example.com", **fields}])


LIMITS: dict[str, Limit] = {
    "url length": Limit("url", field_checks.MAX_URL_CHARS, url_of, lambda s: len(s.url)),
    "steps": Limit(
        "steps",
        step_checks.MAX_STEPS,
        lambda n: task_spec(steps=[{"click": "#a"}] * n),
        lambda s: len(s.steps),
    ),
    "click selector": Limit(
        "steps[3].click",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: task_spec(steps=[{"click": "#a"}] * 3 + [{"click": "a" * n}]),
        lambda s: len(s.steps[3].click),
    ),
    "waitFor selector": Limit(
        "steps[0].waitFor",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: task_spec(steps=[{"waitFor": "a" * n}]),
        lambda s: len(s.steps[0].wait_for),
    ),
    "scroll selector": Limit(
        "steps[0].scroll",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: task_spec(steps=[{"scroll": "a" * n}]),
        lambda s: len(s.steps[0].scroll),
    ),
    "fill selector": Limit(
        "steps[0].fill.selector",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: task_spec(steps=[{"fill": {"selector": "a" * n, "value": "x"}}]),
        lambda s: len(s.steps[0].fill.selector),
    ),
    "fill value": Limit(
        "steps[0].fill.value",
        step_checks.MAX_FILL_VALUE_CHARS,
        lambda n: task_spec(steps=[{"fill": {"selector": "#q", "value": "x" * n}}]),
        lambda s: len(s.steps[0].fill.value),
    ),
    "press key": Limit(
        "steps[0].press",
        step_checks.MAX_KEY_NAME_CHARS,
        lambda n: task_spec(steps=[{"press": key_of(n)}]),
        lambda s: len(s.steps[0].press),
    ),
    "hover selector": Limit(
        "steps[0].hover",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: task_spec(steps=[{"hover": "a" * n}]),
        lambda s: len(s.steps[0].hover),
    ),
    "select value": Limit(
        "steps[0].select.value",
        step_checks.MAX_OPTION_CHARS,
        lambda n: task_spec(steps=[{"select": {"selector": "#s", "value": "v" * n}}]),
        lambda s: len(s.steps[0].select.value),
    ),
    "select label": Limit(
        "steps[0].select.label",
        step_checks.MAX_OPTION_CHARS,
        lambda n: task_spec(steps=[{"select": {"selector": "#s", "label": "l" * n}}]),
        lambda s: len(s.steps[0].select.label),
    ),
    "goto url": Limit(
        "steps[0].goto",
        field_checks.MAX_URL_CHARS,
        lambda n: task_spec(steps=[{"goto": url_of(n).url}]),
        lambda s: len(s.steps[0].goto),
    ),
    "wait text": Limit(
        "steps[0].wait.text",
        step_checks.MAX_WAIT_TEXT_CHARS,
        lambda n: task_spec(steps=[{"wait": {"text": "t" * n}}]),
        lambda s: len(s.steps[0].wait.text),
    ),
    "evaluate size": Limit(
        "steps[0].evaluate",
        field_checks.MAX_SCRIPT_CHARS,
        lambda n: task_spec(steps=[{"evaluate": "x" * n}]),
        lambda s: len(s.steps[0].evaluate),
    ),
    "user agent": Limit(
        "setup.userAgent",
        page_setup.MAX_USER_AGENT_CHARS,
        lambda n: setup(userAgent="u" * n),
        lambda s: len(s.setup.user_agent),
    ),
    "headers count": Limit(
        "setup.extraHeaders",
        page_setup.MAX_HEADERS,
        lambda n: setup(extraHeaders={f"x-h{i}": "v" for i in range(n)}),
        lambda s: len(s.setup.extra_headers),
    ),
    "header name": Limit(
        "setup.extraHeaders",
        page_setup.MAX_HEADER_NAME_CHARS,
        lambda n: setup(extraHeaders={"x" * n: "v"}),
        lambda s: len(next(iter(s.setup.extra_headers))),
    ),
    "header value": Limit(
        "setup.extraHeaders.x-a",
        page_setup.MAX_HEADER_VALUE_CHARS,
        lambda n: setup(extraHeaders={"x-a": "v" * n}),
        lambda s: len(s.setup.extra_headers["x-a"]),
    ),
    "cookies count": Limit(
        "setup.cookies",
        page_setup.MAX_COOKIES,
        lambda n: setup(cookies=[{"name": f"c{i}", "url": "https://a.com/"} for i in range(n)]),
        lambda s: len(s.setup.cookies),
    ),
    "cookie name": Limit(
        "setup.cookies[0].name",
        page_setup.MAX_COOKIE_NAME_CHARS,
        lambda n: cookie(name="n" * n),
        lambda s: len(s.setup.cookies[0].name),
    ),
    "cookie value": Limit(
        "setup.cookies[0].value",
        page_setup.MAX_COOKIE_VALUE_CHARS,
        lambda n: cookie(value="v" * n),
        lambda s: len(s.setup.cookies[0].value),
    ),
    "cookie domain": Limit(
        "setup.cookies[0].domain",
        page_setup.MAX_COOKIE_DOMAIN_CHARS,
        lambda n: cookie(domain="d" * n),
        lambda s: len(s.setup.cookies[0].domain),
    ),
    "cookie path": Limit(
        "setup.cookies[0].path",
        page_setup.MAX_COOKIE_PATH_CHARS,
        lambda n: cookie(path="/" + "p" * (n - 1)),
        lambda s: len(s.setup.cookies[0].path),
    ),
    "cookie url": Limit(
        "setup.cookies[0].url",
        page_setup.MAX_COOKIE_URL_CHARS,
        lambda n: setup(cookies=[{"name": "a", "url": url_of(n).url}]),
        lambda s: len(s.setup.cookies[0].url),
    ),
    "device scale factor": Limit(
        "setup.deviceScaleFactor",
        page_setup.MAX_DEVICE_SCALE_FACTOR,
        lambda n: setup(deviceScaleFactor=n),
        lambda s: int(s.setup.device_scale_factor),
    ),
    "screenshot selector": Limit(
        "screenshot.selector",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: task_spec(screenshot={"selector": "a" * n}),
        lambda s: len(s.screenshot.selector),
    ),
    "script size": Limit(
        "script.source",
        field_checks.MAX_SCRIPT_CHARS,
        lambda n: task_spec(screenshot=None, script={"source": "x" * n}),
        lambda s: len(s.script.source),
    ),
    "extract fields": Limit(
        "extract.fields",
        action_checks.MAX_EXTRACT_FIELDS,
        lambda n: extract(**{f"f{i}": "h1" for i in range(n)}),
        lambda s: len(s.extract.fields),
    ),
    "extract field name": Limit(
        "extract.fields",
        action_checks.MAX_EXTRACT_NAME_CHARS,
        lambda n: extract(**{"f" * n: "h1"}),
        lambda s: len(next(iter(s.extract.fields))),
    ),
    "extract selector": Limit(
        "extract.fields.title",
        field_checks.MAX_SELECTOR_CHARS,
        lambda n: extract(title="a" * n),
        lambda s: len(s.extract.fields["title"]),
    ),
    "viewport width": Limit(
        "viewport.width",
        validation.MAX_VIEWPORT_PIXELS,
        lambda n: task_spec(viewport={"width": n, "height": 1}),
        lambda s: s.viewport.width,
    ),
    "viewport height": Limit(
        "viewport.height",
        validation.MAX_VIEWPORT_PIXELS,
        lambda n: task_spec(viewport={"width": 1, "height": n}),
        lambda s: s.viewport.height,
    ),
    "timeout": Limit(
        "timeoutMs",
        field_checks.MAX_TIMEOUT_MS,
        lambda n: task_spec(timeoutMs=n),
        lambda s: s.timeout_ms,
    ),
    "labels count": Limit(
        "labels",
        validation.MAX_LABELS,
        lambda n: task_spec(labels={f"k{i}": "v" for i in range(n)}),
        lambda s: len(s.labels),
    ),
    "label key": Limit(
        "labels",
        validation.MAX_LABEL_KEY_CHARS,
        lambda n: task_spec(labels={"k" * n: "v"}),
        lambda s: len(next(iter(s.labels))),
    ),
    "label value": Limit(
        "labels",
        validation.MAX_LABEL_VALUE_CHARS,
        lambda n: task_spec(labels={"job": "v" * n}),
        lambda s: len(s.labels["job"]),
    ),
    "idempotency key": Limit(
        "idempotencyKey",
        validation.MAX_IDEMPOTENCY_KEY_CHARS,
        lambda n: task_spec(idempotencyKey="k" * n),
        lambda s: len(s.idempotency_key),
    ),
    "region": Limit(
        "region",
        validation.MAX_REGION_CHARS,
        lambda n: task_spec(region="r" * n),
        lambda s: len(s.region),
    ),
    "cache ttl": Limit(
        "cacheTtlSeconds",
        field_checks.MAX_CACHE_TTL_SECONDS,
        lambda n: task_spec(cacheTtlSeconds=n),
        lambda s: s.cache_ttl_seconds,
    ),
    "attempts": Limit(
        "maxAttempts", CAP, lambda n: task_spec(maxAttempts=n), lambda s: s.max_attempts
    ),
    "audit budget": Limit(
        "audit.budget.lcpMs",
        action_checks.MAX_AUDIT_BUDGET_MS,
        lambda n: task_spec(screenshot=None, audit={"budget": {"lcpMs": n}}),
        lambda s: s.audit.budget.lcp_ms,
    ),
    "audit budget cls": Limit(
        "audit.budget.cls",
        action_checks.MAX_AUDIT_BUDGET_CLS,
        lambda n: task_spec(screenshot=None, audit={"budget": {"cls": n}}),
        lambda s: int(s.audit.budget.cls),
    ),
}


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
    "timeout": replace(LIMITS["timeout"], bound=field_checks.MIN_TIMEOUT_MS),
    "viewport width": replace(LIMITS["viewport width"], bound=1),
    "viewport height": replace(LIMITS["viewport height"], bound=1),
}


@pytest.mark.parametrize("limit", LOWER_BOUNDS.values(), ids=LOWER_BOUNDS.keys())
def test_lower_bounds_are_kept_and_one_under_is_refused(limit: Limit) -> None:
    assert limit.size(validate(limit.build(limit.bound))) == limit.bound
    with pytest.raises(InvalidArgument) as caught:
        validate(limit.build(limit.bound - 1))
    assert caught.value.field == limit.field


def documented_limits() -> dict[str, int]:
    """The table of docs/api.md "Input limits": the constant's name in backticks, then its value."""
    text = (ROOT / "docs" / "api.md").read_text().split("\n## Input limits\n", 1)[1]
    text = text.split("\n## ", 1)[0]
    rows = re.findall(r"^\| .*?`(MAX_\w+|MIN_\w+)` \| ([\d ,]+) \|", text, flags=re.MULTILINE)
    return {name: int(value.replace(",", "").replace(" ", "")) for name, value in rows}


def test_docs_list_every_limit_with_its_value() -> None:
    constants = {
        name: value
        for module in (validation, field_checks, step_checks, action_checks, page_setup)
        for name, value in vars(module).items()
        if re.fullmatch(r"(MAX|MIN)_[A-Z_]+", name) and isinstance(value, int)
    }
    assert documented_limits() == constants
