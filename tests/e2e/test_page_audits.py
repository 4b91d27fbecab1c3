"""The audit action through Envoy's HTTP/JSON: a task's and a session command's findings."""

from typing import Any

import pytest

from tests.audit_pages import INSECURE_PAGE_FINDINGS
from tests.e2e.conftest import Client
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


def findings_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {finding["id"]: finding for finding in result.get("findings", [])}


def test_an_audit_task_reports_each_kinds_score_and_failed_checks(
    admin: Client, site: Site
) -> None:
    task = admin.run(
        {
            "url": site.url("/audit/insecure"),
            "audit": {"kinds": ["AUDIT_KIND_SEO", "AUDIT_KIND_BEST_PRACTICES"]},
        }
    )
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    seo, best = task["result"]["audit"]["results"]
    assert (seo["kind"], best["kind"]) == ("AUDIT_KIND_SEO", "AUDIT_KIND_BEST_PRACTICES")
    assert set(findings_of(best)) == INSECURE_PAGE_FINDINGS
    assert best["score"] == 0
    cookie = findings_of(best)["cookie-httponly"]
    assert (cookie["impact"], cookie["targets"]) == ("critical", ["sessionid"])
    assert cookie["title"] and cookie["hint"]
    assert {"meta-description", "single-h1"} <= set(findings_of(seo))


def test_an_audit_without_kinds_runs_all_four_and_stores_the_default_budget(
    admin: Client, site: Site
) -> None:
    task = admin.run({"url": site.url("/audit/a11y-good"), "audit": {}})
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    assert task["spec"]["audit"]["budget"] == {
        "ttfbMs": 800,
        "fcpMs": 1800,
        "lcpMs": 2500,
        "cls": 0.1,
        "loadMs": 3000,
    }
    results = task["result"]["audit"]["results"]
    assert [result["kind"] for result in results] == [
        "AUDIT_KIND_ACCESSIBILITY",
        "AUDIT_KIND_PERFORMANCE",
        "AUDIT_KIND_SEO",
        "AUDIT_KIND_BEST_PRACTICES",
    ]
    accessibility = results[0]
    assert (accessibility["score"], findings_of(accessibility)) == (100, {})


def test_an_audit_naming_a_kind_twice_is_a_400_naming_the_field(admin: Client) -> None:
    response = admin.http.post(
        "/v1/tasks",
        json={
            "url": "http://127.0.0.1:9/page",
            "audit": {"kinds": ["AUDIT_KIND_SEO", "AUDIT_KIND_SEO"]},
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("audit.kinds[1]: ")


def test_a_session_command_audits_the_page_the_session_is_on(admin: Client, site: Site) -> None:
    created = admin.http.post("/v1/sessions", json={})
    assert created.status_code == 200, created.text
    session_id = created.json()["id"]
    try:
        opened = admin.http.post(
            f"/v1/sessions/{session_id}:run", json={"url": site.url("/audit/insecure")}
        )
        assert opened.status_code == 200, opened.text
        audited = admin.http.post(
            f"/v1/sessions/{session_id}:run",
            json={"audit": {"kinds": ["AUDIT_KIND_BEST_PRACTICES"]}},
        )
        assert audited.status_code == 200, audited.text
        (best,) = audited.json()["audit"]["results"]
        assert set(findings_of(best)) == INSECURE_PAGE_FINDINGS
    finally:
        admin.http.post(f"/v1/sessions/{session_id}:close")
