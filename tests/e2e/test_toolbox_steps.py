"""The toolbox's steps and page setup through the whole farm, over HTTP/JSON: tasks and sessions."""

from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

ECHO = {name: f"#{name}" for name in ("h-ua", "h-test", "h-cookie", "tz", "lang", "dpr", "width")}


def test_a_task_runs_every_new_step_with_its_page_set_up(admin: Client, site: Site) -> None:
    task = admin.run(
        {
            "url": site.url("/widgets"),
            "setup": {
                "userAgent": "FarmE2E/1.0",
                "extraHeaders": {"X-Farm-Test": "e2e"},
                "locale": "de-DE",
                "timezone": "Australia/Sydney",
                "cookies": [{"name": "sid", "value": "e2e", "url": site.url("/")}],
            },
            "steps": [
                {"hover": "#menu"},
                {"click": "#item"},
                {"select": {"selector": "#size", "label": "Large"}},
                {"check": "#agree"},
                {"uncheck": "#news"},
                {"wait": {"networkIdle": True}},
                {"evaluate": "() => document.getElementById('size').value"},
                {"wait": {"text": "Later"}},
                {"goto": site.url("/echo")},
                {"wait": {"ms": 10}},
            ],
            "extract": {"fields": ECHO},
        }
    )
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
    result = task["result"]
    assert result["finalUrl"] == site.url("/echo")
    assert result["json"] == {
        "h-ua": "FarmE2E/1.0",
        "h-test": "e2e",
        "h-cookie": "sid=e2e",
        "tz": "Australia/Sydney",
        "lang": "de-DE",
        "dpr": "1",
        "width": "1280",
    }
    # The stored spec keeps the setup as sent.
    assert task["spec"]["setup"]["timezone"] == "Australia/Sydney"


def test_a_failing_step_fails_the_task_naming_its_index_and_selector(
    admin: Client, site: Site
) -> None:
    task = admin.run(
        {
            "url": site.url("/widgets"),
            "steps": [{"check": "#agree"}, {"hover": "#nowhere"}],
            "timeoutMs": 4000,
            "maxAttempts": 1,
            "content": {},
        }
    )
    assert task["status"] == "TASK_STATUS_FAILED"
    assert task["error"]["code"] == "SELECTOR_NOT_FOUND"
    assert task["error"]["message"].startswith('steps[1].hover: no element matches "#nowhere"')


def test_bad_steps_and_setup_are_refused_naming_the_field(admin: Client) -> None:
    for body, field in (
        ({"steps": [{"goto": "file:///etc/passwd"}]}, "steps[0].goto"),
        ({"steps": [{"wait": {}}]}, "steps[0].wait"),
        ({"setup": {"timezone": "Mars/Olympus"}}, "setup.timezone"),
        ({"setup": {"cookies": [{"name": "a", "value": "b"}]}}, "setup.cookies[0].domain"),
        ({"setup": {"extraHeaders": {"Host": "x"}}}, "setup.extraHeaders.Host"),
    ):
        response = admin.http.post(
            "/v1/tasks", json={"url": "https://example.com/", "content": {}, **body}
        )
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"].startswith(f"{field}: "), response.text


def test_an_evaluate_step_needs_the_script_scope(farm: LocalFarm, make_key: KeyFactory) -> None:
    key = make_key("tasks.write", "tasks.read", "sessions")
    body = {"url": "https://example.com/", "content": {}, "steps": [{"evaluate": "() => 1"}]}
    with http_client(farm, key.secret) as http:
        task = http.post("/v1/tasks", json=body)
        session = http.post("/v1/sessions/ses_0123456789abcdef:run", json={"steps": body["steps"]})
    assert task.status_code == 403 and "script" in task.json()["message"]
    assert session.status_code == 403 and "script" in session.json()["message"]


def echo(sessions: Sessions, session_id: str, site: Site, **command: Any) -> dict[str, str]:
    result = sessions.run(session_id, url=site.url("/echo"), extract={"fields": ECHO}, **command)
    return {name: str(value) for name, value in result["json"].items()}


