"""The audits' checks and scores on given facts: headers, cookies, SEO facts, timings."""

from pathlib import Path
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits import headers
from farm_agent.audits.best_practices import PageSecurity, best_practices_result
from farm_agent.audits.cookies import SetCookie, cookie_checks
from farm_agent.audits.observer import DocumentResponse
from farm_agent.audits.performance import budget_of, metric_score, performance_result
from farm_agent.audits.report import (
    MAX_TARGETS,
    audit_result,
    failed,
    passed,
    penalty_score,
    weighted_score,
)
from farm_agent.audits.seo import seo_result
from farm_agent.audits.vitals import PageVitals
from farm_core.task_defaults import DEFAULT_PERFORMANCE_BUDGET, PageBudget
from tests.unit.agent.audit_pages import document, seo_facts

SAFE_HEADERS = (
    ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
    ("strict-transport-security", "max-age=63072000"),
    ("x-content-type-options", "nosniff"),
)


def ids(result: tasks_pb2.AuditResult) -> set[str]:
    return {finding.id for finding in result.findings}


# --- scores and the report's shape


def test_the_weighted_score_is_the_passing_share_of_the_impact_weights() -> None:
    checks = [passed("a", "critical"), failed("b", "serious", "t", "h"), passed("c", "minor")]
    assert weighted_score(checks) == round(100 * 11 / 18)
    assert weighted_score([]) == 100


def test_the_penalty_score_starts_at_100_and_stops_at_0() -> None:
    assert penalty_score([failed("a", "serious", "t", "h", penalty=20), passed("b")]) == 80
    assert penalty_score([failed(str(n), "critical", "t", "h", penalty=40) for n in range(3)]) == 0


def test_findings_come_worst_first_with_their_targets_cut_and_unique() -> None:
    result = audit_result(
        tasks_pb2.AUDIT_KIND_SEO,
        [
            failed("minor-one", "minor", "t", "h"),
            failed("lighter", "serious", "t", "h", penalty=5),
            failed("heavier", "serious", "t", "h", penalty=20),
            failed(
                "critical-one", "critical", "t", "h", ["#a", "#a", *(f"#b{n}" for n in range(40))]
            ),
            passed("fine"),
        ],
        score=50,
    )
    assert [finding.id for finding in result.findings] == [
        "critical-one",
        "heavier",
        "lighter",
        "minor-one",
    ]
    assert len(result.findings[0].targets) == MAX_TARGETS
    assert list(result.findings[0].targets[:2]) == ["#a", "#b0"]
    assert (result.passed, result.score) == (1, 50)


# --- performance


def vitals(
    ttfb: float = 100,
    fcp: float = 500,
    lcp: float = 900,
    cls: float = 0.0,
    load: float = 1000,
    elapsed: float = 2000,
) -> PageVitals:
    return PageVitals(
        timing=tasks_pb2.PageTiming(ttfb_ms=ttfb, fcp_ms=fcp, lcp_ms=lcp, cls=cls, load_ms=load),
        elapsed_ms=elapsed,
        largest_element="#hero",
        shifted_elements=("#banner",),
    )


def test_budget_fields_left_zero_take_the_defaults() -> None:
    given = tasks_pb2.PerformanceBudget(lcp_ms=4000, cls=0.25)
    assert budget_of(given) == DEFAULT_PERFORMANCE_BUDGET._replace(lcp_ms=4000, cls=0.25)
    assert budget_of(tasks_pb2.PerformanceBudget()) == DEFAULT_PERFORMANCE_BUDGET


@pytest.mark.parametrize(
    ("value", "score"), [(500, 1.0), (1000, 1.0), (1500, 0.5), (2000, 0.0), (9000, 0.0)]
)
def test_a_metric_scores_1_within_budget_and_0_at_twice_it(value: float, score: float) -> None:
    assert metric_score(value, 1000) == score


def test_a_page_within_budget_scores_100_and_passes_all_five() -> None:
    result = performance_result(vitals(), DEFAULT_PERFORMANCE_BUDGET)
    assert (result.score, result.passed, list(result.findings)) == (100, 5, [])


def test_metrics_over_budget_are_findings_with_their_elements_and_impact() -> None:
    result = performance_result(vitals(lcp=6000, cls=0.14), DEFAULT_PERFORMANCE_BUDGET)
    findings = {finding.id: finding for finding in result.findings}
    assert set(findings) == {"lcp", "cls"}
    assert (findings["lcp"].impact, list(findings["lcp"].targets)) == ("critical", ["#hero"])
    assert (findings["cls"].impact, list(findings["cls"].targets)) == ("moderate", ["#banner"])
    assert "6000 ms" in findings["lcp"].hint
    # LCP weighs 30 and scores 0; CLS weighs 25 and scores 0.6.
    assert result.score == round(100 * (15 + 15 + 0 + 25 * 0.6 + 15) / 100)


