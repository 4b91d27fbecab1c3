"""Who the edge lets through to a session's browser, and to which agent."""

import datetime as dt

import pytest

from farm.queue.v1 import queue_pb2
from farm_auth.session_check import SessionAdmission, session_target
from farm_core.errors import NotFound, PermissionDenied, Unauthenticated
from farm_core.identity import Identity
from farm_core.key_validity import KeyValidity
from farm_core.live_tokens import LIVE_COOKIE, LiveTokenKind, decode_live_token, encode_live_token
from tests.unit.auth.session_fakes import (
    CURRENT_SECRET,
    KEY_EXPIRES,
    REVOKED,
    SECRET,
    SESSION,
    Routes,
    key_in_force,
)


@pytest.fixture
def admission() -> SessionAdmission:
    REVOKED.clear()
    return SessionAdmission(
        Routes(),  # type: ignore[arg-type]
        SECRET,
        ticket_ttl_seconds=600,
        key_in_force=key_in_force,
    )


def identity(tenant: str = "acme", *scopes: str) -> Identity:
    chosen = scopes or ("sessions", "script")
    return Identity(tenant=tenant, key_id="key_1", scopes=frozenset(chosen))


def view_token(session_id: str = SESSION, tenant: str = "acme", ttl: float = 60) -> str:
    return encode_live_token(SECRET, LiveTokenKind.VIEW, session_id, tenant, now(), ttl)[0]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("path", "live", "attach"),
    [
        (f"/v1/sessions/{SESSION}/cdp", False, True),
        (f"/v1/sessions/{SESSION}/json/version", False, False),
        (f"/v1/sessions/{SESSION}/json/version/", False, False),
        (f"/v1/sessions/{SESSION}/live", True, True),
        (f"/v1/sessions/{SESSION}/live/view.js", True, False),
        (f"/v1/sessions/{SESSION}/live/frames", True, False),
    ],
)
def test_session_paths_are_recognised(path: str, live: bool, attach: bool) -> None:
    target = session_target(path, None)
    assert target is not None
    assert (target.session_id, target.live, target.attach) == (SESSION, live, attach)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sessions",
        f"/v1/sessions/{SESSION}",
        f"/v1/sessions/{SESSION}:run",
        f"/v1/sessions/{SESSION}/json/list",
        f"/v1/sessions/{SESSION}/json",
        "/v1/tasks",
    ],
)
def test_other_paths_are_not_session_browsers(path: str) -> None:
    assert session_target(path, None) is None


def test_a_ticket_cookie_is_read_only_for_the_live_view_a_query_token_for_cdp_too() -> None:
    target = session_target(f"/v1/sessions/{SESSION}/live?token=abc", f"{LIVE_COOKIE}=t1; x=y")
    assert target is not None and (target.query_token, target.cookie_ticket) == ("abc", "t1")
    cdp = session_target(f"/v1/sessions/{SESSION}/cdp?token=abc", f"{LIVE_COOKIE}=t1")
    assert cdp is not None and (cdp.query_token, cdp.cookie_ticket) == ("abc", "")


async def test_a_key_of_the_sessions_tenant_goes_to_its_agent(admission: SessionAdmission) -> None:
    target = session_target(f"/v1/sessions/{SESSION}/cdp", None)
    assert target is not None
    admitted = await admission.by_key(target, identity())
    assert admitted.route.endpoint == "10.1.2.3:7150"


async def test_another_tenants_key_or_an_unknown_session_is_not_found(
    admission: SessionAdmission,
) -> None:
    target = session_target(f"/v1/sessions/{SESSION}/cdp", None)
    other = session_target("/v1/sessions/ses_ffffffffffffffff/cdp", None)
    assert target is not None and other is not None
    with pytest.raises(NotFound):
        await admission.by_key(target, identity("other"))
    with pytest.raises(NotFound):
        await admission.by_key(other, identity())


async def test_a_key_without_the_sessions_scope_is_refused(admission: SessionAdmission) -> None:
    target = session_target(f"/v1/sessions/{SESSION}/cdp", None)
    assert target is not None
    with pytest.raises(PermissionDenied, match="'sessions'"):
        await admission.by_key(target, identity("acme", "tasks.read"))


async def test_a_view_token_opens_the_view_once_and_leaves_a_ticket_cookie(
    admission: SessionAdmission,
) -> None:
    token = view_token()
    target = session_target(f"/v1/sessions/{SESSION}/live?token={token}", None)
    assert target is not None
    admitted = await admission.by_token(target)
    assert admitted.identity.tenant == "acme"
    cookie = admitted.set_cookie
    assert f"Path=/v1/sessions/{SESSION}/live" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    ticket = cookie.split(";", 1)[0].removeprefix(f"{LIVE_COOKIE}=")
    assert decode_live_token(SECRET, ticket, LiveTokenKind.TICKET).session_id == SESSION
    with pytest.raises(Unauthenticated, match="used already"):
        await admission.by_token(target)
    # The ticket opens the page's files and frames without the token.
    frames = session_target(f"/v1/sessions/{SESSION}/live/frames", f"{LIVE_COOKIE}={ticket}")
    assert frames is not None
    assert (await admission.by_token(frames)).set_cookie == ""