def test_a_session_emulates_a_device_then_resets_to_its_own_setup(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create(setup={"timezone": "Europe/Rome", "userAgent": "FarmE2E/2.0"})
    try:
        opened = echo(sessions, session["id"], site)
        assert (opened["h-ua"], opened["tz"], opened["width"]) == (
            "FarmE2E/2.0",
            "Europe/Rome",
            "1280",
        )
        phone = echo(sessions, session["id"], site, device="Pixel 7")
        assert "Pixel 7" in phone["h-ua"] and phone["width"] == "412" and phone["dpr"] != "1"
        assert phone["tz"] == "Europe/Rome"
        # The device stays for the commands that follow, until reset.
        assert echo(sessions, session["id"], site)["width"] == "412"
        reset = echo(sessions, session["id"], site, resetSetup=True)
        assert (reset["h-ua"], reset["width"], reset["dpr"]) == ("FarmE2E/2.0", "1280", "1")
    finally:
        sessions.close(session["id"])


def test_a_session_command_with_a_bad_setup_is_refused_naming_the_field(
    sessions: Sessions,
) -> None:
    session = sessions.create()
    try:
        response = sessions.http.post(
            f"/v1/sessions/{session['id']}:run", json={"setup": {"locale": "not a locale"}}
        )
        unknown = sessions.http.post(
            f"/v1/sessions/{session['id']}:run", json={"device": "Nokia 3310"}
        )
    finally:
        sessions.close(session["id"])
    assert response.status_code == 400
    assert response.json()["message"].startswith("setup.locale: ")
    assert unknown.status_code == 400
    assert "device: 'Nokia 3310' is not a device Playwright knows" in unknown.json()["message"]


def test_a_task_goes_back_to_the_page_before_and_extracts_from_it(
    admin: Client, site: Site
) -> None:
    task = admin.run(
        {
            "url": site.url("/box"),
            "steps": [{"goto": site.url("/page")}, {"goto": site.url("/form")}, {"back": True}],
            "extract": {"fields": {"heading": "h1"}},
        }
    )
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
    assert task["result"]["finalUrl"] == site.url("/page")
    assert task["result"]["json"] == {"heading": "Hello, farm"}


def test_going_back_past_the_first_page_fails_naming_the_step(admin: Client, site: Site) -> None:
    task = admin.run(
        {
            "url": site.url("/page"),
            "steps": [{"goto": site.url("/form")}, {"back": True}, {"back": True}],
            "maxAttempts": 2,
            "content": {},
        }
    )
    assert task["status"] == "TASK_STATUS_FAILED"
    assert task["error"]["code"] == "NAVIGATION_FAILED"
    assert task["error"]["message"] == "steps[2].back: the page has no earlier entry"
    # Final: another attempt would find the same history.
    assert not task["error"].get("retryable", False)


def test_a_session_goes_back_and_forward_between_its_pages(sessions: Sessions, site: Site) -> None:
    session = sessions.create()
    try:
        sessions.run(
            session["id"],
            url=site.url("/form"),
            steps=[{"fill": {"selector": "#q", "value": "farm"}}],
        )
        sessions.run(session["id"], url=site.url("/page"))
        back = sessions.run(session["id"], steps=[{"back": True}])
        forward = sessions.run(session["id"], steps=[{"forward": True}])
        past_end = sessions.http.post(
            f"/v1/sessions/{session['id']}:run", json={"steps": [{"forward": True}]}
        )
    finally:
        sessions.close(session["id"])
    assert (back["finalUrl"], back["title"]) == (site.url("/form"), "Form")
    assert (forward["finalUrl"], forward["title"]) == (site.url("/page"), "Test page")
    assert past_end.status_code == 400, past_end.text
    assert past_end.json()["message"] == (
        "NAVIGATION_FAILED: steps[0].forward: the page has no later entry"
    )


def test_a_session_command_opens_a_page_and_selects_the_first_again(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/form"))
        opened = sessions.run(
            session["id"], tabs={"action": "TABS_ACTION_NEW"}, url=site.url("/page")
        )
        selected = sessions.run(session["id"], tabs={"action": "TABS_ACTION_SELECT", "index": 0})
        read = sessions.run(session["id"], extract={"fields": {"out": "#out"}})
        missing = sessions.http.post(
            f"/v1/sessions/{session['id']}:run",
            json={"tabs": {"action": "TABS_ACTION_CLOSE", "index": 5}},
        )
    finally:
        sessions.close(session["id"])
    assert opened["json"] == [
        {"index": 0, "title": "Form", "url": site.url("/form"), "current": False},
        {"index": 1, "title": "Test page", "url": site.url("/page"), "current": True},
    ]
    assert [tab["current"] for tab in selected["json"]] == [True, False]
    assert read["json"] == {"out": "nothing yet"}
    assert missing.status_code == 400, missing.text
    assert missing.json()["message"] == (
        "NO_SUCH_PAGE: tabs.index: the session has 2 page(s) (0 to 1), got 5"
    )
