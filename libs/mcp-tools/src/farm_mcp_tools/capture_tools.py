"""The capture tools: screenshot (an image) and pdf (a link to the printed page).

Their arguments are a task's screenshot and PDF options, in the tools' snake_case.
"""

import base64
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ContentBlock, ImageContent, TextContent
from pydantic import Field

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools import commands, replies
from farm_mcp_tools.commands import ImageFormatName
from farm_mcp_tools.runner import ToolContext, ToolRunner
from farm_mcp_tools.tools import READ_ONLY, answers_dialogs, say

IMAGE_NEEDS_SCOPE = (
    "The image is not shown here: this API key lacks the scope 'artifacts.read' that "
    "reading it needs; open the link with a key that has it."
)


def register_capture_tools(server: MCPServer, runner: ToolRunner) -> None:
    """Declares screenshot and pdf."""

    @server.tool(annotations=READ_ONLY, structured_output=False)
    @answers_dialogs
    async def screenshot(
        ctx: ToolContext,
        selector: Annotated[
            str,
            Field(description="Only this element (CSS or snapshot reference); empty: the page."),
        ] = "",
        full_page: Annotated[
            bool, Field(description="The whole scrollable page instead of the viewport.")
        ] = False,
        format: Annotated[ImageFormatName, Field(description="png (default) or jpeg.")] = "png",
        quality: Annotated[int, Field(description="JPEG quality 1-100 (0: 80).", ge=0, le=100)] = 0,
    ) -> list[ContentBlock]:
        """A screenshot of the page (viewport, whole page or one element), as an image."""
        result = await runner.run(
            ctx,
            lambda: commands.screenshot(selector, full_page, format, quality),
            makes_value=True,
        )
        ref = replies.artifact_of(result, tasks_pb2.ARTIFACT_KIND_SCREENSHOT)
        if ref is None:
            return say(replies.done("The farm returned no screenshot.", result))
        line = replies.artifact_line("Screenshot", ref, runner.link(ctx))
        if not ref.size_bytes:
            raise ToolError(
                f"the browser made an empty image ({line}); a page taller than 65,535 pixels "
                "cannot be a JPEG: take a png, the viewport (full_page false) or one element"
            )
        if ref.size_bytes > runner.limits.max_image_bytes:
            limit = f"{runner.limits.max_image_bytes // 1024} KiB"
            return say(
                replies.done(
                    f"{line}\nOver {limit}, too large to show here: open the link, or take the "
                    "viewport (full_page false), one element (selector) or a jpeg with a "
                    "lower quality.",
                    result,
                )
            )
        image = await runner.artifact(ctx, ref)
        if image is None:
            return say(replies.done(f"{line}\n{IMAGE_NEEDS_SCOPE}", result))
        encoded = base64.b64encode(image.data).decode()
        return [
            ImageContent(type="image", data=encoded, mime_type=ref.content_type),
            TextContent(type="text", text=replies.done(line, result)),
        ]

    @server.tool(annotations=READ_ONLY, structured_output=False)
    @answers_dialogs
    async def pdf(
        ctx: ToolContext,
        paper_format: Annotated[
            str, Field(description="Letter, Legal, Tabloid, Ledger or A0-A6 (default A4).")
        ] = "A4",
        landscape: Annotated[bool, Field(description="Landscape orientation.")] = False,
        print_background: Annotated[
            bool, Field(description="Print background colours and images.")
        ] = True,
    ) -> list[ContentBlock]:
        """Print the page to PDF; answers a link to the PDF."""
        result = await runner.run(
            ctx, lambda: commands.pdf(paper_format, landscape, print_background), makes_value=True
        )
        ref = replies.artifact_of(result, tasks_pb2.ARTIFACT_KIND_PDF)
        if ref is None:
            return say(replies.done("The farm returned no PDF.", result))
        return say(replies.done(replies.artifact_line("PDF", ref, runner.link(ctx)), result))
