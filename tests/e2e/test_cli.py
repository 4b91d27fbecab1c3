"""The `farm` command against the real farm, as a user runs it."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import farm_command, farm_in_process, farm_json, printed, refused
from tests.e2e.conftest import png_size, unique_label
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


def test_task_run_then_artifact_get_writes_the_png(
    farm: LocalFarm, site: Site, tmp_path: Path
) -> None:
    task = farm_json(farm, "task", "run", site.url("/page"), "--viewport", "600x400")
    assert task["status"] == "TASK_STATUS_SUCCEEDED"

    output = tmp_path / "page.png"
    got = farm_command(
        farm, "artifact", "get", task["result"]["artifacts"][0]["id"], "-o", str(output)
    )

    assert got.returncode == 0, got.stderr
    assert png_size(output.read_bytes()) == (600, 400)


def test_task_list_finds_a_created_task_by_label(farm: LocalFarm, site: Site) -> None:
    created = farm_json(farm, "task", "create", site.url("/page"), "--label", "cli=yes")
    task_id = created["id"]

    listed = farm_command(farm, "task", "list", "--label", "cli=yes")

    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout


def test_an_error_is_one_readable_line_and_exit_code_1(farm: LocalFarm) -> None:
    result = farm_command(farm, "task", "get", "0" * 32)

    assert refused(result).startswith("error: NOT_FOUND:")


def test_a_session_from_the_command_line_keeps_its_page_between_commands(
    farm: LocalFarm, site: Site
) -> None:
    # In this process: the commands' process is the other tests' subject, the session's here.
    def run(*args: str) -> Any:
        return printed(farm_in_process(farm, *args))

    session = run("session", "create", "--viewport", "800x600", "--label", "cli=1")
    assert session["cdpUrl"].endswith(f"/v1/sessions/{session['id']}/cdp")
    try:
        filled = run(
            "session", "run", session["id"], site.url("/form"), "--fill", "#q=from the CLI"
        )
        assert filled["title"] == "Form"
        read = run("session", "run", session["id"], "--click", "#go", "--extract", "out=#out")
        assert read["json"] == {"out": "You asked: from the CLI"}
        listed = farm_in_process(farm, "session", "list", "--state", "active", "--all")
        assert session["id"] in listed.stdout
        token = run("session", "view-token", session["id"])
        assert token["url"].startswith(session["liveUrl"] + "?token=")
    finally:
        closed = run("session", "close", session["id"])
    assert closed["closeReason"] == "CLOSED_BY_USER"
    closed_run = farm_in_process(farm, "session", "run", session["id"], "--screenshot")
    assert "closed (CLOSED_BY_USER)" in refused(closed_run)


def test_session_steps_go_back_and_forward_and_tabs_are_listed_selected_and_closed(
    farm: LocalFarm, site: Site
) -> None:
    def run(*args: str) -> Any:
        return printed(farm_in_process(farm, *args))

    session = run("session", "create")
    try:
        run("session", "run", session["id"], site.url("/form"))
        run("session", "run", session["id"], site.url("/page"))
        # In the order given: back to the form, forward to the page, back again.
        moved = run("session", "run", session["id"], "--back", "--forward", "--back")
        opened = run("session", "tabs", session["id"], "new", site.url("/page"))
        selected = run("session", "tabs", session["id"], "select", "0")
        closed = run("session", "tabs", session["id"], "close", "1")
        listed = run("session", "tabs", session["id"])
        bad_index = farm_in_process(farm, "session", "tabs", session["id"], "select", "x")
    finally:
        run("session", "close", session["id"])
    assert moved["finalUrl"] == site.url("/form")
    assert [(tab["url"], tab["current"]) for tab in opened["json"]] == [
        (site.url("/form"), False),
        (site.url("/page"), True),
    ]
    assert [tab["current"] for tab in selected["json"]] == [True, False]
    assert (
        closed["json"]
        == listed["json"]
        == [{"index": 0, "title": "Form", "url": site.url("/form"), "current": True}]
    )
    # A bad index is a usage error (exit code 2), found before any call.
    assert bad_index.returncode == 2, bad_index.stderr
    assert bad_index.stderr == "error: tabs select needs the page's index (0 or more), got 'x'\n"


def test_task_create_sets_attempts_deadline_region_and_idempotency_key(farm: LocalFarm) -> None:
    in_an_hour = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    at = in_an_hour.astimezone(timezone(timedelta(hours=2))).isoformat()
    args = ("task", "create", "https://example.com/", "--max-attempts", "2", "--deadline")
    options = ("--region", "cli-nowhere", "--idempotency-key", "cli-" + unique_label()["test"])
    created = printed(farm_in_process(farm, *args, at, *options))
    try:
        again = printed(farm_in_process(farm, *args, at, *options))
        before = datetime.now(UTC).replace(microsecond=0)
        relative = printed(farm_in_process(farm, *args, "+600", *options[:2]))
        after = datetime.now(UTC) + timedelta(seconds=1)
    finally:
        printed(farm_in_process(farm, "task", "cancel", created["id"]))
    printed(farm_in_process(farm, "task", "cancel", relative["id"]))
    too_many = farm_in_process(
        farm, "task", "create", "https://example.com/", "--max-attempts", "11"
    )
    naive = farm_in_process(
        farm, "task", "create", "https://example.com/", "--deadline", "2099-01-01"
    )
    batch = farm_in_process(farm, "task", "run", "--from", "-", "--idempotency-key", "k")

    spec = created["spec"]
    assert (spec["maxAttempts"], spec["region"], spec["idempotencyKey"]) == (2, *options[1::2])
    assert spec["deadline"] == in_an_hour.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert again["id"] == created["id"]
    relative_deadline = datetime.fromisoformat(relative["spec"]["deadline"])
    assert before + timedelta(seconds=600) <= relative_deadline <= after + timedelta(seconds=600)
    assert too_many.returncode == naive.returncode == batch.returncode == 2
    assert "argument --max-attempts: must be from 1 to 10, got '11'" in too_many.stderr
    assert "argument --deadline: expected a time with its zone" in naive.stderr
    assert "--idempotency-key does not go with --from" in batch.stderr
