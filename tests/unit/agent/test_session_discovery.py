"""A session's json/version: Chromium's fields, and its CDP socket at the edge's address."""

import pytest

from farm_agent.sessions.discovery import discovery_answer, public_cdp_url

SESSION = "ses_0123456789abcdef"


@pytest.mark.parametrize(
    ("public_url", "token", "expected"),
    [
        ("http://127.0.0.1:8080", "", f"ws://127.0.0.1:8080/v1/sessions/{SESSION}/cdp"),
        (
            "https://farm.example.com/edge/",
            "a.b+c",
            f"wss://farm.example.com/edge/v1/sessions/{SESSION}/cdp?token=a.b%2Bc",
        ),
    ],
    ids=["plain-no-token", "tls-with-token"],
)
def test_the_cdp_url_is_the_edges_wss_under_tls_with_the_token_given(
    public_url: str, token: str, expected: str
) -> None:
    assert public_cdp_url(public_url, SESSION, token) == expected


def test_the_answer_keeps_chromiums_fields_and_names_the_public_socket() -> None:
    version = {"Browser": "HeadlessChrome/140.0", "Protocol-Version": "1.3"}
    answer = discovery_answer(version, "ws://edge/v1/sessions/x/cdp")
    assert answer == {**version, "webSocketDebuggerUrl": "ws://edge/v1/sessions/x/cdp"}
