"""CreateCdpToken's token: its URLs at the edge, its session, its key, and how long it lasts."""

import datetime as dt

from farm.sessions.v1 import sessions_pb2
from farm_core.identity import Identity
from farm_core.key_validity import KeyValidity
from farm_core.live_tokens import LiveTokenKind, decode_live_token
from farm_scheduler.sessions.records import SessionRecord
from farm_scheduler.sessions.tokens import SessionTokens

SECRET = "s" * 48
SESSION = "ses_0123456789abcdef"
ASKER = Identity(tenant="acme", key_id="key_1", scopes=frozenset({"sessions", "script", "admin"}))


def record(lasts: dt.timedelta) -> SessionRecord:
    now = dt.datetime.now(dt.UTC)
    return SessionRecord(
        id=SESSION,
        tenant="acme",
        state="SESSION_STATE_ACTIVE",
        spec=sessions_pb2.SessionSpec(),
        agent_id="agent-1",
        create_time=now,
        expire_time=(now + lasts).replace(microsecond=0),
    )


def test_a_cdp_token_names_its_session_tenant_key_and_scopes_and_rides_both_urls() -> None:
    tokens = SessionTokens(SECRET, "https://farm.example.com/edge", 300, 900)
    made = tokens.cdp(record(dt.timedelta(hours=1)), ASKER)
    decoded = decode_live_token(SECRET, made.token, LiveTokenKind.CDP)
    assert (decoded.session_id, decoded.tenant, decoded.key_id) == (SESSION, "acme", "key_1")
    # Only what a CDP attach is checked for: the key's other scopes stay behind.
    assert decoded.scopes == {"sessions", "script"}
    assert (
        made.cdp_url == f"wss://farm.example.com/edge/v1/sessions/{SESSION}/cdp?token={made.token}"
    )
    assert (
        made.discovery_url
        == f"https://farm.example.com/edge/v1/sessions/{SESSION}?token={made.token}"
    )
    lasts = made.expire_time.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=890) < lasts <= dt.timedelta(seconds=900)


def test_a_cdp_token_ends_with_its_session_at_the_latest() -> None:
    session = record(dt.timedelta(seconds=60))
    made = SessionTokens(SECRET, "http://127.0.0.1:8080", 300, 900).cdp(session, ASKER)
    assert made.expire_time.ToDatetime(dt.UTC) == session.expire_time


def test_a_view_token_is_no_cdp_token() -> None:
    made = SessionTokens(SECRET, "http://127.0.0.1:8080", 300, 900).view(
        record(dt.timedelta(hours=1)), ASKER
    )
    assert decode_live_token(SECRET, made.token, LiveTokenKind.VIEW).key_id == "key_1"
    assert made.url.endswith(f"/v1/sessions/{SESSION}/live?token={made.token}")


def test_view_and_cdp_tokens_name_the_secret_their_key_asked_with() -> None:
    tokens = SessionTokens(SECRET, "https://farm.example.com", 300, 900)
    asker = Identity("acme", "key_1", ASKER.scopes, validity=KeyValidity("f1ee7f1ee7f1ee70"))
    made = record(dt.timedelta(hours=1))
    assert decode_live_token(
        SECRET, tokens.cdp(made, asker).token, LiveTokenKind.CDP
    ).key_secret == ("f1ee7f1ee7f1ee70")
    view = decode_live_token(SECRET, tokens.view(made, asker).token, LiveTokenKind.VIEW)
    assert view.key_secret == "f1ee7f1ee7f1ee70"
