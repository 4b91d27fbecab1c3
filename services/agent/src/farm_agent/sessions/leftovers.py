"""What a closing session leaves in storage: its profile, its recording, its screencast.

Each is kept if it can be; one that cannot is logged and does not stop the close.
A session that opened too late (nobody knows of it) is discarded: nothing is kept,
nor of one closed as OPEN_ABANDONED. Every close first winds the session down.
"""

import asyncio
import logging
import shutil

from playwright.async_api import Error as PlaywrightError

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.errors import TaskFailure
from farm_agent.media.encoder import EncodingFailed, video_type
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.saved.profiles import read_profile
from farm_agent.sessions.session import OpenSession

log = logging.getLogger(__name__)


async def save_profile(keeper: CaptureKeeper, session: OpenSession) -> None:
    """Saves the session's cookies and local storage to its profile; logs why if it cannot."""
    try:
        state = await read_profile(session.browser.context)
        await keeper.save_profile(session.owner, session.spec.profile, state)
    except (PlaywrightError, TaskFailure) as error:
        log.warning(
            "session %s: profile %r was not saved: %s",
            session.session_id,
            session.spec.profile,
            error,
        )


async def store_recording(
    keeper: CaptureKeeper, session: OpenSession
) -> tasks_pb2.ArtifactRef | None:
    """Encodes and stores the session's recording, if it was recorded; logs why if it cannot."""
    recorder = session.recorder
    if recorder is None:
        return None
    folder = recorder.folder
    try:
        video = await recorder.encode(folder.parent / "recording.webm")
        if video is None:
            return None
        data = await asyncio.to_thread(video.read_bytes)
        content_type = video_type(tasks_pb2.VIDEO_FORMAT_WEBM).content_type
        artifact = CapturedArtifact(
            "recording.webm", tasks_pb2.ARTIFACT_KIND_VIDEO, content_type, data
        )
        return await keeper.upload(session.owner, artifact)
    except (EncodingFailed, TaskFailure, OSError) as error:
        log.warning("session %s: the recording was not stored: %s", session.session_id, error)
        return None
    finally:
        recorder.discard()


async def store_screencast(keeper: CaptureKeeper, session: OpenSession) -> None:
    """Stores the screencast a command started and none stopped (it ends with the session)."""
    try:
        video = await session.screencasts.stop(
            lambda artifact: keeper.upload(session.owner, artifact)
        )
    except TaskFailure as error:
        log.warning("session %s: its screencast was not stored: %s", session.session_id, error)
        return
    if video is not None:
        log.info("session %s: its screencast was stored as %s", session.session_id, video.id)


async def close_keeping(
    keeper: CaptureKeeper, session: OpenSession
) -> tasks_pb2.ArtifactRef | None:
    """Closes the wound-down session's browser, keeping its profile, recording, screencast.

    Returns the stored recording, if any.
    """
    if session.spec.profile and session.browser.alive:
        await save_profile(keeper, session)
    await session.resources.aclose()
    recording = await store_recording(keeper, session)
    await store_screencast(keeper, session)
    return recording


async def wind_down(session: OpenSession) -> None:
    """Stops what works around the session's browser: its dialogs, screen, small tasks.

    The first step of any close; the browser itself is still open afterwards.
    """
    session.closing = True
    await session.dialogs.stop()
    await session.screencast.close()
    for task in list(session.background):
        task.cancel()


async def discard(session: OpenSession) -> None:
    """Closes the browser of a session nobody knows of and removes its folder.

    Nothing is stored and no close is published: the scheduler has no row for it.
    """
    try:
        await wind_down(session)
    finally:
        try:
            await session.resources.aclose()
        finally:
            await asyncio.to_thread(shutil.rmtree, session.folder, True)
