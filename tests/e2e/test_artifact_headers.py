"""Artifacts over HTTP: their stored type, never sniffed, and a safe download name."""

import re

import pytest

from tests.e2e.conftest import Client
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

SAFE_FILENAME = re.compile(r'^(inline|attachment); filename="[A-Za-z0-9._-]+"$')


def test_a_screenshot_is_shown_inline_as_a_png_named_after_its_task(
    admin: Client, site: Site
) -> None:
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    (artifact,) = task["result"]["artifacts"]
    response = admin.artifact_bytes(artifact["id"])
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert SAFE_FILENAME.fullmatch(disposition)
    assert disposition == f'inline; filename="{task["id"]}-screenshot.png"'
    assert "sandbox" in response.headers["content-security-policy"]


def test_stored_html_is_a_download_never_a_page_of_the_farm(admin: Client, site: Site) -> None:
    task = admin.run({"url": site.url("/page"), "content": {"format": "CONTENT_FORMAT_HTML"}})
    (artifact,) = task["result"]["artifacts"]
    response = admin.artifact_bytes(artifact["id"])
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment; ")
    assert response.headers["content-disposition"].endswith('.html"')
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
