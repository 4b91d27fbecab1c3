"""Each VideoFormat is a playable video of its type whose frames are the screencast's, in order."""

import asyncio
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.media.encoder import (
    GIF_MAX_WIDTH,
    EncodingFailed,
    VideoFormat,
    video_type,
)
from farm_agent.media.recorder import RecordingLimits, ScreenRecorder
from tests.video import (
    brightness,
    decoded_frames,
    distinct_frames,
    duration_seconds,
    first_frame_size,
    jpeg_frames,
    noise_frames,
    video_stream,
)

# Black, white, dark grey, light grey: each half a second, the last until the end.
COLORS = ["black", "white", "0x404040", "0xC0C0C0"]
LEVELS = [0, 255, 64, 192]
START = 1_000_000.0
END = START + 2.5


def recorded(folder: Path, colors: list[str], size: str = "320x240") -> ScreenRecorder:
    width, height = (int(side) for side in size.split("x"))
    recorder = ScreenRecorder(folder / "frames", width, height, started_at=START)
    for index, jpeg in enumerate(jpeg_frames(folder / "source", colors, size)):
        recorder.add(jpeg, START + index * 0.5)
    return recorder


def encoded(recorder: ScreenRecorder, video: Path, video_format: VideoFormat) -> Path:
    # The recording ended at END: the last frame lasts until then.
    recorder._ended_at = END
    made = asyncio.run(recorder.encode(video, video_format))
    assert made == video
    return video


@pytest.mark.parametrize(
    ("video_format", "magic"),
    [
        (tasks_pb2.VIDEO_FORMAT_WEBM, b"\x1a\x45\xdf\xa3"),
        (tasks_pb2.VIDEO_FORMAT_MP4, b"ftyp"),
        (tasks_pb2.VIDEO_FORMAT_GIF, b"GIF89a"),
    ],
    ids=["webm", "mp4", "gif"],
)
def test_each_format_plays_the_frames_in_order_at_their_pace(
    tmp_path: Path, video_format: VideoFormat, magic: bytes
) -> None:
    video = encoded(recorded(tmp_path, COLORS), tmp_path / "video", video_format)
    assert magic in video.read_bytes()[:12]
    shown = [round(brightness(frame)) for frame in distinct_frames(decoded_frames(video))]
    assert len(shown) == len(LEVELS)
    for level, expected in zip(shown, LEVELS, strict=True):
        assert abs(level - expected) < 16, f"shown {shown}, drawn {LEVELS}"
    assert duration_seconds(video) == pytest.approx(END - START, abs=0.25)
    assert first_frame_size(video) == (320, 240)


def test_each_format_has_its_content_type_and_extension() -> None:
    assert [
        (video_type(f).content_type, video_type(f).extension)
        for f in (
            tasks_pb2.VIDEO_FORMAT_WEBM,
            tasks_pb2.VIDEO_FORMAT_MP4,
            tasks_pb2.VIDEO_FORMAT_GIF,
        )
    ] == [("video/webm", "webm"), ("video/mp4", "mp4"), ("image/gif", "gif")]
    assert video_type(tasks_pb2.VIDEO_FORMAT_UNSPECIFIED).format == tasks_pb2.VIDEO_FORMAT_WEBM
    with pytest.raises(EncodingFailed, match="no video format 42"):
        video_type(42)  # type: ignore[arg-type]


def test_an_mp4_is_h264_in_yuv420p_with_its_index_first_so_it_plays_while_it_downloads(
    tmp_path: Path,
) -> None:
    data = encoded(recorded(tmp_path, COLORS), tmp_path / "v.mp4", tasks_pb2.VIDEO_FORMAT_MP4)
    assert -1 < data.read_bytes().find(b"moov") < data.read_bytes().find(b"mdat")
    stream = video_stream(data)
    assert stream.startswith("h264") and "yuv420p" in stream


def test_a_gif_is_no_wider_than_its_bound_and_keeps_the_aspect(tmp_path: Path) -> None:
    recorder = recorded(tmp_path, ["white", "black"], size="1280x800")
    video = encoded(recorder, tmp_path / "v.gif", tasks_pb2.VIDEO_FORMAT_GIF)
    assert first_frame_size(video) == (GIF_MAX_WIDTH, 400)


@pytest.mark.parametrize(
    "video_format",
    [tasks_pb2.VIDEO_FORMAT_WEBM, tasks_pb2.VIDEO_FORMAT_MP4, tasks_pb2.VIDEO_FORMAT_GIF],
    ids=["webm", "mp4", "gif"],
)
def test_a_video_ends_near_its_byte_bound_and_still_plays(
    tmp_path: Path, video_format: VideoFormat
) -> None:
    frames = noise_frames(tmp_path / "noise", 60, size="160x120")
    whole = ScreenRecorder(tmp_path / "whole", 160, 120, started_at=START)
    for index, jpeg in enumerate(frames):
        whole.add(jpeg, START + index * 0.1)
    full = encoded(whole, tmp_path / "whole.video", video_format)
    limits = RecordingLimits(max_video_bytes=full.stat().st_size // 4)
    bounded = ScreenRecorder(tmp_path / "bounded", 160, 120, limits, started_at=START)
    for index, jpeg in enumerate(frames):
        bounded.add(jpeg, START + index * 0.1)
    cut = encoded(bounded, tmp_path / "cut.video", video_format)
    # ffmpeg stops once the file has reached the bound; what the encoder held still comes.
    assert limits.max_video_bytes <= cut.stat().st_size < full.stat().st_size * 0.75
    assert 0 < len(decoded_frames(cut)) < len(decoded_frames(full))
