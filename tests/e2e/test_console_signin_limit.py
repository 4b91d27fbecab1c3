"""One browser's refused sign-ins lock that browser out of the console, not everyone.

The console checks each key with WhoAmI back through Envoy, where auth counts refused
keys per TCP peer: the console's own address. Before the console counted refused
sign-ins per browser, 21 wrong keys from one browser blocked the console's address at
auth, and with it every other browser's sign-in (and, on one machine, every local
client). Each client here has an address of its own on loopback, as Envoy sees it.
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

    with browser_at(farm, OTHER_BROWSER) as other:
        signed_in = other.post(
            console_url(farm, "/signin"), data={"key": console_key}, follow_redirects=False
        )

    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/console/"
    assert signed_in.cookies[KEY_COOKIE] == console_key
    # Nor is any client on the console's own address (here: this machine's) blocked at auth.
    with http_client(farm, console_key) as local:
        assert local.get("/v1/whoami").status_code == 200
