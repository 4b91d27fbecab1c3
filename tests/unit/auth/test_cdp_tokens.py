"""CDP attach tokens at the edge: one session, its CDP socket and discovery, its key's life."""

import datetime as dt

import pytest

from farm_auth.session_check import SessionAdmission, session_target
from farm_core.errors import PermissionDenied, Unauthenticated
from farm_core.key_revocations import opening_key
from farm_core.key_validity import KeyValidity
from farm_core.live_tokens import (
    LiveTokenKind,
    decode_live_token,
    encode_live_token,
    query_tokens,
)
from tests.unit.auth.session_fakes import (
    CURRENT_SECRET,
    KEY_EXPIRES,
    REVOKED,
    SECRET,
    SESSION,
    Routes,
    key_in_force,
)

OTHER_SESSION = "ses_fedcba9876543210"


def admission(*, cdp_needs_script: bool = False, routes: Routes | None = None) -> SessionAdmission:
    REVOKED.clear()
    return SessionAdmission(
        routes or Routes(),  # type: ignore[arg-type]
        SECRET,
        ticket_ttl_seconds=600,
        key_in_force=key_in_force,
        cdp_needs_script=cdp_needs_script,
    )


def cdp_token(
    session_id: str = SESSION,
    *,
    tenant: str = "acme",
    scopes: tuple[str, ...] = ("sessions", "script", "tasks.write"),
    issued: dt.datetime | None = None,
    ttl: float = 600,
    kind: LiveTokenKind = LiveTokenKind.CDP,
    key_id: str = "key_1",
    key_secret: str = "",
) -> str:
    return encode_live_token(
        SECRET,
        kind,
        session_id,
        tenant,
        issued or dt.datetime.now(dt.UTC),
        ttl,
        key_id=key_id,
        scopes=frozenset(scopes),
        key_secret=key_secret,
    )[0]


async def admitted_to(path: str, checker: SessionAdmission | None = None) -> str:
    """The agent endpoint `path` is admitted to by token, else raises the refusal."""
    target = session_target(path, None)
    assert target is not None
    return (await (checker or admission()).by_token(target)).route.endpoint


@pytest.mark.parametrize("part", ["cdp", "json/version", "json/version/"])
async def test_a_cdp_token_opens_its_sessions_cdp_socket_and_discovery(part: str) -> None:
    path = f"/v1/sessions/{SESSION}/{part}?token={cdp_token()}"
    assert await admitted_to(path) == "10.1.2.3:7150"


async def test_its_identity_carries_only_the_session_scopes_and_names_the_asking_key() -> None:
    target = session_target(f"/v1/sessions/{SESSION}/cdp?token={cdp_token()}", None)
    assert target is not None
    identity = (await admission().by_token(target)).identity
    assert identity.scopes == frozenset({"sessions", "script"})
    assert identity.tenant == "acme"
    # Revoking key_1 ends the sockets the token opened.
    assert opening_key(identity.key_id) == "key_1"


async def test_a_cdp_token_is_refused_on_another_session() -> None:
    routes = Routes()
    routes.routes[OTHER_SESSION] = routes.routes[SESSION]
    with pytest.raises(Unauthenticated, match="another session"):
        await admitted_to(
            f"/v1/sessions/{OTHER_SESSION}/cdp?token={cdp_token()}", admission(routes=routes)
        )


async def test_an_expired_cdp_token_is_refused() -> None:
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with pytest.raises(Unauthenticated, match="expired"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={cdp_token(issued=issued, ttl=60)}")


async def test_a_cdp_token_of_a_closed_session_is_refused_as_unauthenticated() -> None:
    routes = Routes()
    token = cdp_token()
    del routes.routes[SESSION]
    with pytest.raises(Unauthenticated, match="is not open"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={token}", admission(routes=routes))


async def test_a_cdp_token_of_a_revoked_or_expired_key_is_refused() -> None:
    checker = admission()
    REVOKED.add("key_1")
    with pytest.raises(Unauthenticated, match="revoked or expired"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={cdp_token()}", checker)


async def test_a_cdp_token_asked_with_a_rotated_out_secret_is_refused() -> None:
    old = cdp_token(key_secret="0ld5ecre70ld5ecr")
    with pytest.raises(Unauthenticated, match="key_1 was rotated: the secret it was asked with"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={old}")


async def test_a_cdp_tokens_sockets_end_with_the_secret_it_was_asked_with() -> None:
    token = cdp_token(key_secret=CURRENT_SECRET)
    target = session_target(f"/v1/sessions/{SESSION}/cdp?token={token}", None)
    assert target is not None
    # The agent ends its sockets when a rotation's notice leaves this secret behind.
    validity = (await admission().by_token(target)).identity.validity
    assert validity == KeyValidity(CURRENT_SECRET, KEY_EXPIRES)


async def test_a_cdp_token_naming_no_key_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="names no API key"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={cdp_token(key_id='')}")


async def test_a_cdp_token_of_another_tenant_than_the_sessions_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={cdp_token(tenant='other')}")


async def test_view_and_cdp_tokens_do_not_stand_in_for_each_other() -> None:
    view = cdp_token(kind=LiveTokenKind.VIEW)
    with pytest.raises(Unauthenticated, match="not a cdp token"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={view}")
    with pytest.raises(Unauthenticated, match="not a view token"):
        await admitted_to(f"/v1/sessions/{SESSION}/live?token={cdp_token()}")


async def test_a_cdp_token_is_no_ticket_for_the_live_views_files() -> None:
    with pytest.raises(Unauthenticated):
        await admitted_to(f"/v1/sessions/{SESSION}/live/frames?token={cdp_token()}")


async def test_without_a_token_the_cdp_socket_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="no API key or CDP token"):
        await admitted_to(f"/v1/sessions/{SESSION}/json/version")


async def test_when_cdp_needs_script_the_asking_key_must_have_had_it() -> None:
    checker = admission(cdp_needs_script=True)
    without = cdp_token(scopes=("sessions",))
    with pytest.raises(PermissionDenied, match="'script'"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={without}", checker)
    assert await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={cdp_token()}", checker)


async def test_a_cdp_token_without_the_sessions_scope_is_forbidden() -> None:
    with pytest.raises(PermissionDenied, match="'sessions'"):
        await admitted_to(f"/v1/sessions/{SESSION}/cdp?token={cdp_token(scopes=('script',))}")


def test_a_token_lasts_no_longer_than_its_session() -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    session_ends = now + dt.timedelta(seconds=90)
    token, expires = encode_live_token(
        SECRET, LiveTokenKind.CDP, SESSION, "acme", now, 900, key_id="k", not_after=session_ends
    )
    assert expires == session_ends
    assert decode_live_token(SECRET, token, LiveTokenKind.CDP).expire_time == session_ends


@pytest.mark.parametrize(
    ("query", "tokens"),
    [
        ("token=abc", ["abc"]),
        ("a=1&token=a%2Bb", ["a+b"]),
        ("%74oken=abc", []),
        ("xtoken=abc", []),
        ("", []),
    ],
)
def test_only_a_token_spelt_token_is_read_from_a_query(query: str, tokens: list[str]) -> None:
    assert query_tokens(query) == tokens
