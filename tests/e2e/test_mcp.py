"""The MCP server through the whole farm, driven by the `mcp` package's own client.

Over stdio (`farm mcp` spawned as an assistant would, reaching Envoy with FARM_URL
and FARM_API_KEY) and over streamable HTTP at /mcp through Envoy. Each test uses a
tenant of its own, so the sessions it lists are its connections' only. What depends
on the transport (listing, images, errors, one session per connection) runs over
both; the workflows, the same tool code either way, run over HTTP.
"""

import base64
import json
import re

import pytest
from mcp import MCPError
from mcp.types import ImageContent

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import KeyFactory, http_client, png_size
from tests.e2e.mcp_client import (
    SCOPES,
    Connect,
    active_sessions,
    call,
    http_connection,
    revoke,
    stdio_connection,
    texts,
)
from tests.mcp_tool_names import TOOL_NAMES
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


async def test_every_tool_is_listed(connect: Connect, tenant_key: str) -> None:
    async with connect(tenant_key) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == TOOL_NAMES


async def test_an_argument_the_tool_does_not_have_is_refused_not_dropped(
    connect: Connect, tenant_key: str, farm: LocalFarm
) -> None:
    async with connect(tenant_key) as client:
        result = await client.call_tool("screenshot", {"fullPage": True})
    assert result.is_error
    assert texts(result).endswith("fullPage: not an argument of this tool; did you mean full_page?")
    assert active_sessions(farm, tenant_key) == []  # refused before opening a browser


