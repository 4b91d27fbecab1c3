"""The screenshot and pdf tools' capture options through the whole farm, by the `mcp` client.

A clip cuts the image and omit_background leaves it transparent (checked with Pillow);
pageRanges prints only those pages; a bad option is refused naming it as a task's is,
and one only the page can refuse is OPTION_OUT_OF_RANGE.
"""

import base64
import io
import re

import pytest
from mcp.types import ImageContent
from PIL import Image

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import http_client
from tests.e2e.mcp_client import Connect, call, texts
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

_ARTIFACT = re.compile(r"/v1/artifacts/([^/\s]+):content")


def pdf_pages(farm: LocalFarm, key: str, answer: str) -> list[bytes]:
    """The page objects of the PDF the pdf tool's answer links to."""
    found = _ARTIFACT.search(answer)
    assert found, answer
    with http_client(farm, key) as http:
        response = http.get(f"/v1/artifacts/{found.group(1)}:content")
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"%PDF")
    return re.findall(rb"/Type\s*/Page\b", response.content)


async def test_a_clipped_screenshot_is_the_rectangle_and_can_be_transparent(
    connect: Connect, tenant_key: str, site: Site
) -> None:
    # The blue box spans x 100-200 and y 0-100: the clip's top left 50 x 50 is blue.
    clip = {"x": 150, "y": 50, "width": 120, "height": 90}
    async with connect(tenant_key) as client:
        await call(client, "navigate", url=site.url("/colour-boxes"))
        result = await client.call_tool("screenshot", {"clip": clip, "omit_background": True})
    assert not result.is_error, texts(result)
    image_block = next(block for block in result.content if isinstance(block, ImageContent))
    image = Image.open(io.BytesIO(base64.b64decode(image_block.data))).convert("RGBA")
    assert image.size == (120, 90)
    assert image.getpixel((10, 10)) == (0, 0, 255, 255)
    # No box there, and no white behind it.
    assert image.getchannel("A").getpixel((100, 80)) == 0


async def test_page_ranges_print_only_those_pages(
    farm: LocalFarm, connect: Connect, tenant_key: str, site: Site
) -> None:
    async with connect(tenant_key) as client:
        await call(client, "navigate", url=site.url("/three-pages"))
        whole = await call(client, "pdf")
        two = await call(client, "pdf", page_ranges="2-3", margin={"top": "1cm"}, scale=0.5)
    assert len(pdf_pages(farm, tenant_key, whole)) == 3
    assert len(pdf_pages(farm, tenant_key, two)) == 2


@pytest.mark.parametrize(
    ("tool", "arguments", "said"),
    [
        ("pdf", {"page_ranges": "0-2"}, "INVALID_ARGUMENT: pdf.pageRanges: pages count from 1"),
        ("pdf", {"scale": 0.05}, "INVALID_ARGUMENT: pdf.scale: must be 0 or between 0.1 and 2"),
        (
            "pdf",
            {"margin": {"left": "2furlongs"}},
            "INVALID_ARGUMENT: pdf.margin.left: must be a length in px, in, cm or mm",
        ),
        (
            "screenshot",
            {"format": "jpeg", "omit_background": True},
            "INVALID_ARGUMENT: screenshot.omitBackground: is only allowed with IMAGE_FORMAT_PNG",
        ),
        (
            "screenshot",
            {"selector": "p", "clip": {"x": 0, "y": 0, "width": 5, "height": 5}},
            "INVALID_ARGUMENT: screenshot.clip: is not allowed with screenshot.selector",
        ),
        ("pdf", {"page_ranges": "9-"}, "OPTION_OUT_OF_RANGE: pdf.pageRanges: '9-' names no page"),
        (
            "screenshot",
            {"clip": {"x": 5000, "y": 5000, "width": 10, "height": 10}},
            "OPTION_OUT_OF_RANGE: screenshot.clip: the rectangle leaves nothing of the viewport",
        ),
    ],
    ids=[
        "page-ranges-from-0",
        "scale-below-bound",
        "margin-unit",
        "omit-background-jpeg",
        "clip-with-selector",
        "page-ranges-past-end",
        "clip-outside",
    ],
)
async def test_a_bad_capture_option_is_a_tool_error_naming_it_as_a_tasks(
    over_http: Connect,
    tenant_key: str,
    site: Site,
    tool: str,
    arguments: dict[str, object],
    said: str,
) -> None:
    async with over_http(tenant_key) as client:
        await call(client, "navigate", url=site.url("/three-pages"))
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert said in texts(result), texts(result)