def test_a_page_that_never_painted_leaves_fcp_and_lcp_out() -> None:
    result = performance_result(vitals(fcp=0, lcp=0), DEFAULT_PERFORMANCE_BUDGET)
    assert (result.passed, result.score) == (3, 100)


def test_a_load_event_still_to_come_counts_once_the_page_is_open_past_its_budget() -> None:
    budget = PageBudget(800, 1800, 2500, 0.1, 3000)
    assert performance_result(vitals(load=0, elapsed=2000), budget).passed == 4
    late = performance_result(vitals(load=0, elapsed=7000), budget)
    assert [finding.id for finding in late.findings] == ["load"]


# --- security headers


@pytest.mark.parametrize(
    ("policy", "penalty"),
    [
        (None, 25),
        ("img-src 'self'", 20),
        ("default-src 'self' 'unsafe-inline'", 20),
        ("script-src 'unsafe-eval' 'self'", 10),
        ("script-src 'self' 'unsafe-inline' 'nonce-abc'", 0),
        ("default-src 'none'; script-src 'self'", 0),
        ("default-src 'unsafe-inline', script-src 'self'", 0),
    ],
)
def test_csp_fails_with_the_observatory_penalty(policy: str | None, penalty: int) -> None:
    sent = (("content-security-policy", policy),) if policy else ()
    check = headers.csp(document(*sent))
    assert (check.failed, check.penalty) == (penalty > 0, penalty)


@pytest.mark.parametrize(
    ("value", "penalty"),
    [
        (None, 20),
        ("max-age=abc", 20),
        ("max-age=600, max-age=600", 20),
        ("includeSubDomains", 20),
        ("max-age=86400", 10),
        ('max-age="31536000"; includeSubDomains', 0),
    ],
)
def test_hsts_wants_six_months(value: str | None, penalty: int) -> None:
    sent = (("strict-transport-security", value),) if value else ()
    assert headers.hsts(document(*sent)).penalty == penalty


def test_frame_protection_takes_x_frame_options_or_frame_ancestors() -> None:
    assert not headers.frame_protection(document(("x-frame-options", "SAMEORIGIN"))).failed
    assert not headers.frame_protection(
        document(("content-security-policy", "frame-ancestors 'self'"))
    ).failed
    refused = headers.frame_protection(document(("x-frame-options", "ALLOW-FROM x")))
    assert (refused.penalty, "not understood" in refused.hint) == (20, True)


@pytest.mark.parametrize(
    ("value", "fails"),
    [
        (None, False),
        ("no-referrer-when-downgrade", False),
        ("unsafe-url, strict-origin", False),
        ("strict-origin, unsafe-url", True),
        ("origin", True),
        ("whatever", True),
    ],
)
def test_referrer_policy_fails_only_when_it_leaks_or_is_unknown(
    value: str | None, fails: bool
) -> None:
    sent = (("referrer-policy", value),) if value else ()
    assert headers.referrer_policy(document(*sent)).failed is fails


def test_content_type_options_want_nosniff() -> None:
    assert not headers.content_type_options(document(("x-content-type-options", " NoSniff"))).failed
    assert headers.content_type_options(document(("x-content-type-options", "sniff"))).penalty == 5


# --- cookies


def test_set_cookie_flags_are_read_in_any_case() -> None:
    cookie = SetCookie.parse("SESSIONID=a=b; path=/; SECURE; httponly; SameSite = Strict")
    assert cookie == SetCookie("SESSIONID", secure=True, http_only=True, same_site="strict")
    assert (cookie.session, cookie.anti_csrf) == (True, False)


@pytest.mark.parametrize(
    ("name", "hsts", "penalty"),
    [("session", False, 40), ("session", True, 10), ("theme", False, 20), ("theme", True, 5)],
)
def test_a_cookie_without_secure_costs_more_for_a_session_and_less_under_hsts(
    name: str, hsts: bool, penalty: int
) -> None:
    secure, *_ = cookie_checks([f"{name}=1; HttpOnly; SameSite=Lax"], hsts=hsts)
    assert (secure.id, secure.penalty, list(secure.targets)) == ("cookie-secure", penalty, [name])


def test_samesite_must_be_known_none_needs_secure_and_csrf_tokens_need_one() -> None:
    *_, same_site = cookie_checks(
        [
            "a=1; Secure; SameSite=Strict",
            "b=1; Secure; SameSite=None",
            "c=1; SameSite=None",
            "d=1; Secure; SameSite=sometimes",
            "csrf_token=1; Secure",
            "e=1; Secure",
        ],
        hsts=True,
    )
    assert list(same_site.targets) == ["c", "d", "csrf_token"]


