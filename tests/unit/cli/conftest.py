"""The user CLI's tests: every public service faked on one port, as a client sees the farm."""

from collections.abc import Iterator

import pytest

from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import start_single_server

KEY = "bf_cli-test-key"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[int, Calls]]:
    """The fake services of a module's tests: their port, and the calls they were sent."""
    server, port, calls = start_single_server()
    yield port, calls
    server.stop(grace=None)


@pytest.fixture
def calls(fake: tuple[int, Calls], monkeypatch: pytest.MonkeyPatch) -> Calls:
    """The calls the fakes were sent; the CLI is pointed at them with KEY."""
    port, recorded = fake
    monkeypatch.setenv("FARM_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FARM_API_KEY", KEY)
    return recorded
