"""A task's screencast in real Chromium: a video of its page from navigation to the action's end."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture, CapturedArtifact
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.errors import TaskFailure
from farm_agent.settings import AgentSettings
from tests.integration.agent.conftest import HAVE_CHROMIUM
from tests.pages import Site
from tests.video import brightness, decoded_frames, distinct_frames, first_frame_size

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


@pytest.fixture
def runner(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings]
) -> BrowserSpecRunner:
    return BrowserSpecRunner(shared_pool, make_settings())


def ticking(site: Site, **fields: Any) -> tasks_pb2.TaskSpec:
    """A screenshot of /ticking once its screen has gone black, white, grey, white and black."""
    return tasks_pb2.TaskSpec(
        url=site.url("/ticking"),
        steps=[tasks_pb2.Step(wait_for="#done")],
        screenshot=tasks_pb2.ScreenshotOptions(),
        viewport=tasks_pb2.Viewport(width=320, height=240),
        timeout_ms=20_000,
        **fields,
    )


def only_video(capture: Capture) -> CapturedArtifact:
    (video,) = [a for a in capture.artifacts if a.kind == tasks_pb2.ARTIFACT_KIND_VIDEO]
    return video


@pytest.mark.parametrize(
    ("video_format", "content_type"),
    [
        (tasks_pb2.VIDEO_FORMAT_WEBM, "video/webm"),
        (tasks_pb2.VIDEO_FORMAT_MP4, "video/mp4"),
        (tasks_pb2.VIDEO_FORMAT_GIF, "image/gif"),
    ],
    ids=["webm", "mp4", "gif"],
)
async def test_a_screencast_is_a_video_of_the_page_as_it_changed(
    runner: BrowserSpecRunner,
    site: Site,
    tmp_path: Path,
    video_format: "tasks_pb2.VideoFormat.ValueType",
    content_type: str,
) -> None:
    capture = await runner.run(
        ticking(site, screencast=tasks_pb2.ScreencastOptions(format=video_format))
    )
    video = only_video(capture)
    assert (video.name, video.content_type) == ("screencast", content_type)
    assert [a.name for a in capture.artifacts] == ["screenshot", "screencast"]
    path = tmp_path / "screencast"
    path.write_bytes(video.data)
    assert first_frame_size(path) == (320, 240)
    levels = [brightness(frame) for frame in distinct_frames(decoded_frames(path))]
    # The screen (nine tenths of the page) was black, white and grey in turn.
    assert len(levels) >= 4, levels
    assert min(levels) < 60 and max(levels) > 200, levels
    assert any(100 < level < 160 for level in levels), levels


async def test_the_frames_are_removed_whatever_the_end(
    runner: BrowserSpecRunner, shared_pool: BrowserPool, site: Site
) -> None:
    screencasts = shared_pool.scratch_dir / "screencasts"
    await runner.run(ticking(site, screencast=tasks_pb2.ScreencastOptions()))
    failing = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        steps=[tasks_pb2.Step(click="#missing")],
        screenshot=tasks_pb2.ScreenshotOptions(),
        screencast=tasks_pb2.ScreencastOptions(),
        timeout_ms=2_000,
    )
    with pytest.raises(TaskFailure, match=r"steps\[0\]\.click"):
        await runner.run(failing)
    assert not screencasts.exists() or not any(screencasts.iterdir())


async def test_a_video_that_cannot_be_made_leaves_the_task_its_other_artifacts(
    shared_pool: BrowserPool, make_settings: Callable[..., AgentSettings], site: Site
) -> None:
    runner = BrowserSpecRunner(shared_pool, make_settings(screencast_encode_seconds=0.001))
    capture = await runner.run(ticking(site, screencast=tasks_pb2.ScreencastOptions()))
    assert [a.name for a in capture.artifacts] == ["screenshot"]


async def test_a_task_without_a_screencast_has_no_video(
    runner: BrowserSpecRunner, site: Site
) -> None:
    capture = await runner.run(ticking(site))
    assert [a.name for a in capture.artifacts] == ["screenshot"]