def test_no_cookies_pass_every_cookie_check() -> None:
    assert [check.failed for check in cookie_checks([], hsts=False)] == [False, False, False]


# --- best practices as a whole


def security(
    doc: DocumentResponse, secure: bool = True, insecure: tuple[str, ...] = ()
) -> PageSecurity:
    return PageSecurity(
        document=doc, secure_context=secure, insecure_urls=insecure, console_errors=[]
    )


def test_an_https_page_with_the_headers_passes_and_gets_hsts_and_mixed_content_checks() -> None:
    result = best_practices_result(security(document(*SAFE_HEADERS)))
    assert (result.score, result.passed, list(result.findings)) == (100, 11, [])


def test_an_https_page_loading_over_http_fails_mixed_content() -> None:
    result = best_practices_result(
        security(document(*SAFE_HEADERS), insecure=("http://cdn.test/a.js",))
    )
    assert ids(result) == {"mixed-content"}
    assert result.score == 80


def test_a_plain_http_page_fails_https_and_skips_hsts() -> None:
    plain = document(*SAFE_HEADERS, url="http://shop.test/")
    result = best_practices_result(security(plain, secure=False))
    assert ids(result) == {"https"}
    assert result.passed == 8


# --- SEO


def test_a_page_fit_for_search_passes_and_undeclared_canonical_and_hreflang_are_left_out() -> None:
    result = seo_result(seo_facts(), document())
    assert (result.score, result.passed) == (100, 9)


@pytest.mark.parametrize(
    ("changes", "sent", "failing"),
    [
        ({"title": "Apples"}, (), "title-length"),
        ({"title": "A" * 61}, (), "title-length"),
        ({"descriptions": ["  "]}, (), "meta-description"),
        ({}, (("x-robots-tag", "googlebot: noindex"),), "robots"),
        ({"robots": ["none"]}, (), "robots"),
        ({"canonicals": ["https://a.test/x", "https://a.test/y"]}, (), "canonical"),
        ({"canonicals": ["//a.test/x"]}, (), "canonical"),
        (
            {"alternates": [{"hreflang": "en-UK-x", "href": "https://a.test/", "selector": "#l"}]},
            (),
            "hreflang",
        ),
        (
            {"alternates": [{"hreflang": "de", "href": "/de", "selector": "#l"}]},
            (),
            "hreflang",
        ),
        ({"headings": [{"level": 2, "selector": "h2"}]}, (), "single-h1"),
    ],
)
def test_each_seo_problem_fails_its_check(
    changes: dict[str, Any], sent: tuple[tuple[str, str], ...], failing: str
) -> None:
    assert ids(seo_result(seo_facts(**changes), document(*sent))) == {failing}


def test_valid_hreflang_codes_pass() -> None:
    alternates = [
        {"hreflang": code, "href": "https://a.test/", "selector": "#l"}
        for code in ("de", "en-GB", "zh-Hant-TW", "es-419", "x-default")
    ]
    assert ids(seo_result(seo_facts(alternates=alternates), document())) == set()


# --- every check is documented


def every_failing_check() -> set[str]:
    """The ids of every SEO, performance and best-practices check, each made to fail."""
    seo = seo_result(
        seo_facts(
            title="Short",
            descriptions=[],
            robots=["noindex"],
            canonicals=["/a", "/b"],
            alternates=[{"hreflang": "??", "href": "/x", "selector": "#l"}],
            headings=[
                {"level": 1, "selector": "h1"},
                {"level": 3, "selector": "h3"},
                {"level": 1, "selector": "h1 + h1"},
            ],
            imagesWithoutAlt=["img"],
            uncrawlableLinks=["a"],
        ),
        document(status=500),
    )
    untitled = seo_result(seo_facts(title=""), document())
    slow = performance_result(
        vitals(ttfb=9000, fcp=9000, lcp=9000, cls=9, load=9000), DEFAULT_PERFORMANCE_BUDGET
    )
    unsafe = best_practices_result(
        PageSecurity(
            document=document(
                ("referrer-policy", "unsafe-url"),
                ("set-cookie", "sessionid=1"),
                ("set-cookie", "csrftoken=1; Secure"),
            ),
            secure_context=False,
            insecure_urls=["http://cdn.test/a.js"],
            console_errors=["boom"],
        )
    )
    return {finding.id for result in (seo, untitled, slow, unsafe) for finding in result.findings}


def test_docs_tasks_md_lists_every_check_by_its_id() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "tasks.md").read_text()
    audits = docs[docs.index("## Audits") :]
    checks = every_failing_check()
    assert len(checks) == 27
    assert {check for check in checks if f"| `{check}` |" not in audits} == set()
