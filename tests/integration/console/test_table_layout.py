"""The console's wide tables in real Chromium: long ids and labels wrap, URLs stay readable.

Rendered from the real templates and style sheet, without a farm: only the layout is
under test.
"""

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize, sync_playwright

import farm_console
from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_console.views import TEMPLATES

pytestmark = pytest.mark.integration

CSS = Path(farm_console.__file__).parent / "static" / "console.css"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
LONG_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=Path("/usr/bin/chromium"), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser.new_page(viewport=DESKTOP)
        finally:
            browser.close()


def show(page: Page, template: str, **context: Any) -> None:
    """`template` rendered as the console renders it, with its style sheet."""
    html = TEMPLATES.env.get_template(template).render(
        prefix="/console",
        refresh=2,
        nav=[("/", "Overview"), ("/tasks", "Tasks"), ("/audit", "Audit log")],
        request=SimpleNamespace(query_params={}, cookies={}),
        chosen={},
        form={},
        **context,
    )
    page.set_content(html)
    page.add_style_tag(content=CSS.read_text())


def test_a_long_label_does_not_squeeze_the_task_urls_to_a_few_letters(page: Page) -> None:
    task = {
        "id": LONG_ID,
        "status": "TASK_STATUS_FAILED",
        "spec": {"url": "http://127.0.0.1:15150/missing", "labels": {"job": LONG_ID}},
        "attempts": 1,
        "createTime": "2026-12-06T18:27:47.980004Z",
        "error": {"code": "SELECTOR_NOT_FOUND"},
    }
    show(
        page,
        "tasks.html",
        listing={"tasks": [task]},
        statuses=[],
        actions=["screenshot"],
        priorities=["NORMAL"],
    )

    url_cell = page.locator("td.url").bounding_box()
    assert url_cell is not None and url_cell["width"] >= 180, url_cell
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]


def test_the_audit_log_fits_a_desktop_window(page: Page) -> None:
    record = {
        "time": "2026-12-06T18:29:12.462425Z",
        "tenant": "other",
        "keyId": "key_7e2f961ef354b51c",
        "rpc": "/farm.storage.v1.ArtifactService/GetArtifactContent",
        "target": "art_9a469e1b5aaa7dbf09136590",
        "outcome": "PERMISSION_DENIED",
        "message": "this API key lacks the scope 'artifacts.read' that "
        "/farm.storage.v1.ArtifactService/GetArtifactContent needs",
    }
    show(page, "audit.html", listing={"auditRecords": [record]})

    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
