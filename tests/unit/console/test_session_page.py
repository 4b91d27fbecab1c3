"""A session's page: an open one's close and live view; a closed one's when, why and video."""

from collections.abc import Iterator
from typing import Any

from starlette.testclient import TestClient

from farm_console.pages import sessions
from tests.unit.console.listing_pages import ListingFarm, signed_in_client

CLOSED = {
    "id": "ses_1",
    "state": "SESSION_STATE_CLOSED",
    "agentId": "agent-1",
    "createTime": "2026-12-07T13:03:47Z",
    "expireTime": "2026-12-07T14:03:47Z",
    "closeTime": "2026-12-07T13:03:55Z",
    "closeReason": "IDLE_TIMEOUT",
    "commands": 4,
    "recording": {
        "id": "art_video",
        "kind": "ARTIFACT_KIND_VIDEO",
        "contentType": "video/webm",
        "sizeBytes": "81234",
    },
}


def session_page(session: dict[str, Any]) -> Iterator[TestClient]:
    """A signed-in client of the session pages, on a farm whose GetSession answers `session`."""
    farm = ListingFarm("sessions", "GetSession", session)
    with signed_in_client(farm, sessions.routes) as client:
        yield client


def test_a_closed_session_says_when_and_why_it_closed_and_links_its_recording() -> None:
    # It said "CLOSED on agent-1, 4 commands; expires <its lifetime's end>": neither when
    # nor why it closed, and its recording was nowhere in the console.
    for client in session_page(CLOSED):
        answer = client.get("/console/sessions/ses_1")

        assert answer.status_code == 200
        assert (
            '<p id="session-state">CLOSED (IDLE_TIMEOUT) at 2026-12-07T13:03:55Z, on agent-1 '
            "after 4 commands; opened 2026-12-07T13:03:47Z.</p>"
        ) in answer.text
        assert "expires" not in answer.text
        assert '<a id="recording" href="/console/artifacts/art_video"' in answer.text
        assert "(video/webm, 81234 bytes)" in answer.text
        assert "/close" not in answer.text


def test_an_open_session_has_close_and_its_live_view() -> None:
    active = {**CLOSED, "state": "SESSION_STATE_ACTIVE", "closeReason": "", "recording": None}
    for client in session_page(active):
        answer = client.get("/console/sessions/ses_1")

        assert "ACTIVE on agent-1, 4 commands;" in answer.text
        assert 'action="/console/sessions/ses_1/close"' in answer.text
        assert 'id="live-view"' in answer.text
        assert 'id="recording"' not in answer.text


class TokenFarm(ListingFarm):
    """GetSession answers `session`; CreateCdpToken answers a token of it."""

    TOKEN = {
        "token": "tok_1",
        "cdpUrl": "ws://farm.test/v1/sessions/ses_1/cdp?token=tok_1",
        "discoveryUrl": "http://farm.test/v1/sessions/ses_1?token=tok_1",
        "expireTime": "2026-12-07T13:18:47Z",
    }

    def __init__(self, session: dict[str, Any]) -> None:
        super().__init__("sessions", "GetSession", session)
        self.CreateCdpToken = "CreateCdpToken"

    async def call(self, key: str, method: str, request: Any) -> dict[str, Any]:
        if method == "CreateCdpToken":
            self.asked.append(request)
            return self.TOKEN
        return await super().call(key, method, request)


def test_the_cdp_token_button_shows_the_tokens_urls_to_copy_and_its_expiry() -> None:
    active = {**CLOSED, "state": "SESSION_STATE_ACTIVE", "closeReason": "", "recording": None}
    farm = TokenFarm(active)
    with signed_in_client(farm, sessions.routes) as client:
        page = client.get("/console/sessions/ses_1")
        minted = client.post("/console/sessions/ses_1/cdp-token")

    assert 'action="/console/sessions/ses_1/cdp-token"' in page.text
    assert 'id="cdp-token"' not in page.text
    assert minted.status_code == 200
    assert farm.asked[1].id == "ses_1"
    assert f'<input id="cdp-url" readonly value="{TokenFarm.TOKEN["cdpUrl"]}">' in minted.text
    assert (
        f'<input id="discovery-url" readonly value="{TokenFarm.TOKEN["discoveryUrl"]}">'
    ) in minted.text
    assert "Attaches until <time>2026-12-07T13:18:47Z</time>" in minted.text


def test_a_closed_session_offers_no_cdp_token() -> None:
    for client in session_page(CLOSED):
        answer = client.get("/console/sessions/ses_1")
        assert "cdp-token" not in answer.text
