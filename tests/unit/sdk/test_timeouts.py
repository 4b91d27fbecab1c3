"""The SDK's per-call `timeout=`: None is the client's, a limit not above 0 is refused, one
that passes is named."""

from pathlib import Path

import pytest

import browserfarm
from browserfarm.transport import TransportName
from tests.unit.sdk.conftest import Refusals

SPEC = {"url": "https://example.com", "content": {}}


@pytest.mark.parametrize("method", ["run", "submit"])
@pytest.mark.parametrize("timeout", [0, -1.5])
def test_a_timeout_not_above_zero_is_refused_naming_it_before_any_call(
    refusing_farm: tuple[str, Refusals], refusals: Refusals, method: str, timeout: float
) -> None:
    refused = pytest.raises(browserfarm.InvalidArgument, match=r"^timeout: seconds above 0")
    with browserfarm.Client(refusing_farm[0], "bf_key") as farm, refused:
        getattr(farm, method)(SPEC, timeout=timeout)
    assert refusals.specs == []


def test_wait_refuses_a_zero_timeout() -> None:
    refused = pytest.raises(browserfarm.InvalidArgument, match=r"^timeout: .*not 0$")
    with browserfarm.Client("127.0.0.1:1", "bf_key") as farm, refused:
        farm.wait("some-task", timeout=0)


def test_no_timeout_is_the_clients_own(
    refusing_farm: tuple[str, Refusals], refusals: Refusals
) -> None:
    with browserfarm.Client(refusing_farm[0], "bf_key") as farm:
        task = farm.run(SPEC, timeout=None)
    assert task.done and len(refusals.specs) == 1


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_call_out_of_time_names_the_farm_and_its_limit(
    silent_listener: str, transport: TransportName
) -> None:
    with (
        browserfarm.Client(silent_listener, "bf_key", timeout=0.5, transport=transport) as farm,
        pytest.raises(browserfarm.Timeout) as ran_out,
    ):
        farm.get("tsk_1")
    assert ran_out.value.message.startswith(
        f"the farm at {silent_listener} did not answer within 0.5 s (the call's time limit"
    ), ran_out.value.message


@pytest.mark.parametrize("method", ["download", "download_to"])
def test_a_download_takes_a_time_limit_of_its_own(
    silent_listener: str, method: str, tmp_path: Path
) -> None:
    # A large artifact on a slow link wants longer than the client's ordinary call.
    arguments = {"download": ("art_1",), "download_to": ("art_1", tmp_path / "a.png")}[method]
    with (
        browserfarm.Client(silent_listener, "bf_key", timeout=60) as farm,
        pytest.raises(browserfarm.Timeout, match=r"did not answer within 0\.3 s"),
    ):
        getattr(farm, method)(*arguments, timeout=0.3)
