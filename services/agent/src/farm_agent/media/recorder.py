"""Keeps a screencast's frames on disk and encodes them into a video (WebM, MP4 or GIF).

Chromium sends a frame when the screen changes, with the time it was drawn; each
frame is shown until the next one, so the video keeps the page's real pace. The
last one is shown until the recording ended, or for LAST_FRAME_SECONDS when it
was never ended (a session's whole recording).
"""

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from farm.tasks.v1 import tasks_pb2
from farm_agent.media.encoder import VideoFormat, encode, ffmpeg_command, video_shape
from farm_agent.settings import AgentSettings

log = logging.getLogger(__name__)

MIN_FRAME_SECONDS = 0.04
"""A frame is shown at least this long (25 frames a second at most)."""
LAST_FRAME_SECONDS = 1.0
"""How long the last frame of a recording that was never ended stays on screen."""
MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class RecordingLimits:
    """How much one recording keeps, and how long and large its encoding may be."""

    max_frames: int = 20_000
    max_frame_bytes: int = 512 * MEBIBYTE
    max_seconds: float = 86_400.0
    max_video_bytes: int = 64 * MEBIBYTE
    encode_seconds: float = 300.0

    @classmethod
    def of_screencasts(cls, settings: AgentSettings) -> "RecordingLimits":
        """The limits of a task's screencast and of a session's started screencast."""
        return cls(
            max_frames=settings.screencast_max_frames,
            max_frame_bytes=settings.screencast_max_frame_mb * MEBIBYTE,
            max_seconds=settings.screencast_max_seconds,
            max_video_bytes=settings.screencast_max_video_mb * MEBIBYTE,
            encode_seconds=settings.screencast_encode_seconds,
        )


@dataclass
class ScreenRecorder:
    """Frames of one recording, in order, bounded in count, bytes and time."""

    folder: Path
    # The video's size: the viewport's (frames of another size are fitted in).
    width: int
    height: int
    limits: RecordingLimits = field(default_factory=RecordingLimits)
    # Wall-clock seconds, as the frames' timestamps.
    started_at: float = field(default_factory=time.time)
    _times: list[float] = field(default_factory=list)
    _bytes: int = 0
    _full: bool = False
    _ended_at: float | None = None

    @property
    def frames(self) -> int:
        """Frames kept so far."""
        return len(self._times)

    @property
    def seconds(self) -> float:
        """How long the recording has run (until it ended), at most its limit."""
        until = self._ended_at if self._ended_at is not None else time.time()
        return min(max(0.0, until - self.started_at), self.limits.max_seconds)

    def add(self, jpeg: bytes, timestamp: float) -> None:
        """Keeps one frame drawn at `timestamp` (seconds); frames past the bounds are dropped."""
        if self._ended_at is not None:
            return
        if self._times and timestamp < self._times[-1]:
            timestamp = self._times[-1]
        if (
            len(self._times) >= self.limits.max_frames
            or self._bytes + len(jpeg) > self.limits.max_frame_bytes
            or timestamp - self.started_at > self.limits.max_seconds
        ):
            if not self._full:
                log.warning("recording in %s is full; later frames are not kept", self.folder)
                self._full = True
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / _frame_name(len(self._times))).write_bytes(jpeg)
        self._times.append(timestamp)
        self._bytes += len(jpeg)

    def end(self) -> None:
        """Keeps no more frames; the last one lasts until now (within the time limit)."""
        if self._ended_at is None:
            self._ended_at = min(time.time(), self.started_at + self.limits.max_seconds)

    async def encode(
        self, video: Path, video_format: VideoFormat = tasks_pb2.VIDEO_FORMAT_WEBM
    ) -> Path | None:
        """Encodes the frames into `video`; None when no frame was kept.

        Raises EncodingFailed when ffmpeg fails or runs past the limit's time.
        """
        if not self._times:
            return None
        playlist = self.folder / "frames.txt"
        playlist.write_text(concat_playlist(self._times, self._ended_at))
        ended_at = self._ended_at
        last_until = ended_at if ended_at is not None else self._times[-1] + LAST_FRAME_SECONDS
        shape = video_shape(
            video_format,
            self.width,
            self.height,
            max(last_until - self._times[0], MIN_FRAME_SECONDS),
            self.limits.max_video_bytes,
        )
        await encode(ffmpeg_command(playlist, video, shape), self.limits.encode_seconds)
        return video

    def discard(self) -> None:
        """Removes the kept frames."""
        shutil.rmtree(self.folder, ignore_errors=True)


def concat_playlist(times: list[float], ended_at: float | None = None) -> str:
    """The concat list for ffmpeg: each frame with how long it stays, the last one repeated.

    The last frame stays until `ended_at`, or LAST_FRAME_SECONDS without it.
    """
    lines = []
    for index, time_drawn in enumerate(times):
        if index + 1 < len(times):
            following = times[index + 1]
        elif ended_at is not None:
            following = ended_at
        else:
            following = time_drawn + LAST_FRAME_SECONDS
        lines.append(f"file '{_frame_name(index)}'")
        lines.append(f"duration {max(following - time_drawn, MIN_FRAME_SECONDS):.3f}")
    # The concat demuxer ignores the last entry's duration unless the file comes again.
    lines.append(f"file '{_frame_name(len(times) - 1)}'")
    return "\n".join(lines) + "\n"


def _frame_name(index: int) -> str:
    return f"frame-{index:06d}.jpg"
