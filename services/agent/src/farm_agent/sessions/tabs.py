"""A session command's `tabs`: list the session's pages, or select, open or close one.

The pages are the browser's default context's open pages, the oldest first; the
current one is the page commands act on (and the live view and screencast show):
the selected page while it is open, else the newest.
"""

from google.protobuf import struct_pb2

from farm.sessions.v1 import sessions_pb2
from farm_agent.errors import Stage, TaskFailure, failures_as
from farm_agent.sessions.browser import SessionBrowser
from farm_core.task_errors import ErrorCode


async def change_tabs(browser: SessionBrowser, tabs: sessions_pb2.TabsControl) -> None:
    """Selects, opens or closes a page as `tabs` asks (LIST changes nothing)."""
    if tabs.action == sessions_pb2.TABS_ACTION_NEW:
        with failures_as(Stage.NAVIGATION, "tabs"):
            page = await browser.new_page()
        browser.selected = page
        return
    if tabs.action not in (sessions_pb2.TABS_ACTION_SELECT, sessions_pb2.TABS_ACTION_CLOSE):
        return
    pages = browser.open_pages()
    if tabs.index >= len(pages):
        raise TaskFailure(
            ErrorCode.NO_SUCH_PAGE,
            f"tabs.index: the session has {len(pages)} page(s) (0 to {len(pages) - 1}), "
            f"got {tabs.index}",
        )
    page = pages[tabs.index]
    if tabs.action == sessions_pb2.TABS_ACTION_SELECT:
        browser.selected = page
        with failures_as(Stage.CAPTURE, "tabs"):
            await page.bring_to_front()
        return
    if len(pages) == 1:
        raise TaskFailure(ErrorCode.NO_SUCH_PAGE, "tabs.index: the last page cannot be closed")
    if browser.selected is page:
        browser.selected = None
    with failures_as(Stage.CAPTURE, "tabs"):
        await page.close()


async def listed_tabs(browser: SessionBrowser) -> struct_pb2.Value:
    """Each open page's index, title, URL and whether it is current, as the result's json."""
    current = browser.current_page()
    listed = struct_pb2.Value()
    entries = listed.list_value
    for index, page in enumerate(browser.open_pages()):
        with failures_as(Stage.CAPTURE, f"tabs[{index}].title"):
            title = await page.title()
        entries.values.add().struct_value.update(
            {"index": index, "title": title, "url": page.url, "current": page is current}
        )
    return listed
