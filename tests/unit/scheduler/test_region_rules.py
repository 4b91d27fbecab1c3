"""Region rules: which region a task's host prefers, and when a new task goes to any region."""

import logging

import pytest
from pydantic import ValidationError

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.routing.router import RegionRouter
from farm_scheduler.routing.rules import RegionRule, parse_rules, preferred_region
from farm_scheduler.settings import SchedulerSettings

ORIGINAL_DESIGN = parse_rules("*.eu=eu-central, *.com=us-east")


def spec(url: str, region: str = "") -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(url=url, region=region)


def test_the_rules_are_read_in_order() -> None:
    rules = parse_rules("*.eu=eu-central, *.com=us-east")
    assert rules == (RegionRule("*.eu", "eu-central"), RegionRule("*.com", "us-east"))
    assert parse_rules("") == ()
    assert parse_rules(" , ") == ()


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://www.example.eu/page", "eu-central"),
        ("https://example.eu", "eu-central"),
        ("http://shop.example.com:8080/cart?x=1", "us-east"),
        ("https://EXAMPLE.COM/", "us-east"),
        ("https://example.com./", "us-east"),
        ("https://example.org/", ""),
        ("https://example.eu.org/", ""),
        ("https://comcast.net/", ""),
        ("https://eu/", ""),
    ],
)
def test_a_host_prefers_the_region_of_the_first_matching_rule(url: str, region: str) -> None:
    assert preferred_region(ORIGINAL_DESIGN, spec(url)) == region


def test_the_first_matching_rule_wins() -> None:
    rules = parse_rules("*.example.com=eu-central,*.com=us-east")
    assert preferred_region(rules, spec("https://api.example.com/")) == "eu-central"
    assert preferred_region(rules, spec("https://other.com/")) == "us-east"


def test_a_tasks_own_region_is_never_rerouted() -> None:
    assert preferred_region(ORIGINAL_DESIGN, spec("https://example.eu/", region="ap-south")) == ""


def test_without_rules_or_a_host_nothing_is_routed() -> None:
    assert preferred_region((), spec("https://example.eu/")) == ""
    assert preferred_region(ORIGINAL_DESIGN, spec("")) == ""


@pytest.mark.parametrize(
    "text", ["*.eu", "*.eu=", "=eu-central", "*.eu=EU", "*.eu=eu central", "*.eu=any"]
)
def test_malformed_rules_are_refused_with_the_setting_named(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rules(text)
    with pytest.raises(ValidationError, match="FARM_SCHEDULER_REGION_ROUTES"):
        SchedulerSettings(region_routes=text)


def test_a_new_task_goes_to_any_region_when_its_region_has_no_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="farm_scheduler.routing.router")
    router = RegionRouter(ORIGINAL_DESIGN)
    eu = spec("https://example.eu/")
    # Before the first look at the fleet the preferred region is tried.
    assert router.route(eu) == "eu-central"
    router.saw_fleet({"us-east"})
    assert router.route(eu) == "any"
    assert router.route(spec("https://example.com/")) == "us-east"
    assert router.route(spec("https://example.org/")) == ""
    router.saw_fleet({"us-east", "eu-central"})
    assert router.route(eu) == "eu-central"
    router.saw_fleet({"eu-central", "us-east"})
    # Each change of the fleet's regions is logged once.
    assert [record.getMessage() for record in caplog.records] == [
        "regions with a live agent: us-east",
        "regions with a live agent: eu-central, us-east",
    ]
