"""Refused keys per browser address: past the limit, that address waits; no other does.

The console calls the farm with whatever key a browser brings (typed into the sign-in
form, or in its cookie), and auth behind Envoy counts a refused key against the
console's own address, shared by every browser. So the console counts refused keys
per browser first and stops one that is past FARM_CONSOLE_FAILED_SIGNIN_LIMIT before
its keys reach the farm (docs/security.md, "Console sign-ins").

The browser's address is `request.client`: the TCP peer, or the x-forwarded-for the
farm's Envoy sets, which ProxyHeadersMiddleware takes only from a trusted proxy.
"""

from starlette.requests import Request

from farm_console.farm import BROWSER_ADDRESS
from farm_console.settings import ConsoleSettings
from farm_core.failed_attempts import FailedAuthLimiter


class TooManyRefusals(Exception):
    """The browser's address is past its refused keys: it waits `wait_seconds`."""

    def __init__(self, address: str, wait_seconds: float) -> None:
        super().__init__(f"too many refused keys from {address}")
        self.address = address
        self.wait_seconds = wait_seconds


def refused_keys(settings: ConsoleSettings) -> FailedAuthLimiter:
    """The count of refused keys per browser address, as the settings bound it."""
    return FailedAuthLimiter(
        settings.failed_signin_limit,
        settings.failed_signin_window_seconds,
        settings.failed_signin_block_seconds,
        settings.failed_signin_max_addresses,
    )


def client_address(request: Request) -> str:
    """The browser's address: the TCP peer's, or what the trusted proxy forwarded."""
    return request.client.host if request.client else ""


def _counter(request: Request) -> FailedAuthLimiter:
    counter: FailedAuthLimiter = request.app.state.refused_keys
    return counter


def admit_browser(request: Request) -> None:
    """Raises TooManyRefusals while the browser's address waits: its key is not sent then.

    Else the farm calls that follow are made for this browser (farm.BROWSER_ADDRESS).
    """
    address = client_address(request)
    BROWSER_ADDRESS.set(address)
    wait_seconds = _counter(request).blocked_for(address)
    if wait_seconds > 0:
        raise TooManyRefusals(address, wait_seconds)


def count_refusal(request: Request) -> None:
    """Counts one key of this browser's that the farm refused (UNAUTHENTICATED)."""
    _counter(request).record_failure(client_address(request))
