"""A session's screencast, started and stopped by its commands, in a real session browser."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent.sessions.commands import run_command
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.session import OpenSession
from farm_core.sessions import CloseReason
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session
from tests.integration.agent.fakes import FakeUploader, keeper_of
from tests.pages import Site
from tests.video import brightness, decoded_frames, distinct_frames, first_frame_size

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

MAX_TEXT_BYTES = 10_000


async def run(session: OpenSession, uploader: FakeUploader, **command: Any) -> tasks_pb2.TaskResult:
    return await run_command(
        session, sessions_pb2.SessionCommand(**command), keeper_of(uploader), MAX_TEXT_BYTES
    )


def start(video_format: "tasks_pb2.VideoFormat.ValueType") -> sessions_pb2.ScreencastControl:
    return sessions_pb2.ScreencastControl(start=True, format=video_format)


STOP = sessions_pb2.ScreencastControl(stop=True)


async def test_a_started_screencast_records_until_the_command_that_stops_it(
    manager: SessionManager, uploader: FakeUploader, site: Site, tmp_path: Path
) -> None:
    session = await open_session(manager)
    before = await run(session, uploader)
    assert before.HasField("screencast") and not before.screencast.recording
    started = await run(
        session,
        uploader,
        url=site.url("/ticking"),
        steps=[tasks_pb2.Step(wait_for="#done")],
        screencast=start(tasks_pb2.VIDEO_FORMAT_MP4),
    )
    assert started.screencast.recording
    assert started.screencast.format == tasks_pb2.VIDEO_FORMAT_MP4
    assert started.screencast.frames >= 1
    assert not started.artifacts
    # A command in between (a screen that changes while it runs): the screencast goes
    # on, more frames, more seconds.
    middle = await run(
        session, uploader, url=site.url("/ticking"), steps=[tasks_pb2.Step(wait_for="#done")]
    )
    assert middle.screencast.recording
    assert middle.screencast.frames > started.screencast.frames
    assert middle.screencast.seconds > started.screencast.seconds
    stopped = await run(session, uploader, screencast=STOP)
    assert not stopped.screencast.recording
    assert stopped.screencast.format == tasks_pb2.VIDEO_FORMAT_MP4
    assert stopped.screencast.frames >= middle.screencast.frames
    (video_ref,) = stopped.artifacts
    assert (video_ref.kind, video_ref.content_type) == (tasks_pb2.ARTIFACT_KIND_VIDEO, "video/mp4")
    ((tenant, stored_under, video),) = [u for u in uploader.uploads if u[2].name != "screenshot"]
    assert (tenant, stored_under, video.name) == ("acme", session.session_id, "screencast-1")
    path = tmp_path / "screencast.mp4"
    path.write_bytes(video.data)
    assert first_frame_size(path) == (320, 240)
    levels = [brightness(frame) for frame in distinct_frames(decoded_frames(path))]
    assert len(levels) >= 4, levels
    assert min(levels) < 60 and max(levels) > 200, levels
    # Stopped: later commands report it as it ended, and its frames are gone.
    after = await run(session, uploader)
    assert not after.screencast.recording and after.screencast.frames == stopped.screencast.frames
    assert not list(session.folder.glob("screencast-*"))


async def test_a_second_start_goes_on_and_a_stop_without_a_screencast_stores_nothing(
    manager: SessionManager, uploader: FakeUploader, site: Site
) -> None:
    session = await open_session(manager)
    nothing = await run(session, uploader, screencast=STOP)
    assert not nothing.artifacts and not nothing.screencast.recording
    await run(
        session, uploader, url=site.url("/page"), screencast=start(tasks_pb2.VIDEO_FORMAT_GIF)
    )
    again = await run(session, uploader, screencast=start(tasks_pb2.VIDEO_FORMAT_WEBM))
    assert again.screencast.recording
    assert again.screencast.format == tasks_pb2.VIDEO_FORMAT_GIF
    stopped = await run(session, uploader, screencast=STOP)
    assert [a.content_type for a in stopped.artifacts] == ["image/gif"]


async def test_a_session_closing_while_a_screencast_runs_stores_it(
    manager: SessionManager, uploader: FakeUploader, site: Site
) -> None:
    session = await open_session(manager)
    await run(
        session,
        uploader,
        url=site.url("/ticking"),
        steps=[tasks_pb2.Step(wait_for="#done")],
        screencast=start(tasks_pb2.VIDEO_FORMAT_WEBM),
    )
    await manager.close(session, CloseReason.CLOSED_BY_USER)
    ((tenant, stored_under, video),) = uploader.uploads
    assert (tenant, stored_under, video.name) == ("acme", session.session_id, "screencast-1")
    assert video.content_type == "video/webm"
    assert not session.folder.exists()


async def test_a_recorded_session_closes_while_its_page_shows_a_dialog(
    manager: SessionManager, uploader: FakeUploader, site: Site
) -> None:
    spec = sessions_pb2.SessionSpec(record=True)
    spec.viewport.CopyFrom(tasks_pb2.Viewport(width=320, height=240))
    session = await open_session(manager, spec=spec)
    held = await run(session, uploader, url=site.url("/dialog"))
    assert held.dialog.type == "alert"
    closing = asyncio.ensure_future(manager.close(session, CloseReason.IDLE_TIMEOUT))
    done, _ = await asyncio.wait([closing], timeout=30)
    if not done:
        # The screencast's stop waited for good behind the unanswered alert: end the
        # browser so that the close (and the manager's drain after the test) can finish.
        session.browser.process.kill()
        await closing
    assert done, "the close waited behind the page's dialog"
    assert closing.result().recording.content_type == "video/webm"
    assert not session.folder.exists()
