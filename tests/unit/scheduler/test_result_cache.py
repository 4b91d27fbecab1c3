"""The result cache's rules: which specs share a key, default cache times, which never cache."""

from typing import Any

import pytest
from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.field_checks import MAX_CACHE_TTL_SECONDS
from farm_scheduler.result_cache import cache_key, looks_up_cache
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import validate


def key(**fields: Any) -> str:
    """The cache key of task_spec(**fields) as the scheduler stores it."""
    return cache_key(validate(task_spec(**fields)))


def test_a_key_is_a_sha256_and_the_same_for_the_same_spec() -> None:
    assert len(key()) == 64 and int(key(), 16) >= 0
    assert key() == key()


def test_fields_that_steer_the_run_but_not_the_page_are_left_out() -> None:
    assert key() == key(
        priority="PRIORITY_LOW",
        labels={"job": "nightly", "team": "web"},
        maxAttempts=1,
        timeoutMs=5000,
        idempotencyKey="k-1",
        cacheTtlSeconds=10,
        isolation="ISOLATION_CONTEXT",
    )


def test_a_deadline_is_left_out() -> None:
    with_deadline = validate(task_spec())
    with_deadline.deadline.GetCurrentTime()
    with_deadline.deadline.seconds += 3600

    assert cache_key(with_deadline) == key()


def test_defaults_given_or_left_to_the_scheduler_give_the_same_key() -> None:
    assert key() == key(
        viewport={"width": 1280, "height": 800},
        waitUntil="WAIT_UNTIL_LOAD",
        screenshot={"format": "IMAGE_FORMAT_PNG"},
    )


def test_map_order_does_not_matter() -> None:
    first = task_spec(setup={"extraHeaders": {"a": "1", "b": "2"}})
    second = task_spec(setup={"extraHeaders": {"b": "2", "a": "1"}})

    assert cache_key(validate(first)) == cache_key(validate(second))


DIFFERENT: dict[str, dict[str, Any]] = {
    "url": {"url": "https://example.com/other"},
    "action": {"screenshot": None, "content": {}},
    "action options": {"screenshot": {"fullPage": True}},
    "viewport": {"viewport": {"width": 800, "height": 600}},
    "device": {"device": "iPhone 13"},
    "waitUntil": {"waitUntil": "WAIT_UNTIL_NETWORKIDLE"},
    "steps": {"steps": [{"waitFor": "#main"}]},
    "history steps": {"steps": [{"goto": "https://example.org/"}, {"back": True}]},
    "setup": {"setup": {"locale": "de-DE"}},
    "cookies": {"setup": {"cookies": [{"name": "a", "value": "b", "domain": "example.com"}]}},
    "collect": {"collect": {"timing": True}},
    "region": {"region": "eu-central"},
    "failOnHttpError": {"failOnHttpError": True},
}


@pytest.mark.parametrize("fields", DIFFERENT.values(), ids=DIFFERENT.keys())
def test_a_field_that_changes_what_is_captured_changes_the_key(fields: dict[str, Any]) -> None:
    assert key(**fields) != key()


NEVER: dict[str, dict[str, Any]] = {
    "profile": {"profile": "shop"},
    "saveProfile": {"profile": "shop", "saveProfile": True},
    "compare": {"screenshot": {"compare": {"baseline": "home"}}},
}


@pytest.mark.parametrize("fields", NEVER.values(), ids=NEVER.keys())
def test_a_spec_with_state_or_effects_outside_it_is_never_cached(fields: dict[str, Any]) -> None:
    spec = validate(task_spec(**fields, cacheTtlSeconds=3600))

    assert cache_key(spec) == ""
    assert not looks_up_cache(spec)
    assert validate(task_spec(**fields)).cache_ttl_seconds == 0


DEFAULTS: dict[str, tuple[dict[str, Any], int]] = {
    "screenshot": ({}, 3600),
    "content": ({"screenshot": None, "content": {}}, 300),
    "pdf": ({"screenshot": None, "pdf": {}}, 300),
    "extract": ({"screenshot": None, "extract": {"fields": {"t": "h1"}}}, 60),
    "script": ({"screenshot": None, "script": {"source": "() => 1"}}, 60),
    "audit": ({"screenshot": None, "audit": {}}, 60),
    "snapshot": ({"screenshot": None, "snapshot": {}}, 60),
    "reading steps": ({"steps": [{"waitFor": "#a"}, {"scroll": "bottom"}, {"hover": "#b"}]}, 3600),
    "navigating steps": ({"steps": [{"goto": "https://example.org/"}, {"back": True}]}, 3600),
    "click": ({"steps": [{"click": "#buy"}]}, 0),
    "fill": ({"steps": [{"fill": {"selector": "#q", "value": "x"}}]}, 0),
    "press": ({"steps": [{"press": "Enter"}]}, 0),
    "check": ({"steps": [{"check": "#agree"}]}, 0),
    "evaluate": ({"steps": [{"evaluate": "() => 1"}]}, 0),
}


@pytest.mark.parametrize(("fields", "seconds"), DEFAULTS.values(), ids=DEFAULTS.keys())
def test_an_unset_ttl_takes_the_actions_default(fields: dict[str, Any], seconds: int) -> None:
    spec = validate(task_spec(**fields))

    assert spec.HasField("cache_ttl_seconds")
    assert spec.cache_ttl_seconds == seconds
    assert looks_up_cache(spec) == (seconds > 0)


def test_a_given_ttl_is_kept_even_for_acting_steps() -> None:
    spec = validate(task_spec(steps=[{"click": "#next"}], cacheTtlSeconds=120))

    assert spec.cache_ttl_seconds == 120 and looks_up_cache(spec)
    zero = validate(task_spec(cacheTtlSeconds=0))
    assert zero.HasField("cache_ttl_seconds") and zero.cache_ttl_seconds == 0
    assert not looks_up_cache(zero) and cache_key(zero) == key()


@pytest.mark.parametrize("seconds", [-1, MAX_CACHE_TTL_SECONDS + 1])
def test_a_ttl_out_of_bounds_is_refused_naming_the_field(seconds: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(cacheTtlSeconds=seconds))

    assert caught.value.field == "cacheTtlSeconds"
    assert str(MAX_CACHE_TTL_SECONDS) in caught.value.message


def test_a_cached_task_says_so_in_json() -> None:
    task = tasks_pb2.Task(cached=True, spec=task_spec(cacheTtlSeconds=0))

    as_json = json_format.MessageToDict(task)
    assert as_json["cached"] is True
    assert as_json["spec"]["cacheTtlSeconds"] == 0
