"""Saved profiles through the whole farm over HTTP/JSON: sessions and tasks, per tenant."""

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = pytest.mark.e2e

SIGNED_IN = "cookie, local storage ann"
SIGNED_OUT = "no cookie, no local storage"
READ_STATE = {"extract": {"fields": {"state": "#state"}}}


@pytest.fixture
def profile() -> str:
    """A profile name no other test uses."""
    return f"shopper-{secrets.token_hex(4)}"


@pytest.fixture
def stranger(farm: LocalFarm, make_key: KeyFactory) -> Iterator[Client]:
    """A client of another tenant, with sessions."""
    scopes = ("tasks.write", "tasks.read", "artifacts.read", "sessions")
    key = make_key(*scopes, tenant=f"other-{secrets.token_hex(4)}").secret
    with http_client(farm, key) as http:
        yield Client(http, key)


def state_in_session(sessions: Sessions, site: Site, **spec: Any) -> str:
    """What /login finds in a new session opened with `spec`; the session is closed after."""
    session = sessions.create(**spec)
    try:
        result = sessions.run(session["id"], url=site.url("/login"), **READ_STATE)
    finally:
        sessions.close(session["id"])
    return str(result["json"]["state"])


def state_in_task(client: Client, site: Site, **spec: Any) -> str:
    """What /login finds in a task run with `spec`."""
    task = client.run({"url": site.url("/login"), "maxAttempts": 1, **READ_STATE, **spec})
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
    return str(task["result"]["json"]["state"])


def sign_in_with_a_session(sessions: Sessions, site: Site, profile: str) -> None:
    """A session with `profile` signs in on /login and closes, saving the profile."""
    session = sessions.create(profile=profile)
    try:
        signed = sessions.run(
            session["id"], url=site.url("/login"), steps=[{"click": "#sign-in"}], **READ_STATE
        )
        assert signed["json"]["state"] == SIGNED_IN
    finally:
        sessions.close(session["id"])


def test_a_session_signs_in_and_the_next_session_and_a_task_with_the_profile_are_signed_in(
    admin: Client, site: Site, profile: str
) -> None:
    sessions = Sessions(admin.http)
    sign_in_with_a_session(sessions, site, profile)

    assert state_in_session(sessions, site, profile=profile) == SIGNED_IN
    assert state_in_task(admin, site, profile=profile) == SIGNED_IN
    assert state_in_task(admin, site) == SIGNED_OUT
    listed = admin.http.get("/v1/profiles").json()["profiles"]
    [saved] = [p for p in listed if p["name"] == profile]
    assert saved["cookies"] == 1
    assert saved["origins"] == [site.url("")]


def test_a_task_saves_its_profile_when_it_succeeds(admin: Client, site: Site, profile: str) -> None:
    signing_in = {"profile": profile, "saveProfile": True, "steps": [{"click": "#sign-in"}]}
    assert state_in_task(admin, site, **signing_in) == SIGNED_IN

    assert state_in_task(admin, site, profile=profile) == SIGNED_IN


def test_another_tenant_cannot_load_list_or_delete_a_profile(
    admin: Client, stranger: Client, site: Site, profile: str
) -> None:
    sign_in_with_a_session(Sessions(admin.http), site, profile)

    assert state_in_task(stranger, site, profile=profile) == SIGNED_OUT
    assert stranger.http.delete(f"/v1/profiles/{profile}").status_code == 404
    assert state_in_session(Sessions(stranger.http), site, profile=profile) == SIGNED_OUT
    # The stranger's session saved a profile of the same name on close: its own, empty one.
    theirs = stranger.http.get("/v1/profiles").json()["profiles"]
    assert [(p["name"], p["cookies"]) for p in theirs] == [(profile, 0)]
    assert state_in_task(admin, site, profile=profile) == SIGNED_IN


def test_a_deleted_profile_starts_the_next_task_signed_out(
    admin: Client, site: Site, profile: str
) -> None:
    sign_in_with_a_session(Sessions(admin.http), site, profile)

    response = admin.http.delete(f"/v1/profiles/{profile}")

    assert response.status_code == 200, response.text
    assert state_in_task(admin, site, profile=profile) == SIGNED_OUT
    assert admin.http.delete(f"/v1/profiles/{profile}").status_code == 404
