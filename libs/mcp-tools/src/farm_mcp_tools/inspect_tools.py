"""The tools that look into the browser or change its setup.

Console and network logs, audits, cookies, device emulation and the screencast.
"""

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import ContentBlock
from pydantic import BaseModel, Field

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools import commands, replies
from farm_mcp_tools.browser import FarmBrowser
from farm_mcp_tools.commands import CookieIn, Emulation, SameSiteName, VideoFormatName
from farm_mcp_tools.runner import ToolContext, ToolRunner
from farm_mcp_tools.tools import ACTS, READ_ONLY, say

ConsoleLevel = Literal["all", "log", "info", "warning", "error", "debug"]
AuditUrl = Annotated[
    str, Field(description="Go to this URL first; empty audits the page that is open.")
]
AUDITS = {
    "run_accessibility_audit": (
        tasks_pb2.AUDIT_KIND_ACCESSIBILITY,
        "Audit the page's accessibility (WCAG 2.x A and AA rules, by axe-core, in every "
        "frame): a score 0-100 and each failing check with the elements and a fix.",
    ),
    "run_performance_audit": (
        tasks_pb2.AUDIT_KIND_PERFORMANCE,
        "Audit the page's speed: its load timings and Web Vitals (TTFB, FCP, LCP, CLS) "
        "against budgets, scored 0-100 with what to fix.",
    ),
    "run_seo_audit": (
        tasks_pb2.AUDIT_KIND_SEO,
        "Audit the page's SEO: title, meta description, canonical, robots, hreflang, "
        "headings, image alt, crawlable links and status, scored 0-100 with fixes.",
    ),
    "run_best_practices_audit": (
        tasks_pb2.AUDIT_KIND_BEST_PRACTICES,
        "Audit security headers (CSP, HSTS, X-Content-Type-Options, framing, "
        "Referrer-Policy), cookie flags, mixed content and console errors, scored 0-100.",
    ),
}


class Cookie(BaseModel):
    """A cookie to set, for a domain (and path) or for a URL."""

    name: str = Field(description="Its name.")
    value: str = Field(description="Its value.")
    domain: str = Field(default="", description="The domain, e.g. 'example.com' (or give url).")
    path: str = Field(default="", description="Its path; default '/'.")
    url: str = Field(default="", description="Instead of domain and path: the URL it is for.")
    expires: int = Field(default=0, description="Expiry in seconds since the epoch; 0: session.")
    http_only: bool = Field(default=False, description="Hidden from the page's scripts.")
    secure: bool = Field(default=False, description="Sent over https only.")
    same_site: SameSiteName = Field(
        default="", description="Strict, Lax or None (as get_cookies answers); empty: Lax."
    )


def register_inspect_tools(server: MCPServer, runner: ToolRunner) -> None:
    """Declares the log, audit, cookie, emulation and screencast tools."""
    _register_logs(server, runner)
    for name, (kind, description) in AUDITS.items():
        _register_audit(server, runner, name, kind, description)
    _register_setup(server, runner)
    _register_screencast(server, runner)


def _register_logs(server: MCPServer, runner: ToolRunner) -> None:
    async def collected(ctx: ToolContext, *, console: bool) -> FarmBrowser:
        """The connection's browser after collecting what happened since the last call."""
        await runner.run(ctx, lambda: commands.collect(console=console, network=not console))
        return runner.connections.browser(ctx)

    lines = runner.limits.max_log_lines

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_console_logs(
        ctx: ToolContext,
        level: Annotated[
            ConsoleLevel, Field(description="Only this level; 'all' by default.")
        ] = "all",
    ) -> list[ContentBlock]:
        """The console messages of the browser's pages since it opened, oldest first."""
        browser = await collected(ctx, console=True)
        shown = [m for m in browser.console if level in ("all", m.level)]
        return say(replies.console_lines(shown, lines))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_console_errors(ctx: ToolContext) -> list[ContentBlock]:
        """The console errors and uncaught exceptions of the browser's pages since it opened."""
        browser = await collected(ctx, console=True)
        errors = [m for m in browser.console if m.level == "error"]
        return say(replies.console_lines(errors, lines) if errors else "No console errors.")

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_network_logs(
        ctx: ToolContext,
        url_contains: Annotated[str, Field(description="Only requests whose URL has this.")] = "",
    ) -> list[ContentBlock]:
        """The requests of the browser's pages since it opened (URLs without their query)."""
        browser = await collected(ctx, console=False)
        shown = [r for r in browser.network if url_contains in r.url]
        return say(replies.network_lines(shown, lines))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_network_errors(ctx: ToolContext) -> list[ContentBlock]:
        """The requests that failed or answered an HTTP error (4xx, 5xx)."""
        browser = await collected(ctx, console=False)
        errors = [r for r in browser.network if replies.failed(r)]
        return say(replies.network_lines(errors, lines) if errors else "No failed requests.")


