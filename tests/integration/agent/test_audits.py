"""The audit action in real Chromium against pages built to fail and to pass each check."""

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner, Budget, browse
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_cli.launcher.tls import load_or_create_local_tls
from farm_core.task_errors import ErrorCode
from tests.audit_pages import INSECURE_PAGE_FINDINGS
from tests.pages import Site, serve_site

pytestmark = pytest.mark.integration

A11Y = tasks_pb2.AUDIT_KIND_ACCESSIBILITY
PERFORMANCE = tasks_pb2.AUDIT_KIND_PERFORMANCE
SEO = tasks_pb2.AUDIT_KIND_SEO
BEST = tasks_pb2.AUDIT_KIND_BEST_PRACTICES
# Budgets no page of the test site misses, however loaded the machine.
GENEROUS = tasks_pb2.PerformanceBudget(
    ttfb_ms=60000, fcp_ms=60000, lcp_ms=60000, cls=10, load_ms=60000
)


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


@pytest.fixture(scope="module")
def https_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The test pages over https, with a certificate of the local CA for 127.0.0.1."""
    files = load_or_create_local_tls(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(Path(files.cert), Path(files.key))
    with serve_site(tls=context) as served:
        yield served


def audit_spec(
    url: str,
    kind: "tasks_pb2.AuditKind.ValueType",
    budget: tasks_pb2.PerformanceBudget | None = None,
    steps: list[tasks_pb2.Step] | None = None,
) -> tasks_pb2.TaskSpec:
    return tasks_pb2.TaskSpec(
        url=url,
        timeout_ms=30_000,
        audit=tasks_pb2.AuditOptions(kinds=[kind], budget=budget),
        steps=steps or [],
    )


async def audit_of(runner: BrowserSpecRunner, spec: tasks_pb2.TaskSpec) -> tasks_pb2.AuditResult:
    capture = await runner.run(spec)
    (result,) = capture.result.audit.results
    assert result.kind == spec.audit.kinds[0]
    return result


def by_id(result: tasks_pb2.AuditResult) -> dict[str, tasks_pb2.AuditFinding]:
    return {finding.id: finding for finding in result.findings}


async def audit_over_https(pool: BrowserPool, spec: tasks_pb2.TaskSpec) -> tasks_pb2.AuditResult:
    """The audit of a page of the https site, in a context that takes its certificate."""
    async with (
        pool.egress.session("https audit test") as egress,
        pool.new_context(proxy=egress.proxy, ignore_https_errors=True) as (_, context),
    ):
        page = await context.new_page()
        capture = await browse(page, spec, Budget(30), egress, 1000)
    (result,) = capture.result.audit.results
    return result


async def test_accessibility_names_the_missing_alt_the_contrast_and_the_framed_image(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/a11y-bad"), A11Y))
    findings = by_id(result)
    assert {"image-alt", "color-contrast", "html-has-lang"} <= findings.keys()
    assert set(findings["image-alt"].targets) == {"#no-alt", "iframe >>> #framed"}
    assert list(findings["color-contrast"].targets) == ["#faint"]
    assert findings["image-alt"].impact == "critical"
    assert "dequeuniversity.com/rules/axe/" in findings["image-alt"].hint
    assert result.findings[0].impact == "critical"  # worst first
    assert 0 < result.score < 100
    assert result.passed > 0


async def test_an_accessible_page_has_no_findings_and_scores_100(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/a11y-good"), A11Y))
    assert list(result.findings) == []
    assert result.score == 100
    assert result.passed > 5


async def test_seo_names_each_failing_check(runner: BrowserSpecRunner, site: Site) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/seo-bad"), SEO))
    findings = by_id(result)
    assert set(findings) == {
        "robots",
        "document-title",
        "meta-description",
        "canonical",
        "hreflang",
        "single-h1",
        "heading-order",
        "image-alt",
        "crawlable-links",
    }
    assert set(findings["crawlable-links"].targets) == {"#js-link", "#click-link"}
    assert list(findings["heading-order"].targets) == ["#deep"]
    assert list(findings["hreflang"].targets) == ["#bad-lang"]
    assert [finding.impact for finding in result.findings][:1] == ["critical"]
    assert result.passed == 1  # http-status
    assert result.score < 50


async def test_a_page_fit_for_search_passes_every_seo_check(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/seo-good"), SEO))
    assert list(result.findings) == []
    assert result.score == 100
    assert result.passed == 11


async def test_seo_fails_an_error_status(runner: BrowserSpecRunner, site: Site) -> None:
    result = await audit_of(runner, audit_spec(site.url("/status/404"), SEO))
    assert "http-status" in by_id(result)
    assert "404" in by_id(result)["http-status"].hint


async def test_best_practices_names_missing_headers_and_open_cookies(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/insecure"), BEST))
    findings = by_id(result)
    assert set(findings) == INSECURE_PAGE_FINDINGS
    assert set(findings["cookie-secure"].targets) == {"sessionid", "csrftoken"}
    assert list(findings["cookie-httponly"].targets) == ["sessionid"]
    assert list(findings["cookie-samesite"].targets) == ["csrftoken"]
    assert findings["cookie-secure"].impact == "critical"
    assert result.score == 0


async def test_a_page_with_every_security_header_passes(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/secure"), BEST))
    assert list(result.findings) == []
    assert result.score == 100


async def test_console_errors_and_uncaught_exceptions_are_findings(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/audit/console-error"), BEST))
    finding = by_id(result)["console-errors"]
    assert any("boom: the cart failed" in target for target in finding.targets)
    assert any("unhandled in test" in target for target in finding.targets)
    assert "console-errors" not in by_id(
        await audit_of(runner, audit_spec(site.url("/audit/secure"), BEST))
    )


async def test_over_https_hsts_and_mixed_content_are_checked(
    shared_pool: BrowserPool, https_site: Site, site: Site
) -> None:
    insecure = await audit_over_https(
        shared_pool, audit_spec(https_site.url("/audit/insecure"), BEST)
    )
    assert "hsts" in by_id(insecure)
    mixed = await audit_over_https(
        shared_pool, audit_spec(https_site.url(f"/audit/mixed?to={site.base_url}"), BEST)
    )
    assert list(by_id(mixed)["mixed-content"].targets) == [site.url("/plain.png")]
    secure = await audit_over_https(shared_pool, audit_spec(https_site.url("/audit/secure"), BEST))
    assert list(secure.findings) == []
    assert secure.passed == 11


async def test_a_slow_server_misses_its_ttfb_budget(runner: BrowserSpecRunner, site: Site) -> None:
    budget = tasks_pb2.PerformanceBudget()
    budget.CopyFrom(GENEROUS)
    budget.ttfb_ms = 200
    result = await audit_of(runner, audit_spec(site.url("/slow?ms=600"), PERFORMANCE, budget))
    assert set(by_id(result)) == {"ttfb"}
    assert "200 ms" in by_id(result)["ttfb"].title
    assert result.score < 100


async def test_a_layout_shift_misses_the_cls_budget_and_names_the_moved_element(
    runner: BrowserSpecRunner, site: Site
) -> None:
    budget = tasks_pb2.PerformanceBudget()
    budget.CopyFrom(GENEROUS)
    budget.cls = 0.1
    spec = audit_spec(
        site.url("/audit/shift"), PERFORMANCE, budget, [tasks_pb2.Step(wait_for="#shifted")]
    )
    finding = by_id(await audit_of(runner, spec))["cls"]
    assert "#moved" in finding.targets


async def test_a_fast_still_page_is_within_its_budget(
    runner: BrowserSpecRunner, site: Site
) -> None:
    result = await audit_of(runner, audit_spec(site.url("/page"), PERFORMANCE, GENEROUS))
    assert list(result.findings) == []
    assert result.score == 100
    assert result.passed == 5


async def test_an_audit_without_kinds_runs_all_four_in_order(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(
        tasks_pb2.TaskSpec(
            url=site.url("/audit/seo-good"), timeout_ms=30_000, audit=tasks_pb2.AuditOptions()
        )
    )
    assert [result.kind for result in capture.result.audit.results] == [
        A11Y,
        PERFORMANCE,
        SEO,
        BEST,
    ]
    assert capture.result.title == "Fresh apples and pears, delivered"


async def test_an_audit_that_does_not_navigate_reads_the_headers_by_asking_again(
    shared_pool: BrowserPool, site: Site
) -> None:
    spec = tasks_pb2.TaskSpec(timeout_ms=30_000, audit=tasks_pb2.AuditOptions(kinds=[SEO, BEST]))
    async with (
        shared_pool.egress.session("session-like audit test") as egress,
        shared_pool.new_context(proxy=egress.proxy) as (_, context),
    ):
        page = await context.new_page()
        await page.goto(site.url("/audit/insecure"))
        loads = site.hits["/audit/insecure"]
        capture = await browse(page, spec, Budget(30), egress, 1000, navigate=False)
    seo, best = capture.result.audit.results
    assert "http-status" not in by_id(seo)
    assert {"csp", "cookie-secure", "cookie-httponly", "referrer-policy"} <= by_id(best).keys()
    assert site.hits["/audit/insecure"] == loads + 1  # the page asked for itself once


async def test_an_audit_of_a_blank_page_that_does_not_navigate_says_to_give_a_url(
    shared_pool: BrowserPool,
) -> None:
    spec = tasks_pb2.TaskSpec(timeout_ms=30_000, audit=tasks_pb2.AuditOptions(kinds=[BEST]))
    async with (
        shared_pool.egress.session("blank audit test") as egress,
        shared_pool.new_context(proxy=egress.proxy) as (_, context),
    ):
        page = await context.new_page()
        with pytest.raises(TaskFailure) as caught:
            await browse(page, spec, Budget(30), egress, 1000, navigate=False)
    assert caught.value.code is ErrorCode.NAVIGATION_FAILED
    assert "give the command a url" in caught.value.message
