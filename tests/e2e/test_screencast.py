"""Screencasts through the whole farm over HTTP/JSON: a task's, and a session's start to stop."""

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Client
from tests.pages import Site
from tests.video import brightness, decoded_frames, distinct_frames, first_frame_size

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

VIEWPORT = {"width": 320, "height": 240}
TICKING_STEPS = [{"waitFor": "#done"}]


def the_screen_changed(admin: Client, artifact: dict[str, Any], path: Path) -> None:
    """Downloads the video; it is 320x240 and shows /ticking's black, white and grey screens."""
    response = admin.artifact_bytes(artifact["id"])
    assert response.headers["content-type"] == artifact["contentType"]
    path.write_bytes(response.content)
    assert first_frame_size(path) == (320, 240)
    levels = [brightness(frame) for frame in distinct_frames(decoded_frames(path))]
    assert len(levels) >= 4, levels
    assert min(levels) < 60 and max(levels) > 200, levels


def test_a_tasks_screencast_is_stored_with_its_other_artifacts(
    admin: Client, site: Site, tmp_path: Path
) -> None:
    task = admin.run(
        {
            "url": site.url("/ticking"),
            "steps": TICKING_STEPS,
            "screenshot": {},
            "viewport": VIEWPORT,
            "screencast": {"format": "VIDEO_FORMAT_MP4"},
        }
    )
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    assert task["spec"]["screencast"] == {"format": "VIDEO_FORMAT_MP4"}
    kinds = {a["kind"]: a for a in task["result"]["artifacts"]}
    assert set(kinds) == {"ARTIFACT_KIND_SCREENSHOT", "ARTIFACT_KIND_VIDEO"}
    video = kinds["ARTIFACT_KIND_VIDEO"]
    assert video["contentType"] == "video/mp4"
    the_screen_changed(admin, video, tmp_path / "task.mp4")


def test_a_sessions_screencast_runs_from_start_to_stop_and_says_how_it_stands(
    admin: Client, site: Site, tmp_path: Path
) -> None:
    created = admin.http.post("/v1/sessions", json={"viewport": VIEWPORT})
    assert created.status_code == 200, created.text
    session_id = created.json()["id"]

    def run(**command: Any) -> dict[str, Any]:
        response = admin.http.post(f"/v1/sessions/{session_id}:run", json=command)
        assert response.status_code == 200, response.text
        return dict(response.json())

    try:
        assert run()["screencast"] == {
            "recording": False,
            "format": "VIDEO_FORMAT_UNSPECIFIED",
            "frames": 0,
            "seconds": 0,
        }
        started = run(
            url=site.url("/ticking"),
            steps=TICKING_STEPS,
            screencast={"start": True, "format": "VIDEO_FORMAT_GIF"},
        )["screencast"]
        assert started["recording"] is True
        assert started["format"] == "VIDEO_FORMAT_GIF"
        assert started["frames"] >= 1
        status = run()["screencast"]
        assert status["recording"] is True and status["seconds"] > 0
        stopped = run(screencast={"stop": True})
        assert stopped["screencast"]["recording"] is False
        assert stopped["screencast"]["frames"] >= status["frames"]
        (video,) = stopped["artifacts"]
        assert (video["kind"], video["contentType"]) == ("ARTIFACT_KIND_VIDEO", "image/gif")
        the_screen_changed(admin, video, tmp_path / "session.gif")
        listed = admin.http.get("/v1/artifacts", params={"taskId": session_id}).json()
        assert [a["id"] for a in listed["artifacts"]] == [video["id"]]
        refused = admin.http.post(
            f"/v1/sessions/{session_id}:run", json={"screencast": {"start": True, "stop": True}}
        )
        assert refused.status_code == 400
        assert "screencast: start and stop may not both be set" in refused.text
    finally:
        admin.http.post(f"/v1/sessions/{session_id}:close")
