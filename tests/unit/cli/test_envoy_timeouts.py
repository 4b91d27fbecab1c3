"""The rendered Envoy configuration's time limits: each route waits as long as its call may take."""

import pytest

from browserfarm import sessions as browserfarm_sessions
from farm_cli.client import RUN_TIMEOUT
from farm_scheduler.settings import SchedulerSettings
from tests.unit.cli.envoy_render import rendered, routes


def test_reflection_streams_reach_the_scheduler_unbuffered_and_without_a_deadline() -> None:
    for version in ("v1", "v1alpha"):
        prefix = f"/grpc.reflection.{version}.ServerReflection/"
        (route,) = [r for r in routes(rendered()) if r["match"].get("prefix") == prefix]
        assert route["route"]["cluster"] == "scheduler"
        assert route["route"]["timeout"] == "0s"
        assert route["typed_per_filter_config"]["envoy.filters.http.buffer"]["disabled"] is True
        # The key is checked as for any call.
        assert "envoy.filters.http.ext_authz" not in route["typed_per_filter_config"]


def test_run_task_outlives_its_300_s_limit_and_watch_never_times_out() -> None:
    by_path = {r["match"].get("path"): r["route"] for r in routes(rendered()) if "route" in r}
    run = by_path["/farm.tasks.v1.TaskService/RunTask"]
    watch = by_path["/farm.tasks.v1.TaskService/WatchTask"]
    assert run["timeout"] == "330s" and run["idle_timeout"] == "330s"
    assert watch["timeout"] == "0s" and watch["idle_timeout"] == "0s"


@pytest.mark.parametrize(
    "path",
    ["/farm.tasks.v1.TaskService/RunTask", "/farm.sessions.v1.SessionService/RunSessionCommand"],
)
def test_the_cli_waits_for_a_run_as_long_as_the_edge(path: str) -> None:
    # One RUN_TIMEOUT (farm_cli.client) for `farm task run`, its batches and `farm
    # session run`: shorter, the CLI would give up on a run the farm still finishes.
    by_path = {r["match"].get("path"): r["route"] for r in routes(rendered()) if "route" in r}
    assert by_path[path]["timeout"] == f"{RUN_TIMEOUT:g}s"


def test_close_session_outlasts_the_schedulers_wait_for_the_agents_close() -> None:
    # A recording session's close waits for its video to be stored; cut at the edge
    # first, the caller got UNAVAILABLE "upstream request timeout" for a close that went on.
    by_path = {r["match"].get("path"): r["route"] for r in routes(rendered()) if "route" in r}
    close = by_path["/farm.sessions.v1.SessionService/CloseSession"]
    waits = SchedulerSettings.model_fields["session_close_timeout_seconds"].default
    assert close["cluster"] == "scheduler"
    assert float(close["timeout"].removesuffix("s")) > waits
    assert float(close["idle_timeout"].removesuffix("s")) > waits


@pytest.mark.parametrize(
    ("method", "sdk_seconds"),
    [
        ("CreateSession", browserfarm_sessions.OPEN_SECONDS),
        ("CloseSession", browserfarm_sessions.CLOSE_SECONDS),
    ],
)
def test_the_sdk_and_the_cli_wait_for_a_session_call_as_long_as_the_edge(
    method: str, sdk_seconds: float
) -> None:
    # A client that gives up first sees its own timeout, not the farm's answer saying why.
    by_path = {r["match"].get("path"): r["route"] for r in routes(rendered()) if "route" in r}
    edge = float(by_path[f"/farm.sessions.v1.SessionService/{method}"]["timeout"].removesuffix("s"))
    # The CLI's session commands wait the SDK's bounds (farm_cli.commands.session).
    assert sdk_seconds >= edge