async def test_tokens_for_another_session_expired_or_of_the_wrong_kind_are_refused(
    admission: SessionAdmission,
) -> None:
    for token, problem in (
        (view_token("ses_ffffffffffffffff"), "another session"),
        (view_token(ttl=-5), "expired"),
        (encode_live_token(SECRET, LiveTokenKind.TICKET, SESSION, "acme", now(), 60)[0], "view"),
        (
            encode_live_token("x" * 48, LiveTokenKind.VIEW, SESSION, "acme", now(), 60)[0],
            "Signature",
        ),
    ):
        target = session_target(f"/v1/sessions/{SESSION}/live?token={token}", None)
        assert target is not None
        with pytest.raises(Unauthenticated, match=problem):
            await admission.by_token(target)
    bare = session_target(f"/v1/sessions/{SESSION}/live", None)
    assert bare is not None
    with pytest.raises(Unauthenticated, match="no API key"):
        await admission.by_token(bare)


async def test_the_cdp_socket_needs_the_script_scope_when_told_and_the_live_view_never(
    admission: SessionAdmission,
) -> None:
    strict = SessionAdmission(
        Routes(),  # type: ignore[arg-type]
        SECRET,
        ticket_ttl_seconds=600,
        key_in_force=key_in_force,
        cdp_needs_script=True,
    )
    cdp = session_target(f"/v1/sessions/{SESSION}/cdp", None)
    live = session_target(f"/v1/sessions/{SESSION}/live", None)
    assert cdp is not None and live is not None
    # The public API's default: `sessions` attaches.
    attached = await admission.by_key(cdp, identity("acme", "sessions"))
    assert attached.route.endpoint == "10.1.2.3:7150"
    with pytest.raises(PermissionDenied, match="'script'"):
        await strict.by_key(cdp, identity("acme", "sessions"))
    admitted = await strict.by_key(live, identity("acme", "sessions"))
    assert admitted.route.endpoint == "10.1.2.3:7150"
    with pytest.raises(NotFound):
        await strict.by_key(cdp, identity("other", "sessions"))


async def test_a_view_token_and_its_ticket_end_with_the_key_that_asked_for_them(
    admission: SessionAdmission,
) -> None:
    first, second = (
        encode_live_token(SECRET, LiveTokenKind.VIEW, SESSION, "acme", now(), 60, key_id="key_a")[0]
        for _ in range(2)
    )
    opened = session_target(f"/v1/sessions/{SESSION}/live?token={first}", None)
    assert opened is not None
    admitted = await admission.by_token(opened)
    # Its sockets end when the asking key expires: the identity says when.
    assert admitted.identity.validity == KeyValidity(key_expires=KEY_EXPIRES)
    ticket = admitted.set_cookie.split(";", 1)[0].removeprefix(f"{LIVE_COOKIE}=")
    assert decode_live_token(SECRET, ticket, LiveTokenKind.TICKET).key_id == "key_a"
    REVOKED.add("key_a")
    unspent = session_target(f"/v1/sessions/{SESSION}/live?token={second}", None)
    frames = session_target(f"/v1/sessions/{SESSION}/live/frames", f"{LIVE_COOKIE}={ticket}")
    for target in (unspent, frames):
        assert target is not None
        with pytest.raises(Unauthenticated, match="key_a is revoked or expired"):
            await admission.by_token(target)


async def test_a_view_token_and_its_ticket_end_with_the_secret_their_key_asked_with(
    admission: SessionAdmission,
) -> None:
    def view_token(secret: str) -> str:
        return encode_live_token(
            SECRET,
            LiveTokenKind.VIEW,
            SESSION,
            "acme",
            now(),
            60,
            key_id="key_a",
            key_secret=secret,
        )[0]

    opened = session_target(f"/v1/sessions/{SESSION}/live?token={view_token(CURRENT_SECRET)}", None)
    assert opened is not None
    admitted = await admission.by_token(opened)
    assert admitted.identity.validity == KeyValidity(CURRENT_SECRET, KEY_EXPIRES)
    ticket = admitted.set_cookie.split(";", 1)[0].removeprefix(f"{LIVE_COOKIE}=")
    assert decode_live_token(SECRET, ticket, LiveTokenKind.TICKET).key_secret == CURRENT_SECRET
    rotated_out = session_target(f"/v1/sessions/{SESSION}/live?token={view_token('0ld')}", None)
    assert rotated_out is not None
    with pytest.raises(Unauthenticated, match="key_a was rotated"):
        await admission.by_token(rotated_out)


async def test_a_view_token_refused_anywhere_but_its_own_live_page_is_left_unspent() -> None:
    routes = Routes()
    admission = SessionAdmission(
        routes,  # type: ignore[arg-type]
        SECRET,
        ticket_ttl_seconds=600,
        key_in_force=key_in_force,
    )
    token = view_token()
    for part in ("live/frames", "live/view.js"):
        target = session_target(f"/v1/sessions/{SESSION}/{part}?token={token}", None)
        assert target is not None
        with pytest.raises(Unauthenticated, match="opens only the live view page"):
            await admission.by_token(target)
    elsewhere = "ses_ffffffffffffffff"
    unheld_token = view_token(elsewhere)
    unheld = session_target(f"/v1/sessions/{elsewhere}/live?token={unheld_token}", None)
    assert unheld is not None
    with pytest.raises(NotFound):
        await admission.by_token(unheld)
    assert routes.spent == set()
    routes.routes[elsewhere] = queue_pb2.SessionRoute(session_id=elsewhere, tenant="acme")
    for session_id, text in ((SESSION, token), (elsewhere, unheld_token)):
        own = session_target(f"/v1/sessions/{session_id}/live?token={text}", None)
        assert own is not None
        assert (await admission.by_token(own)).set_cookie.startswith(f"{LIVE_COOKIE}=")
