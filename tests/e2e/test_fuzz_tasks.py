"""Random and malformed TaskSpecs posted through Envoy: always 2xx or 4xx, never 5xx.

Every generated spec is sent to a region no agent serves (its URL mostly names a
host that cannot resolve besides), so nothing runs; the tasks created are cancelled
at the end.
"""

import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

# No agent serves this region, so an accepted task stays queued until cancelled.
NOWHERE = "fuzz-nowhere"
EXAMPLES = 150
# Below the per-key rate limit, so the answers are the API's and not 429s.
PACE_SECONDS = 0.03
RATE_LIMIT_TRIES = 20

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


selectors = st.one_of(st.sampled_from(["#a", "h1", "a@href[]", ""]), st.text(max_size=60))
steps = st.one_of(
    st.fixed_dictionaries({"click": selectors}),
    st.fixed_dictionaries(
        {"fill": st.fixed_dictionaries({"selector": selectors, "value": st.text(max_size=20)})}
    ),
    st.fixed_dictionaries({"waitFor": selectors}),
    st.fixed_dictionaries({"press": st.text(max_size=12)}),
    st.fixed_dictionaries({"scroll": st.sampled_from(["bottom", "top", "#x"])}),
    st.dictionaries(st.sampled_from(["click", "press", "fill"]), st.text(max_size=5), max_size=3),
)
# Mostly near the bounds, now and then anything an int32 or int64 field may meet.
numbers = st.one_of(
    st.sampled_from([0, 1, 100, 999, 1000, 30000, 300000, 300001, 10000, 10001, -1]),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.integers(min_value=-(2**70), max_value=2**70),
)
actions = {
    "screenshot": st.fixed_dictionaries(
        {},
        optional={
            "fullPage": st.booleans(),
            "format": st.sampled_from(
                ["IMAGE_FORMAT_PNG", "IMAGE_FORMAT_JPEG", "IMAGE_FORMAT_GIF"]
            ),
            "quality": numbers,
            "selector": selectors,
        },
    ),
    "pdf": st.fixed_dictionaries(
        {},
        optional={
            "paperFormat": st.sampled_from(["A4", "a4", "Letter", "B5", ""]),
            "landscape": st.booleans(),
        },
    ),
    "content": st.fixed_dictionaries(
        {}, optional={"format": st.sampled_from(["CONTENT_FORMAT_TEXT", "CONTENT_FORMAT_HTML"])}
    ),
    "extract": st.fixed_dictionaries(
        {}, optional={"fields": st.dictionaries(st.text(max_size=10), selectors, max_size=4)}
    ),
    "script": st.fixed_dictionaries({}, optional={"source": st.text(max_size=80)}),
}
optional_fields = {
    "steps": st.lists(steps, max_size=6),
    "viewport": st.fixed_dictionaries({}, optional={"width": numbers, "height": numbers}),
    "device": st.sampled_from(["iPhone 13", "", "Nokia 3310"]),
    "waitUntil": st.sampled_from(["WAIT_UNTIL_LOAD", "WAIT_UNTIL_NETWORKIDLE", "WAIT_UNTIL_NOPE"]),
    "timeoutMs": numbers,
    "priority": st.sampled_from(["PRIORITY_HIGH", "PRIORITY_LOW", "URGENT"]),
    "idempotencyKey": st.text(max_size=30),
    "maxAttempts": numbers,
    "labels": st.dictionaries(
        st.one_of(st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True), st.text(max_size=8)),
        st.text(max_size=10),
        max_size=4,
    ),
    "deadline": st.sampled_from(["2999-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "tomorrow"]),
    "failOnHttpError": st.booleans(),
}
urls = st.one_of(
    st.just("http://fuzz.invalid/"),
    st.builds(lambda path: f"https://fuzz.invalid/{path}", st.text(max_size=40)),
    st.text(max_size=40),
)
# Specs with fields of the right JSON types (one action, or sometimes none or two).
typed_specs = st.builds(
    lambda url, chosen, options, extra: {"url": url, **chosen, **options, **extra},
    urls,
    st.sampled_from(sorted(actions)).flatmap(
        lambda name: st.fixed_dictionaries({name: actions[name]})
    ),
    st.fixed_dictionaries({}, optional=optional_fields),
    st.fixed_dictionaries({}, optional={"pdf": actions["pdf"], "unknownField": json_values}),
)


@st.composite
def mistyped_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A typed spec with one of its fields replaced by any JSON value."""
    spec = draw(typed_specs)
    spec[draw(st.sampled_from(sorted(spec)))] = draw(json_values)
    return spec


def _never_runs(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec, in a region no agent serves."""
    return {**spec, "region": NOWHERE}


bodies = st.one_of(
    typed_specs.map(_never_runs).map(json.dumps),
    typed_specs.map(_never_runs).map(json.dumps),
    mistyped_specs().map(_never_runs).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
)


@pytest.fixture(scope="module")
def fuzzer(farm: LocalFarm, make_key: KeyFactory) -> Iterator[Client]:
    """A key of a tenant of its own, so its rate limit and tasks touch no other test."""
    key = make_key("tasks.write", "tasks.read", "script", tenant="fuzz").secret
    with http_client(farm, key) as http:
        yield Client(http, key)


def _paced(send: Callable[[], httpx.Response]) -> httpx.Response:
    """send(), kept under the key's rate limit, and sent again while it answers 429."""
    for _ in range(RATE_LIMIT_TRIES):
        # Pacing, not a wait for anything: the key's tokens refill meanwhile.
        time.sleep(PACE_SECONDS)
        response = send()
        if response.status_code != 429:
            return response
    return response


@pytest.fixture(scope="module")
def created(fuzzer: Client) -> Iterator[list[str]]:
    """Ids of the tasks the fuzzing created; each is cancelled at the end."""
    ids: list[str] = []
    yield ids
    for task_id in ids:
        response = _paced(functools.partial(fuzzer.http.post, f"/v1/tasks/{task_id}:cancel"))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "TASK_STATUS_CANCELLED"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=bodies)
def test_any_task_body_is_answered_2xx_or_4xx_never_5xx(
    fuzzer: Client, created: list[str], body: str
) -> None:
    response = _paced(
        lambda: fuzzer.http.post(
            "/v1/tasks", content=body.encode(), headers={"content-type": "application/json"}
        )
    )
    assert response.status_code < 500, (body, response.status_code, response.text)
    event(f"HTTP {response.status_code}")
    if response.is_success:
        task = response.json()
        assert task["spec"]["region"] == NOWHERE
        created.append(task["id"])
    else:
        assert 400 <= response.status_code < 500


def test_the_farm_stays_healthy_after_the_fuzzing(
    farm: LocalFarm, fuzzer: Client, created: list[str]
) -> None:
    with http_client(farm, None) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
    accepted = fuzzer.create({"url": "http://fuzz.invalid/", "content": {}, "region": NOWHERE})
    created.append(accepted["id"])
    assert accepted["status"] == "TASK_STATUS_QUEUED"
