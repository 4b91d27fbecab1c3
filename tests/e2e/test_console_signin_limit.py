"""Refused sign-ins lock out the browsers that made them, never everyone.

The console checks each key with WhoAmI back through Envoy, where auth counts refused
keys per TCP peer: the console's own address. 21 wrong keys in a minute, from one
browser or from several together, blocked the console's address at auth, and with it
every other browser's sign-in (and, on one machine, every local client). Now the
console stops a browser past its own limit, and names each call's browser to auth
(with its credential), which counts that browser instead. Each client here has an
address of its own on loopback, as Envoy sees it.
"""

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_console.views import KEY_COOKIE
from tests.e2e.conftest import CONSOLE_SIGNIN_LIMIT, http_client
from tests.e2e.console_ui import console_url

# Auth's FARM_AUTH_FAILED_AUTH_LIMIT, which the end-to-end farm keeps at its default:
# one more refused key than this from one address blocks that address at auth.
AUTH_FAILED_AUTH_LIMIT = 20
GUESSER = "127.0.0.3"
OTHER_BROWSER = "127.0.0.2"
# Enough guessers, each stopped by the console at its own limit, that their refused
# keys together are past auth's limit for any one address.
GUESSERS = [f"127.0.0.{10 + n}" for n in range(AUTH_FAILED_AUTH_LIMIT // CONSOLE_SIGNIN_LIMIT)]


def browser_at(farm: LocalFarm, address: str) -> httpx.Client:
    """A client of the console whose connections come from `address`, posting as its pages do."""
    return httpx.Client(
        base_url=farm.envoy_url,
        transport=httpx.HTTPTransport(local_address=address),
        headers={"origin": farm.envoy_url},
        timeout=60,
    )


@pytest.mark.database_neutral
def test_a_guessers_refused_sign_ins_lock_out_only_the_guesser(
    farm: LocalFarm, console_key: str
) -> None:
    with browser_at(farm, GUESSER) as guesser:
        answers = [
            guesser.post(console_url(farm, "/signin"), data={"key": f"bf_wrong-{attempt}"})
            for attempt in range(AUTH_FAILED_AUTH_LIMIT + 1)
        ]
        blocked = guesser.post(console_url(farm, "/signin"), data={"key": console_key})

    statuses = [answer.status_code for answer in answers]
    assert statuses[: CONSOLE_SIGNIN_LIMIT + 1] == [401] * (CONSOLE_SIGNIN_LIMIT + 1)
    assert set(statuses[CONSOLE_SIGNIN_LIMIT + 1 :]) == {429}
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert f"Too many refused keys from your address ({GUESSER})" in blocked.text

    assert_signs_in(farm, console_key)


@pytest.mark.database_neutral
def test_guessers_at_many_addresses_together_do_not_lock_the_console_out(
    farm: LocalFarm, console_key: str
) -> None:
    refused = []
    for address in GUESSERS:
        with browser_at(farm, address) as guesser:
            for attempt in range(CONSOLE_SIGNIN_LIMIT + 1):
                answer = guesser.post(
                    console_url(farm, "/signin"), data={"key": f"bf_wrong-{attempt}"}
                )
                refused.append(answer.status_code)

    # Each refused by the farm itself, none stopped by the console: more than auth's limit.
    assert refused == [401] * len(refused)
    assert len(refused) > AUTH_FAILED_AUTH_LIMIT
    assert_signs_in(farm, console_key)


def assert_signs_in(farm: LocalFarm, key: str) -> None:
    """A browser of its own signs in with `key`, and this machine's API clients get in."""
    with browser_at(farm, OTHER_BROWSER) as other:
        signed_in = other.post(
            console_url(farm, "/signin"), data={"key": key}, follow_redirects=False
        )

    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/console/"
    assert signed_in.cookies[KEY_COOKIE] == key
    # Nor is any client on the console's own address (here: this machine's) blocked at auth.
    with http_client(farm, key) as local:
        assert local.get("/v1/whoami").status_code == 200