async def test_a_snapshots_references_drive_the_page(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        opened = await call(client, "navigate", url=site.url("/form"))
        assert 'Page: "Form"' in opened and "(HTTP 200)" in opened
        tree = await call(client, "snapshot")
        field = re.search(r"textbox \[ref=(e\d+)\]", tree)
        button = re.search(r'button "Go" \[ref=(e\d+)\]', tree)
        assert field and button, tree
        await call(client, "fill", selector=field[1], value="farm")
        await call(client, "click", selector=f"ref={button[1]}")
        content = await call(client, "get_content")
        assert "You asked: farm" in content
        title = await call(client, "evaluate", script="document.title")
        assert title == '"Form"'


async def test_a_reference_to_an_element_of_the_wrong_kind_is_not_called_stale(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/mcp/form"))
        fruit = re.search(r'combobox "Fruit" \[ref=(e\d+)\]', await call(client, "snapshot"))
        assert fruit
        result = await client.call_tool("fill", {"selector": fruit[1], "value": "pear"})
    assert result.is_error
    assert "Element is not an <input>, <textarea> or [contenteditable] element" in texts(result)
    assert "snapshot" not in texts(result)


async def test_a_reference_to_a_frame_the_page_has_not_is_an_element_not_found(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/form"))
        result = await client.call_tool("click", {"selector": "f9e1"})
    assert result.is_error
    assert 'SELECTOR_NOT_FOUND: steps[0].click: no element matches "aria-ref=f9e1"' in texts(result)
    assert "call snapshot first" in texts(result)


async def test_a_scripts_whole_numbers_read_as_javascript_writes_them(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/page"))
        value = await call(client, "evaluate", script="() => [document.links.length, 2.5, 1e300]")
    assert json.loads(value) == [2, 2.5, 1e300]
    assert value.split() == ["[", "2,", "2.5,", "1e+300", "]"]


async def test_navigate_back_and_forward_move_through_the_history(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        nowhere = await client.call_tool("navigate_back", {})
        await call(client, "navigate", url=site.url("/form"))
        await call(client, "fill", selector="#q", value="farm")
        await call(client, "navigate", url=site.url("/page"))
        back = await call(client, "navigate_back")
        forward = await call(client, "navigate_forward")
    assert nowhere.is_error
    assert "steps[0].back: the page has no earlier entry" in texts(nowhere)
    assert back.startswith("Went back.") and f'Page: "Form" at {site.url("/form")}' in back
    assert forward.startswith("Went forward.")
    assert f'Page: "Test page" at {site.url("/page")}' in forward


async def test_tabs_lists_selects_opens_and_closes_the_browsers_pages(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    form, page = site.url("/form"), site.url("/page")
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=form)
        opened = await call(client, "tabs", action="new", url=page)
        listed = await call(client, "tabs")
        selected = await call(client, "tabs", action="select", index=0)
        content = await call(client, "get_content")
        closed = await call(client, "tabs", action="close", index=1)
        last = await client.call_tool("tabs", {"action": "close", "index": 0})
    assert opened.startswith(f'Page: "Test page" at {page}')
    assert listed.endswith(f'- 0: "Form" at {form}\n- 1: "Test page" at {page} (current)')
    assert selected.endswith(f'- 0: "Form" at {form} (current)\n- 1: "Test page" at {page}')
    assert "nothing yet" in content
    assert closed.endswith(f'Pages:\n- 0: "Form" at {form} (current)')
    assert last.is_error
    assert "NO_SUCH_PAGE: tabs.index: the last page cannot be closed" in texts(last)


async def test_a_click_that_opens_a_pop_up_or_a_new_tab_says_so(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    opener, inner = site.url("/mcp/opener"), site.url("/mcp/inner")
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=opener)
        popped = await call(client, "click", selector="#pop")
        await call(client, "tabs", action="select", index=0)
        tabbed = await call(client, "click", selector="#blank")
        listed = await call(client, "tabs")
    assert popped.startswith(f'Clicked #pop.\nPage: "Opener" at {opener}\n')
    assert f'Opened a new tab: "Inner" at {inner} (tab 1, now current).' in popped
    assert f'Opened a new tab: "Inner" at {inner} (tab 2, now current).' in tabbed
    assert listed.endswith(f'- 2: "Inner" at {inner} (current)')


async def test_a_click_that_starts_a_download_says_the_farm_refused_it(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/mcp/opener"))
        clicked = await call(client, "click", selector="#dl")
        listed = await call(client, "tabs")
    assert (
        f'Started a download of "file.bin" from {site.url("/download")}: the farm refused it'
        in clicked
    )
    assert "Opened a new tab" not in clicked
    assert listed.endswith(f'- 0: "Opener" at {site.url("/mcp/opener")} (current)')


async def test_extract_reads_a_frames_elements_by_their_snapshot_references(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/mcp/framed"))
        tree = await call(client, "snapshot")
        price = re.search(r"paragraph \[ref=(f\d+e\d+)\]: \"Price: 42 EUR\"", tree)
        details = re.search(r'link "Details" \[ref=(f\d+e\d+)\]', tree)
        assert price and details, tree
        values = await call(
            client, "extract", fields={"price": price[1], "details": f"ref={details[1]}@href"}
        )
        by_css = await call(client, "extract", fields={"price": "#price"})
    assert json.loads(values) == {"price": "Price: 42 EUR", "details": "/mcp/inner"}
    assert json.loads(by_css) == {"price": None}  # CSS stays in the page's own document


async def test_a_screenshot_comes_back_as_a_png_image(
    connect: Connect, tenant_key: str, site: Site
) -> None:
    async with connect(tenant_key) as client:
        await call(client, "navigate", url=site.url("/box"))
        result = await client.call_tool("screenshot", {})
    assert not result.is_error, texts(result)
    image = next(block for block in result.content if isinstance(block, ImageContent))
    assert image.mime_type == "image/png"
    assert png_size(base64.b64decode(image.data)) == (1280, 800)
    assert re.search(r"/v1/artifacts/[^/]+:content", texts(result))


async def test_a_failed_step_is_a_tool_error_naming_the_farms_reason(
    connect: Connect, tenant_key: str, site: Site
) -> None:
    async with connect(tenant_key) as client:
        await call(client, "navigate", url=site.url("/form"))
        result = await client.call_tool("click", {"selector": "#missing"})
        still_there = await call(client, "get_content")
    assert result.is_error
    assert "SELECTOR_NOT_FOUND: steps[0].click" in texts(result)
    assert "nothing yet" in still_there


async def test_a_navigation_after_one_that_failed_opens_its_page(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    """Chromium's error page for the failed one comes after its failure: it must not cut the next.

    The race lost most times without the wait for it, so a few rounds show it.
    """
    answers = []
    async with over_http(tenant_key) as client:
        for _ in range(4):
            failed = await client.call_tool("navigate", {"url": "http://nowhere.invalid/"})
            assert failed.is_error and "NAVIGATION_FAILED" in texts(failed), texts(failed)
            answers.append(await client.call_tool("navigate", {"url": site.url("/form")}))
    assert [texts(answer) for answer in answers if answer.is_error] == []
    assert all('Page: "Form"' in texts(answer) for answer in answers)


async def test_form_testing_workflow(over_http: Connect, tenant_key: str, site: Site) -> None:
    """The original design's form test: fill, choose, submit, read, look, check the console."""
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/mcp/form"))
        await call(client, "fill", selector="#name", value="Ada")
        await call(client, "select", selector="#fruit", value="pear")
        await call(client, "click", selector="button[type=submit]")
        result = await call(client, "extract", fields={"result": "#result"})
        assert '"result": "Ordered pear for Ada"' in result
        shot = await client.call_tool("screenshot", {"full_page": True})
        assert any(isinstance(block, ImageContent) for block in shot.content), texts(shot)
        errors = await call(client, "get_console_errors")
        assert "order service unavailable" in errors


async def test_press_enter_submits_a_form_from_its_field(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/mcp/form"))
        await call(client, "fill", selector="#name", value="Ada")
        await call(client, "press", key="Enter")
        assert "Ordered apple for Ada" in await call(client, "get_content")
        await call(client, "fill", selector="#name", value="Grace")
        await call(client, "press", key="Tab")  # the focus leaves the field
        pressed = await call(client, "press", key="Enter", selector="#name")
        assert pressed.startswith("Pressed Enter in #name.")
        assert "Ordered apple for Grace" in await call(client, "get_content")


async def test_accessibility_audit_workflow(
    over_http: Connect, tenant_key: str, site: Site
) -> None:
    """The original design's audit: open the page, look at its tree, audit, read the findings."""
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/mcp/inaccessible"))
        tree = await call(client, "snapshot")
        assert "button" in tree
        report = await call(client, "run_accessibility_audit")
    assert re.search(r"Accessibility audit: score \d+/100", report), report
    assert "image-alt failed (wanted: " in report
    assert "button-name" in report


async def test_one_connection_drives_one_session_and_closing_it_closes_the_session(
    connect: Connect, tenant_key: str, farm: LocalFarm, site: Site
) -> None:
    assert active_sessions(farm, tenant_key) == []
    async with connect(tenant_key) as first, connect(tenant_key) as second:
        await call(first, "navigate", url=site.url("/page"))
        await call(first, "snapshot")
        [first_session] = active_sessions(farm, tenant_key)
        await call(second, "navigate", url=site.url("/form"))
        both = active_sessions(farm, tenant_key)
        assert len(both) == 2 and first_session in both
        # Each connection stays on its own page.
        assert 'Page: "Test page"' in await call(first, "get_content")
        assert 'Page: "Form"' in await call(second, "get_content")
    assert active_sessions(farm, tenant_key) == []


async def test_close_browser_ends_the_session_and_the_next_call_opens_another(
    connect: Connect, tenant_key: str, farm: LocalFarm, site: Site
) -> None:
    async with connect(tenant_key) as client:
        await call(client, "navigate", url=site.url("/page"))
        [before] = active_sessions(farm, tenant_key)
        assert await call(client, "close_browser") == f"Closed the browser (farm session {before})."
        assert active_sessions(farm, tenant_key) == []
        await call(client, "navigate", url=site.url("/page"))
        [after] = active_sessions(farm, tenant_key)
    assert after != before


async def test_stdio_with_a_key_without_sessions_answers_tool_errors(
    make_key: KeyFactory, site: Site, farm: LocalFarm
) -> None:
    key = make_key("tasks.read").secret
    async with stdio_connection(farm, key) as client:
        result = await client.call_tool("navigate", {"url": site.url("/page")})
    assert result.is_error
    assert "PERMISSION_DENIED" in texts(result) and "'sessions'" in texts(result)


def test_http_refuses_a_key_without_sessions_and_a_request_without_a_key(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    accept = {"accept": "application/json, text/event-stream"}
    with http_client(farm, make_key("tasks.read", "artifacts.read").secret) as http:
        refused = http.post("/mcp", json=initialize, headers=accept)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert "lacks the scope 'sessions'" in refused.json()["error"]["message"]
    with http_client(farm, None) as http:
        assert http.post("/mcp", json=initialize, headers=accept).status_code == 401
    with http_client(farm, farm.admin_key) as http:
        admitted = http.post("/mcp", json=initialize, headers=accept)
        session_id = admitted.headers["mcp-session-id"]
        ended = http.delete("/mcp", headers={**accept, "mcp-session-id": session_id})
    assert admitted.status_code == 200, admitted.text
    assert ended.status_code == 200, ended.text


async def test_an_mcp_client_is_told_why_its_key_is_refused(
    farm: LocalFarm, make_key: KeyFactory
) -> None:
    """The SDK's client shows a refusal's JSON-RPC error, not "Server returned an error response".

    A refusal of the client's initialize reaches the test inside its task group.
    """
    lacks_scope = pytest.RaisesExc(MCPError, match="PERMISSION_DENIED: .*the scope 'sessions'")
    with pytest.RaisesGroup(lacks_scope, flatten_subgroups=True):
        async with http_connection(farm, make_key("tasks.read").secret):
            pass
    no_key = pytest.RaisesExc(MCPError, match="UNAUTHENTICATED: missing API key")
    with pytest.RaisesGroup(no_key, flatten_subgroups=True):
        async with http_connection(farm, None):
            pass
    key = make_key(*SCOPES)
    async with http_connection(farm, key.secret) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} >= TOOL_NAMES
        revoke(farm, key.api_key.id)
        with pytest.raises(MCPError, match="the farm refused: UNAUTHENTICATED: API key revoked"):
            await client.list_tools()
