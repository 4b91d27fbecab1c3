"""Screencast frames kept on disk, within their bounds, become a video that ffmpeg can decode."""

import asyncio
from pathlib import Path

from farm_agent.media.recorder import (
    LAST_FRAME_SECONDS,
    MIN_FRAME_SECONDS,
    RecordingLimits,
    ScreenRecorder,
    concat_playlist,
)
from tests.video import first_frame_size, jpeg_frames

START = 1_000_000.0
"""A recording's start, in the frames' clock (seconds since the epoch)."""


def test_each_frame_lasts_until_the_next_and_the_last_one_second() -> None:
    playlist = concat_playlist([10.0, 10.5, 10.5, 12.0]).splitlines()
    assert playlist[0] == "file 'frame-000000.jpg'"
    durations = [float(line.split()[1]) for line in playlist if line.startswith("duration")]
    assert durations == [0.5, MIN_FRAME_SECONDS, 1.5, LAST_FRAME_SECONDS]
    assert playlist[-1] == "file 'frame-000003.jpg'"


def test_the_last_frame_of_an_ended_recording_lasts_until_its_end() -> None:
    playlist = concat_playlist([10.0, 10.5], ended_at=14.5).splitlines()
    durations = [float(line.split()[1]) for line in playlist if line.startswith("duration")]
    assert durations == [0.5, 4.0]


def test_frames_past_the_bound_are_dropped(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 320, 240, RecordingLimits(max_frames=2))
    for index in range(4):
        recorder.add(b"jpeg", float(index))
    assert recorder.frames == 2
    recorder.discard()
    assert not (tmp_path / "frames").exists()


def test_frames_past_the_byte_bound_are_dropped(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 320, 240, RecordingLimits(max_frame_bytes=10))
    for index in range(4):
        recorder.add(b"jpeg", float(index))
    assert recorder.frames == 2


def test_frames_drawn_after_the_time_bound_or_the_end_are_dropped(tmp_path: Path) -> None:
    limits = RecordingLimits(max_seconds=5.0)
    recorder = ScreenRecorder(tmp_path / "frames", 320, 240, limits, started_at=START)
    for offset in (0.0, 4.9, 5.1):
        recorder.add(b"jpeg", START + offset)
    assert recorder.frames == 2
    assert recorder.seconds == 5.0, "the recording's time stops at its bound"
    ended = ScreenRecorder(tmp_path / "ended", 320, 240)
    ended.add(b"jpeg", ended.started_at)
    ended.end()
    ended.add(b"jpeg", ended.started_at + 0.1)
    assert ended.frames == 1


def test_frames_of_any_size_make_a_video_of_the_viewports_size(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 321, 241)
    # A first frame drawn before the viewport took effect, then frames of the viewport.
    recorder.add(jpeg_frames(tmp_path / "early", ["red"], "640x200")[0], 99.0)
    for index, jpeg in enumerate(jpeg_frames(tmp_path, ["white", "black", "blue"], "321x241")):
        recorder.add(jpeg, 100.0 + index * 0.5)
    video = asyncio.run(recorder.encode(tmp_path / "session.webm"))
    assert video is not None
    assert video.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a Matroska/WebM file
    assert first_frame_size(video) == (320, 240)


def test_no_frames_make_no_video(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 320, 240)
    assert asyncio.run(recorder.encode(tmp_path / "v.webm")) is None
