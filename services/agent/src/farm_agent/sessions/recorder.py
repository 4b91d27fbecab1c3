"""Keeps a session's screencast frames on disk and encodes them into a WebM video on close.

Chromium sends a frame when the screen changes, with the time it was drawn; each
frame is shown until the next one, so the video keeps the session's real pace.
The encoder is the ffmpeg binary that the `imageio-ffmpeg` package carries.
"""

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import imageio_ffmpeg

log = logging.getLogger(__name__)

MIN_FRAME_SECONDS = 0.04
"""A frame is shown at least this long (25 frames a second at most)."""
LAST_FRAME_SECONDS = 1.0
"""How long the last frame stays on screen."""
VIDEO_CONTENT_TYPE = "video/webm"


class RecordingFailed(Exception):
    """ffmpeg could not encode the frames."""


@dataclass
class ScreenRecorder:
    """Frames of one session, in order, bounded in count and bytes."""

    folder: Path
    # The video's size: the session's viewport (frames of another size are fitted in).
    width: int
    height: int
    max_frames: int = 20_000
    max_bytes: int = 512 * 1024 * 1024
    _times: list[float] = field(default_factory=list)
    _bytes: int = 0
    _full: bool = False

    @property
    def frames(self) -> int:
        """Frames kept so far."""
        return len(self._times)

    def add(self, jpeg: bytes, timestamp: float) -> None:
        """Keeps one frame drawn at `timestamp` (seconds); frames past the bounds are dropped."""
        if self._times and timestamp < self._times[-1]:
            timestamp = self._times[-1]
        if len(self._times) >= self.max_frames or self._bytes + len(jpeg) > self.max_bytes:
            if not self._full:
                log.warning("recording in %s is full; later frames are not kept", self.folder)
                self._full = True
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / _frame_name(len(self._times))).write_bytes(jpeg)
        self._times.append(timestamp)
        self._bytes += len(jpeg)

    async def encode(self, video: Path, timeout_seconds: float = 300.0) -> Path | None:
        """Encodes the frames into `video` (WebM, VP8); None when no frame was kept."""
        if not self._times:
            return None
        width, height = self.width // 2 * 2, self.height // 2 * 2
        playlist = self.folder / "frames.txt"
        playlist.write_text(concat_playlist(self._times))
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(playlist),
            # Every frame fitted into the viewport's size (even, as VP8 needs): a frame
            # drawn before the viewport took effect, or of a page the client resized,
            # is scaled down and framed, not stretched.
            "-vf",
            f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,format=yuv420p",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "1M",
            str(video),
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(timeout_seconds):
                _, errors = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RecordingFailed(f"ffmpeg did not finish within {timeout_seconds:g} s") from None
        if process.returncode != 0:
            raise RecordingFailed(f"ffmpeg failed: {errors.decode(errors='replace')[-500:]}")
        return video

    def discard(self) -> None:
        """Removes the kept frames."""
        shutil.rmtree(self.folder, ignore_errors=True)


def concat_playlist(times: list[float]) -> str:
    """The concat list for ffmpeg: each frame with how long it stays, the last one repeated."""
    lines = []
    for index, time in enumerate(times):
        following = times[index + 1] if index + 1 < len(times) else time + LAST_FRAME_SECONDS
        lines.append(f"file '{_frame_name(index)}'")
        lines.append(f"duration {max(following - time, MIN_FRAME_SECONDS):.3f}")
    # The concat demuxer ignores the last entry's duration unless the file comes again.
    lines.append(f"file '{_frame_name(len(times) - 1)}'")
    return "\n".join(lines) + "\n"


def _frame_name(index: int) -> str:
    return f"frame-{index:06d}.jpg"
