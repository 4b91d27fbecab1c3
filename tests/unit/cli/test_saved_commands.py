"""`farm baseline`, `farm profile` (against fake services) and the task flags that use them."""

import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from farm.storage.v1 import baselines_pb2, baselines_pb2_grpc, profiles_pb2, profiles_pb2_grpc
from farm_cli.commands.task_spec import task_spec_from_args
from farm_cli.console import CliError
from farm_cli.main import build_parser, main
from farm_core.free_ports import free_port
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_calls import Calls


class FakeBaselines(baselines_pb2_grpc.BaselineServiceServicer):
    """Baselines in two pages (b1, b2 | b3); "bsl_gone" is NOT_FOUND."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def ListBaselines(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListBaselines", request, context)
        ids, token = (["b1", "b2"], "page2") if not request.page_token else (["b3"], "")
        return baselines_pb2.ListBaselinesResponse(
            baselines=[baselines_pb2.Baseline(id=i, name=request.name) for i in ids],
            next_page_token=token,
        )

    def ApproveBaseline(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ApproveBaseline", request, context)
        if request.id == "bsl_gone":
            context.abort(grpc.StatusCode.NOT_FOUND, "baseline 'bsl_gone' not found")
        return baselines_pb2.Baseline(id=request.id, artifact_id=request.artifact_id)

    def DeleteBaseline(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("DeleteBaseline", request, context)
        return baselines_pb2.DeleteBaselineResponse()


class FakeProfiles(profiles_pb2_grpc.ProfileServiceServicer):
    """One profile, "shopper"."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def ListProfiles(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListProfiles", request, context)
        return profiles_pb2.ListProfilesResponse(
            profiles=[profiles_pb2.Profile(name="shopper", cookies=2)]
        )

    def DeleteProfile(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("DeleteProfile", request, context)
        return profiles_pb2.DeleteProfileResponse()


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[int, Calls]]:
    calls = Calls()
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    baselines_pb2_grpc.add_BaselineServiceServicer_to_server(FakeBaselines(calls), server)
    profiles_pb2_grpc.add_ProfileServiceServicer_to_server(FakeProfiles(calls), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield port, calls
    server.stop(grace=None)


def test_baseline_list_all_follows_every_page_of_one_name(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "list", "--name", "home", "--all"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert [baseline["id"] for baseline in printed["baselines"]] == ["b1", "b2", "b3"]
    request, metadata = calls.last("ListBaselines")
    assert (request.name, request.page_token) == ("home", "page2")
    assert metadata["authorization"] == f"Bearer {KEY}"


def test_baseline_approve_sends_the_baseline_and_the_artifact(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "approve", "bsl_1", "art_9"]) == 0

    request, _ = calls.last("ApproveBaseline")
    assert (request.id, request.artifact_id) == ("bsl_1", "art_9")
    assert json.loads(capsys.readouterr().out)["artifactId"] == "art_9"


def test_baseline_approve_of_a_missing_baseline_prints_why_and_exits_1(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "approve", "bsl_gone", "art_9"]) == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: baseline 'bsl_gone' not found\n"


def test_baseline_delete_and_profile_delete_send_what_they_name(calls: Calls) -> None:
    assert main(["baseline", "delete", "bsl_1"]) == 0
    assert main(["profile", "delete", "shopper"]) == 0

    assert calls.last("DeleteBaseline")[0].id == "bsl_1"
    assert calls.last("DeleteProfile")[0].name == "shopper"


def test_profile_list_prints_the_profiles(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "list"]) == 0

    [profile] = json.loads(capsys.readouterr().out)["profiles"]
    assert (profile["name"], profile["cookies"]) == ("shopper", 2)


def test_task_flags_compare_a_screenshot_and_use_a_profile() -> None:
    compare = ["--compare", "home", "--mask", "#clock"]
    profile = ["--profile", "shopper", "--save-profile"]
    args = build_parser().parse_args(["task", "run", "https://example.com", *compare, *profile])

    spec = task_spec_from_args(args)

    assert (spec.screenshot.compare.baseline, list(spec.screenshot.compare.mask)) == (
        "home",
        ["#clock"],
    )
    assert (spec.profile, spec.save_profile) == ("shopper", True)


def test_a_mask_without_compare_is_refused() -> None:
    args = build_parser().parse_args(["task", "run", "https://example.com", "--mask", "#clock"])

    with pytest.raises(CliError, match="--mask only goes with --compare"):
        task_spec_from_args(args)
