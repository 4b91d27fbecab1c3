"""A PDF's margin, pageRanges, preferCssPageSize and scale, a screenshot's clip and
omitBackground, in real Chromium: each changes the document or image as asked."""

import io
import re
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from farm_core.task_errors import ErrorCode
from tests.pages import Site

pytestmark = pytest.mark.integration

# Chromium's page content starts by clipping to the printable box ("x y w h re", in
# 1/300 inch) and placing the page's CSS pixels in it ("a 0 0 d e f cm", a = 300/96 * scale).
_CONTENT_BOX = re.compile(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re\s+W\* n\s+q\s+([\d.]+) 0 0 ")


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


async def printed(runner: BrowserSpecRunner, url: str, **options: Any) -> bytes:
    capture = await runner.run(
        tasks_pb2.TaskSpec(url=url, timeout_ms=15_000, pdf=tasks_pb2.PdfOptions(**options))
    )
    return capture.artifacts[0].data


async def shot(runner: BrowserSpecRunner, url: str, **options: Any) -> Image.Image:
    capture = await runner.run(
        tasks_pb2.TaskSpec(
            url=url,
            timeout_ms=15_000,
            viewport=tasks_pb2.Viewport(width=400, height=300),
            screenshot=tasks_pb2.ScreenshotOptions(**options),
        )
    )
    return Image.open(io.BytesIO(capture.artifacts[0].data)).convert("RGBA")


def first_content_box(document: bytes) -> tuple[list[float], float]:
    """The first page's printable box (x, y, width, height in 1/300 in) and its CSS scale."""
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", document, re.S):
        try:
            text = zlib.decompress(stream.group(1))
        except zlib.error:
            continue
        if found := _CONTENT_BOX.search(text):
            return [float(n) for n in found.groups()[:4]], float(found.group(5))
    raise AssertionError("the PDF has no content box")


def page_count(document: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", document))


def media_boxes(document: bytes) -> set[bytes]:
    return set(re.findall(rb"/MediaBox\s*\[([^\]]*)\]", document))


async def test_margins_move_the_content_box(runner: BrowserSpecRunner, site: Site) -> None:
    plain, _ = first_content_box(await printed(runner, site.url("/three-pages")))
    document = await printed(
        runner,
        site.url("/three-pages"),
        margin=tasks_pb2.PdfMargin(top="1in", left="2cm", right="96px", bottom="10mm"),
    )
    x, y, width, height = first_content_box(document)[0]
    # Chromium rounds each margin down to whole CSS pixels (300/96 units each).
    pixel = 300 / 96
    assert plain[:2] == [0, 0]
    assert x == pytest.approx(300 * 2 / 2.54, abs=pixel)
    assert y == 300
    assert width == pytest.approx(plain[2] - 300 * 2 / 2.54 - 300, abs=2 * pixel)
    assert height == pytest.approx(plain[3] - 300 - 300 * 10 / 25.4, abs=2 * pixel)


async def test_page_ranges_print_only_those_pages(runner: BrowserSpecRunner, site: Site) -> None:
    assert page_count(await printed(runner, site.url("/three-pages"))) == 3
    assert page_count(await printed(runner, site.url("/three-pages"), page_ranges="1, 3")) == 2
    assert page_count(await printed(runner, site.url("/three-pages"), page_ranges="2-")) == 2
    # Pages past the document are left out, as Chromium does, while any page is left.
    assert page_count(await printed(runner, site.url("/three-pages"), page_ranges="2-5")) == 2
    assert page_count(await printed(runner, site.url("/three-pages"), page_ranges="1, 7")) == 1


async def test_page_ranges_past_the_end_fail_for_good_naming_the_field(
    runner: BrowserSpecRunner, site: Site
) -> None:
    with pytest.raises(TaskFailure) as caught:
        await printed(runner, site.url("/three-pages"), page_ranges="4-6, 9")
    assert caught.value.code is ErrorCode.OPTION_OUT_OF_RANGE
    assert caught.value.message.startswith("pdf.pageRanges: '4-6, 9' names no page of the")
    assert caught.value.retryable is False


async def test_margins_wider_than_the_paper_fail_for_good_naming_the_field(
    runner: BrowserSpecRunner, site: Site
) -> None:
    with pytest.raises(TaskFailure) as caught:
        await printed(
            runner,
            site.url("/three-pages"),
            paper_format="A6",  # 4.13in wide
            margin=tasks_pb2.PdfMargin(left="2.1in", right="2.1in"),
        )
    assert caught.value.code is ErrorCode.OPTION_OUT_OF_RANGE
    assert caught.value.message.startswith("pdf.margin: the margins leave no room on the paper")
    assert caught.value.retryable is False


async def test_prefer_css_page_size_takes_the_pages_size(
    runner: BrowserSpecRunner, site: Site
) -> None:
    # Without it the paper is A4, turned to the page's orientation.
    plain = media_boxes(await printed(runner, site.url("/css-page-size")))
    assert plain == {b"0 0 842.88 595.91998"}
    preferred = await printed(runner, site.url("/css-page-size"), prefer_css_page_size=True)
    assert media_boxes(preferred) == {b"0 0 288 216"}  # 4in by 3in in points


async def test_scale_scales_the_layout(runner: BrowserSpecRunner, site: Site) -> None:
    plain = first_content_box(await printed(runner, site.url("/three-pages")))[1]
    doubled = first_content_box(await printed(runner, site.url("/three-pages"), scale=2))[1]
    halved = first_content_box(await printed(runner, site.url("/three-pages"), scale=0.5))[1]
    assert doubled == pytest.approx(2 * plain)
    assert halved == pytest.approx(plain / 2)


async def test_omit_background_leaves_the_page_transparent(
    runner: BrowserSpecRunner, site: Site
) -> None:
    white = await shot(runner, site.url("/colour-boxes"))
    clear = await shot(runner, site.url("/colour-boxes"), omit_background=True)
    assert white.getpixel((300, 200)) == (255, 255, 255, 255)
    assert clear.getpixel((300, 200)) == (0, 0, 0, 0)
    assert clear.getpixel((50, 50)) == (255, 0, 0, 255)


async def test_clip_captures_the_rectangle(runner: BrowserSpecRunner, site: Site) -> None:
    image = await shot(
        runner,
        site.url("/colour-boxes"),
        clip=tasks_pb2.ScreenshotClip(x=50, y=10, width=100, height=40),
    )
    assert image.size == (100, 40)
    assert image.getpixel((10, 20)) == (255, 0, 0, 255)  # x 60: the red box
    assert image.getpixel((90, 20)) == (0, 0, 255, 255)  # x 140: the blue one


async def test_clip_with_full_page_is_relative_to_the_page(
    runner: BrowserSpecRunner, site: Site
) -> None:
    image = await shot(
        runner,
        site.url("/colour-boxes"),
        full_page=True,
        clip=tasks_pb2.ScreenshotClip(x=0, y=1450, width=60, height=100),
    )
    assert image.size == (60, 100)
    assert image.getpixel((30, 20)) == (255, 255, 255, 255)  # y 1470: above the green box
    assert image.getpixel((30, 80)) == (0, 255, 0, 255)  # y 1530: in it


async def test_a_clip_outside_the_viewport_fails_for_good_naming_the_field(
    runner: BrowserSpecRunner, site: Site
) -> None:
    with pytest.raises(TaskFailure) as caught:
        await shot(
            runner,
            site.url("/colour-boxes"),
            clip=tasks_pb2.ScreenshotClip(x=0, y=1450, width=60, height=100),
        )
    assert caught.value.code is ErrorCode.OPTION_OUT_OF_RANGE
    assert caught.value.message.startswith("screenshot.clip: ")
    assert caught.value.retryable is False
