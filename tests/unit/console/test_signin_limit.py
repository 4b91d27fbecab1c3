"""Refused keys are counted per browser address: past the limit only that address waits.

Keys typed into the sign-in form and keys in a browser's cookie alike.

The console's app as build_app wires it, with a stand-in for the farm's WhoAmI (the
real one, through Envoy, is tests/e2e/test_console_signin_limit.py).
"""

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest

from farm_console.farm import FarmError
from farm_console.server import build_app
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE
from farm_core.failed_attempts import FailedAuthLimiter
from tests.clock import MovedClock

GOOD_KEY = "bf_good"
LIMIT = 2
BLOCK_SECONDS = 30.0
ENVOY = "127.0.0.1"


class StandInFarm:
    """Answers WhoAmI as auth would: the good key's identity, any other key UNAUTHENTICATED."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.auth = self
        self.down = False

    async def WhoAmI(self, request: Any) -> Any:
        raise AssertionError("called through call() only")

    async def call(self, key: str, method: Callable[..., Any], request: Any) -> dict[str, Any]:
        self.asked.append(key)
        if self.down:
            raise FarmError(grpc.StatusCode.UNAVAILABLE, "the farm is away")
        if key != GOOD_KEY:
            raise FarmError(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
        return {"tenant": "default", "scopes": ["admin"]}

    async def close(self) -> None:
        return None


@pytest.fixture
def farm() -> StandInFarm:
    return StandInFarm()


@pytest.fixture
def clock() -> MovedClock:
    return MovedClock(1000.0)


@pytest.fixture
async def app(farm: StandInFarm, clock: MovedClock) -> AsyncIterator[Any]:
    settings = ConsoleSettings(failed_signin_limit=LIMIT, failed_signin_block_seconds=BLOCK_SECONDS)
    built = build_app(settings)
    await built.state.farm.close()
    built.state.farm = farm
    built.state.refused_keys = FailedAuthLimiter(
        LIMIT, 60.0, BLOCK_SECONDS, max_addresses=100, clock=clock
    )
    yield built


async def sign_in(app: Any, key: str, *, peer: str, forwarded_for: str = "") -> httpx.Response:
    """POSTs the sign-in form from TCP peer `peer`, with x-forwarded-for if given."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    headers = {"origin": "http://console.test"}
    if forwarded_for:
        headers["x-forwarded-for"] = forwarded_for
    async with httpx.AsyncClient(
        transport=transport, base_url="http://console.test", headers=headers
    ) as client:
        return await client.post("/console/signin", data={"key": key})


async def fail_past_the_limit(app: Any, **source: str) -> list[int]:
    return [(await sign_in(app, "bf_wrong", **source)).status_code for _ in range(LIMIT + 2)]


async def test_an_address_past_the_limit_waits_even_with_a_good_key_and_others_do_not(
    app: Any, farm: StandInFarm
) -> None:
    assert await fail_past_the_limit(app, peer="10.0.0.1") == [401] * (LIMIT + 1) + [429]
    asked = len(farm.asked)

    blocked = await sign_in(app, GOOD_KEY, peer="10.0.0.1")
    other = await sign_in(app, GOOD_KEY, peer="10.0.0.2")

    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == str(int(BLOCK_SECONDS))
    assert "Too many refused keys from your address (10.0.0.1)" in blocked.text
    assert "try again in 30 seconds" in blocked.text
    assert farm.asked[asked:] == [GOOD_KEY]  # the blocked address's key was never checked
    assert other.status_code == 303
    assert other.headers["location"] == "/console/"


async def test_the_block_ends_after_its_time(app: Any, clock: MovedClock) -> None:
    await fail_past_the_limit(app, peer="10.0.0.1")
    clock.now += BLOCK_SECONDS

    assert (await sign_in(app, GOOD_KEY, peer="10.0.0.1")).status_code == 303


async def test_behind_envoy_each_forwarded_browser_address_counts_on_its_own(app: Any) -> None:
    statuses = await fail_past_the_limit(app, peer=ENVOY, forwarded_for="192.0.2.1")
    assert statuses[-1] == 429

    other = await sign_in(app, GOOD_KEY, peer=ENVOY, forwarded_for="192.0.2.2")

    assert other.status_code == 303


async def test_a_forwarded_address_from_a_peer_that_is_not_envoy_is_not_believed(
    app: Any,
) -> None:
    statuses = [
        (await sign_in(app, "bf_wrong", peer="10.0.0.9", forwarded_for=f"192.0.2.{n}")).status_code
        for n in range(LIMIT + 2)
    ]

    assert statuses[-1] == 429
    blocked = await sign_in(app, GOOD_KEY, peer="10.0.0.9", forwarded_for="192.0.2.200")
    assert blocked.status_code == 429
    assert "(10.0.0.9)" in blocked.text


async def test_a_farm_that_cannot_answer_is_not_counted_against_the_address(
    app: Any, farm: StandInFarm
) -> None:
    farm.down = True
    statuses = [(await sign_in(app, GOOD_KEY, peer="10.0.0.1")).status_code for _ in range(5)]
    farm.down = False

    assert statuses == [503] * 5
    assert (await sign_in(app, GOOD_KEY, peer="10.0.0.1")).status_code == 303


async def test_keys_in_cookies_are_counted_and_stopped_as_typed_ones_are(
    app: Any, farm: StandInFarm
) -> None:
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        statuses = []
        for attempt in range(LIMIT + 2):
            client.cookies.set(KEY_COOKIE, f"bf_wrong-{attempt}", path="/console/")
            statuses.append((await client.get("/console/")).status_code)
        asked = len(farm.asked)
        client.cookies.set(KEY_COOKIE, GOOD_KEY, path="/console/")
        blocked = await client.get("/console/")

    assert statuses == [303] * (LIMIT + 1) + [429]  # refused: back to sign in, then wait
    assert blocked.status_code == 429
    assert farm.asked[asked:] == []
    assert (await sign_in(app, GOOD_KEY, peer="10.0.0.2")).status_code == 303
