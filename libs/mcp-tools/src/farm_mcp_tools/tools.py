"""The page tools: go, look, act and read (navigate, snapshot, click, extract, ...).

Each tool's docstring and argument descriptions are what a model reads to choose
and call it. Every selector argument takes CSS or a reference from `snapshot`.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ContentBlock, TextContent, ToolAnnotations
from pydantic import Field

from farm_mcp_tools import commands, replies
from farm_mcp_tools.commands import ContentFormatName, WaitUntilName
from farm_mcp_tools.runner import DialogShowing, ToolContext, ToolRunner

Selector = Annotated[
    str,
    Field(
        description="CSS selector of the element (e.g. '#submit', 'form button'), or its "
        "reference from the last snapshot (e.g. 'e5', shown there as [ref=e5])."
    ),
]
SNAPSHOT_CUT_HINT = (
    "the page is too large to show whole: act on the elements shown, read values with "
    "extract or evaluate, the text with get_content, or use CSS selectors directly"
)
Tool = Callable[..., Awaitable[list[ContentBlock]]]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
ACTS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


def say(body: str) -> list[ContentBlock]:
    """One text block."""
    return [TextContent(type="text", text=body)]


def answers_dialogs(tool: Tool) -> Tool:
    """`tool`, answering the dialog notice when a dialog interrupted the value it makes.

    Its commands run with `makes_value`; click and the like say a dialog in their page line.
    """

    @functools.wraps(tool)
    async def answered(*args: Any, **kwargs: Any) -> list[ContentBlock]:
        try:
            return await tool(*args, **kwargs)
        except DialogShowing as showing:
            what = "The page opened a dialog before this tool had its answer."
            return say(replies.done(what, showing.result))

    return answered


def register_page_tools(server: MCPServer, runner: ToolRunner) -> None:
    """Declares navigate, navigate_back, navigate_forward, snapshot, click, fill, hover, ..."""

    @server.tool(annotations=ACTS, structured_output=False)
    async def navigate(
        url: Annotated[str, Field(description="The http or https URL to open.")],
        ctx: ToolContext,
        wait_until: Annotated[
            WaitUntilName,
            Field(
                description="When the page counts as loaded: the load event (default), "
                "DOMContentLoaded, or no network traffic for 500 ms."
            ),
        ] = "load",
    ) -> list[ContentBlock]:
        """Open a URL in the browser. The browser (a farm session) opens on the first call."""
        result = await runner.run(ctx, lambda: commands.navigate(url, wait_until))
        return say(replies.done(f"Opened {url}.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def navigate_back(ctx: ToolContext) -> list[ContentBlock]:
        """Go back to the previous page in the browser's history, like its Back button."""
        result = await runner.run(ctx, commands.navigate_back)
        return say(replies.done("Went back.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def navigate_forward(ctx: ToolContext) -> list[ContentBlock]:
        """Go forward to the next page in the browser's history (after navigate_back)."""
        result = await runner.run(ctx, commands.navigate_forward)
        return say(replies.done("Went forward.", result))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def snapshot(ctx: ToolContext) -> list[ContentBlock]:
        """The page's accessibility tree, each element with a reference like [ref=e5].

        Every selector argument accepts such a reference ('e5'). Prefer it to a
        screenshot for finding what to click or fill; take a new snapshot after the
        page changes, as references point into the latest one.
        """
        result = await runner.run(ctx, commands.snapshot)
        tree = replies.cut(result.text, runner.limits.max_text_chars, SNAPSHOT_CUT_HINT)
        return say(f"{replies.page_line(result)}\n\n{tree}")

    @server.tool(annotations=ACTS, structured_output=False)
    async def click(selector: Selector, ctx: ToolContext) -> list[ContentBlock]:
        """Click an element (waiting until it can be clicked).

        A dialog it opens (alert, confirm, prompt) waits for handle_dialog. A pop-up
        or new tab it opens becomes the page the next tools work on: the answer's
        Page line is the page clicked on, and an "Opened a new tab" line names the new
        one. A download it starts is refused (the answer says so); nothing arrives.
        """
        result = await runner.run(ctx, lambda: commands.click(selector), element_action=True)
        return say(replies.done(f"Clicked {selector}.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def fill(
        selector: Selector,
        value: Annotated[str, Field(description="The text to type; it replaces what was there.")],
        ctx: ToolContext,
    ) -> list[ContentBlock]:
        """Fill a text field (input, textarea or contenteditable) with a value."""
        result = await runner.run(ctx, lambda: commands.fill(selector, value), element_action=True)
        return say(replies.done(f"Filled {selector}.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def hover(selector: Selector, ctx: ToolContext) -> list[ContentBlock]:
        """Move the mouse over an element (menus, tooltips)."""
        result = await runner.run(ctx, lambda: commands.hover(selector), element_action=True)
        return say(replies.done(f"Hovered over {selector}.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def press(
        key: Annotated[
            str,
            Field(
                description="The key, as Playwright names it: 'Enter', 'Tab', 'Escape', "
                "'ArrowDown', 'Backspace', a character like 'a', or a combination like "
                "'Control+A' or 'Shift+Tab'."
            ),
        ],
        ctx: ToolContext,
        selector: Annotated[
            str,
            Field(
                description="Click this element first to focus it (CSS or snapshot reference, "
                "e.g. a search box); empty: the key goes to the element that has focus."
            ),
        ] = "",
    ) -> list[ContentBlock]:
        """Press a key, e.g. Enter to submit a search box or form after fill.

        After fill the field keeps focus, so press Enter needs no selector.
        """
        result = await runner.run(ctx, lambda: commands.press(key, selector), element_action=True)
        where = f" in {selector}" if selector else ""
        return say(replies.done(f"Pressed {key}{where}.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def select(
        selector: Selector,
        ctx: ToolContext,
        value: Annotated[str, Field(description="The option's value attribute.")] = "",
        label: Annotated[
            str, Field(description="The option's visible text, instead of a value.")
        ] = "",
    ) -> list[ContentBlock]:
        """Choose an option of a <select> element, by its value or its visible label."""
        result = await runner.run(
            ctx, lambda: commands.select(selector, value, label), element_action=True
        )
        return say(replies.done(f"Selected {value or label!r} in {selector}.", result))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def wait_for(
        ctx: ToolContext,
        selector: Annotated[
            str,
            Field(description="Wait until this element (CSS or snapshot reference) is visible."),
        ] = "",
        text: Annotated[
            str, Field(description="Wait until this text is visible on the page.")
        ] = "",
        time_ms: Annotated[int, Field(description="Wait this many milliseconds.", ge=0)] = 0,
        network_idle: Annotated[
            bool, Field(description="Wait until the network has been idle for 500 ms.")
        ] = False,
    ) -> list[ContentBlock]:
        """Wait for one thing: an element, a text, a quiet network, or a time."""
        result = await runner.run(
            ctx,
            lambda: commands.wait_for(selector, text, time_ms, network_idle),
        )
        return say(replies.done("Done waiting.", result))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_content(
        ctx: ToolContext,
        format: Annotated[
            ContentFormatName,
            Field(description="text: the visible text (default); html: the DOM."),
        ] = "text",
    ) -> list[ContentBlock]:
        """The page's visible text or its HTML; long pages are cut, with a link to all of it.

        The content of frames (iframes) is not included: snapshot shows their elements,
        and extract reads them by those references (e.g. 'f1e2').
        """
        result = await runner.run(ctx, lambda: commands.content(format))
        body = replies.page_text(result, runner.limits.max_text_chars, runner.link(ctx))
        return say(f"{replies.page_line(result)}\n\n{body}")

    @server.tool(annotations=READ_ONLY, structured_output=False)
    @answers_dialogs
    async def extract(
        fields: Annotated[
            dict[str, str],
            Field(
                description="Result name to selector: 'h1' takes the first match's text, "
                "'a@href' its attribute, a trailing '[]' ('li[]', 'a@href[]') every match. "
                "A snapshot reference works too ('e5', 'f1e2@href'), and is the way to read "
                "an element inside a frame (iframe): CSS matches the page's own document only."
            ),
        ],
        ctx: ToolContext,
    ) -> list[ContentBlock]:
        """Read values from the page by CSS selectors or snapshot references, as JSON.

        A selector that matches nothing gives null. Elements inside frames (iframes)
        are read by their references from snapshot, which shows the frames' content.
        """
        result = await runner.run(ctx, lambda: commands.extract(fields), makes_value=True)
        return say(replies.json_text(replies.result_json(result)))

    @server.tool(annotations=ACTS, structured_output=False)
    @answers_dialogs
    async def evaluate(
        script: Annotated[
            str,
            Field(
                description="A JavaScript expression or function, e.g. 'document.title' or "
                "'() => [...document.links].length'; its value must be JSON."
            ),
        ],
        ctx: ToolContext,
    ) -> list[ContentBlock]:
        """Run JavaScript in the page and return its value as JSON (the key needs `script`)."""
        result = await runner.run(ctx, lambda: commands.evaluate(script), makes_value=True)
        value = replies.json_text(replies.result_json(result))
        return say(replies.cut(value, runner.limits.max_text_chars))

    @server.tool(annotations=ACTS, structured_output=False)
    async def handle_dialog(
        accept: Annotated[
            bool,
            Field(description="true: OK (a confirm returns true); false: Cancel (false, null)."),
        ],
        ctx: ToolContext,
        prompt_text: Annotated[
            str, Field(description="A prompt's answer when accepted; empty: its default.")
        ] = "",
    ) -> list[ContentBlock]:
        """Answer the dialog (alert, confirm, prompt) the page shows.

        A tool whose action opens a dialog says so; the dialog then waits for this
        answer, and every other tool fails until it is given. Unanswered for a while
        (the notice says how long), the farm dismisses it (Cancel).
        """
        result = await runner.run(ctx, lambda: commands.answer_dialog(accept, prompt_text))
        return say(
            replies.done("Accepted the dialog." if accept else "Dismissed the dialog.", result)
        )

    @server.tool(
        annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False),
        structured_output=False,
    )
    async def close_browser(ctx: ToolContext) -> list[ContentBlock]:
        """Close the browser (its farm session). The next tool call opens a new one."""
        session = await runner.close(ctx)
        if session is None:
            return say("No browser was open.")
        return say(f"Closed the browser (farm session {session.id}).")
