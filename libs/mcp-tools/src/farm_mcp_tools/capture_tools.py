"""The capture tools: screenshot (an image) and pdf (a link to the printed page).

Their arguments are a task's screenshot and PDF options, in the tools' snake_case.
"""

import base64
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ContentBlock, ImageContent, TextContent
from pydantic import BaseModel, ConfigDict, Field

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools import commands, replies
from farm_mcp_tools.commands import ImageFormatName
from farm_mcp_tools.runner import ToolContext, ToolRunner
from farm_mcp_tools.tools import READ_ONLY, answers_dialogs, say

IMAGE_NEEDS_SCOPE = (
    "The image is not shown here: this API key lacks the scope 'artifacts.read' that "
    "reading it needs; open the link with a key that has it."
)


MAX_CLIP_PIXELS = 16384
"""The farm's bound of a clip's start and span, each way (farm_core.capture_options)."""


class Clip(BaseModel):
    """A rectangle of the screenshot in CSS pixels (a task's screenshot.clip)."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(ge=0, le=MAX_CLIP_PIXELS, description="From the left edge; 0 or more.")
    y: float = Field(ge=0, le=MAX_CLIP_PIXELS, description="From the top edge; 0 or more.")
    width: float = Field(gt=0, le=MAX_CLIP_PIXELS, description="Its width; above 0.")
    height: float = Field(gt=0, le=MAX_CLIP_PIXELS, description="Its height; above 0.")


class Margin(BaseModel):
    """A PDF's margins (a task's pdf.margin): CSS lengths, an empty side is 0."""

    model_config = ConfigDict(extra="forbid")

    top: str = Field(default="", description="e.g. '1cm', '20px', '0.5in', '10mm'.")
    right: str = Field(default="", description="The right margin, as top.")
    bottom: str = Field(default="", description="The bottom margin, as top.")
    left: str = Field(default="", description="The left margin, as top.")


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
        omit_background: Annotated[
            bool,
            Field(
                description="png only: leave the page's default white background out, so it is "
                "transparent (a background the page paints itself stays)."
            ),
        ] = False,
        clip: Annotated[
            Clip | None,
            Field(
                description="Only this rectangle, in CSS pixels, relative to the viewport (with "
                "full_page: to the page's top left); not with selector. The part outside is "
                "cut off; a rectangle wholly outside fails with OPTION_OUT_OF_RANGE."
            ),
        ] = None,
    ) -> list[ContentBlock]:
        """A screenshot of the page as an image: the viewport, the whole page, or a part.

        A part is one element (selector) or a rectangle (clip). omit_background makes a
        png with a transparent background. The farm refuses options that do not go
        together (clip with selector, omit_background with jpeg), naming the option.
        """
        area = clip.model_dump() if clip else None
        result = await runner.run(
            ctx,
            lambda: commands.screenshot(
                selector, full_page, format, quality, omit_background=omit_background, clip=area
            ),
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
        margin: Annotated[
            Margin | None,
            Field(
                description="The paper's margins, each a length in px, in, cm or mm (a bare "
                "number is px), at most 10in; empty sides are 0 (none given: 0)."
            ),
        ] = None,
        page_ranges: Annotated[
            str,
            Field(
                description="The pages to print, e.g. '1-3, 5' or '4-' (pages from 1); empty: "
                "all. Pages past the end are left out; none left fails with OPTION_OUT_OF_RANGE."
            ),
        ] = "",
        prefer_css_page_size: Annotated[
            bool,
            Field(
                description="Take the paper size from the page's CSS @page { size: ... } where "
                "it sets one, instead of paper_format."
            ),
        ] = False,
        scale: Annotated[
            float,
            Field(description="The rendering's scale, 0.1 to 2 (0: 1).", ge=0, le=2),
        ] = 0,
    ) -> list[ContentBlock]:
        """Print the page to PDF; answers a link to the PDF.

        Options as a farm task's: paper, orientation, margins, which pages, the page's
        own CSS paper size, and scale. The farm refuses a bad one naming it (e.g.
        pdf.pageRanges, pdf.margin.top).
        """
        sides = margin.model_dump() if margin else None
        result = await runner.run(
            ctx,
            lambda: commands.pdf(
                paper_format,
                landscape,
                print_background,
                margin=sides,
                page_ranges=page_ranges,
                prefer_css_page_size=prefer_css_page_size,
                scale=scale,
            ),
            makes_value=True,
        )
        ref = replies.artifact_of(result, tasks_pb2.ARTIFACT_KIND_PDF)
        if ref is None:
            return say(replies.done("The farm returned no PDF.", result))
        return say(replies.done(replies.artifact_line("PDF", ref, runner.link(ctx)), result))