def _register_audit(
    server: MCPServer,
    runner: ToolRunner,
    name: str,
    kind: "tasks_pb2.AuditKind.ValueType",
    description: str,
) -> None:
    async def run_audit(ctx: ToolContext, url: AuditUrl = "") -> list[ContentBlock]:
        result = await runner.run(ctx, lambda: commands.audit(kind, url))
        return say(replies.audit_text(result))

    server.add_tool(
        run_audit,
        name=name,
        description=description,
        annotations=READ_ONLY,
        structured_output=False,
    )


def _register_setup(server: MCPServer, runner: ToolRunner) -> None:
    @server.tool(annotations=ACTS, structured_output=False)
    async def set_cookies(
        cookies: Annotated[list[Cookie], Field(description="The cookies to set.")],
        ctx: ToolContext,
    ) -> list[ContentBlock]:
        """Give the browser cookies (e.g. a login), used by its pages from now on."""
        given = [CookieIn(**cookie.model_dump()) for cookie in cookies]
        result = await runner.run(ctx, lambda: commands.set_cookies(given))
        return say(replies.done(f"Set {len(given)} cookie(s).", result))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def get_cookies(ctx: ToolContext) -> list[ContentBlock]:
        """The browser's cookies for the open page, as JSON."""
        result = await runner.run(ctx, lambda: commands.collect(cookies=True))
        return say(replies.cookie_lines(result.cookies))

    @server.tool(annotations=ACTS, structured_output=False)
    async def emulate_device(
        ctx: ToolContext,
        device: Annotated[
            str, Field(description="A device Playwright knows, e.g. 'iPhone 13', 'Pixel 7'.")
        ] = "",
        width: Annotated[int, Field(description="Viewport width in CSS pixels.", ge=0)] = 0,
        height: Annotated[int, Field(description="Viewport height in CSS pixels.", ge=0)] = 0,
        device_scale_factor: Annotated[
            float, Field(description="Device pixel ratio (0: keep).", ge=0)
        ] = 0.0,
        is_mobile: Annotated[bool, Field(description="A mobile layout (meta viewport).")] = False,
        has_touch: Annotated[bool, Field(description="A touch screen.")] = False,
        user_agent: Annotated[str, Field(description="The User-Agent to send.")] = "",
    ) -> list[ContentBlock]:
        """Emulate a device by name, or a viewport (with scale, touch, mobile, user agent)."""
        emulation = Emulation(
            device, width, height, device_scale_factor, is_mobile, has_touch, user_agent
        )
        result = await runner.run(ctx, lambda: commands.emulate(emulation))
        return say(replies.done("Emulation set.", result))

    @server.tool(annotations=ACTS, structured_output=False)
    async def reset_emulation(ctx: ToolContext) -> list[ContentBlock]:
        """Undo every emulation and cookie or setup change since the browser opened."""
        result = await runner.run(ctx, commands.reset_emulation)
        return say(replies.done("Emulation reset.", result))


def _register_screencast(server: MCPServer, runner: ToolRunner) -> None:
    @server.tool(annotations=ACTS, structured_output=False)
    async def start_screencast(
        ctx: ToolContext,
        format: Annotated[
            VideoFormatName, Field(description="webm (default), mp4 or gif.")
        ] = "webm",
    ) -> list[ContentBlock]:
        """Start recording the browser's screen; stop_screencast stores the video."""
        result = await runner.run(ctx, lambda: commands.screencast(start=True, video_format=format))
        return say(replies.screencast_text(result, runner.link(ctx)))

    @server.tool(annotations=ACTS, structured_output=False)
    async def stop_screencast(ctx: ToolContext) -> list[ContentBlock]:
        """Stop recording and store the video; answers a link to it."""
        result = await runner.run(ctx, lambda: commands.screencast(stop=True))
        return say(replies.stopped_screencast_text(result, runner.link(ctx)))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def screencast_status(ctx: ToolContext) -> list[ContentBlock]:
        """Whether the screen is being recorded, with its frames and seconds so far."""
        result = await runner.run(ctx, commands.screencast)
        return say(replies.screencast_text(result, runner.link(ctx)))
