"""The task form's PDF and screenshot options: sent as the TaskSpec's, refused at their field."""

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from starlette.testclient import TestClient

from farm.tasks.v1 import tasks_pb2
from farm_console.pages.tasks import SUBMIT_FORMS
from tests.unit.console.form_pages import KEY, RefusingFarm, console


@pytest.fixture
def invalid() -> Iterator[tuple[TestClient, RefusingFarm]]:
    farm = RefusingFarm(grpc.StatusCode.INVALID_ARGUMENT)
    for client in console(farm):
        yield client, farm


def sent_spec(farm: RefusingFarm) -> dict[str, object]:
    (request,) = farm.created
    assert isinstance(request, tasks_pb2.CreateTaskRequest)
    return json_format.MessageToDict(request.spec)


def test_a_pdfs_options_reach_the_farm_as_the_task_spec_names_them(
    invalid: tuple[TestClient, RefusingFarm],
) -> None:
    client, farm = invalid
    form = {
        "url": "https://a.test/",
        "action": "pdf",
        "margin": "1cm, 2mm",
        "pageRanges": "1-3, 5",
        "preferCssPageSize": "1",
        "scale": "0.5",
        "formToken": SUBMIT_FORMS.make(KEY),
    }

    client.post("/console/tasks", data=form)

    assert sent_spec(farm)["pdf"] == {
        "margin": {"top": "1cm", "right": "2mm", "bottom": "1cm", "left": "2mm"},
        "pageRanges": "1-3, 5",
        "preferCssPageSize": True,
        "scale": 0.5,
    }


def test_a_screenshots_clip_and_background_reach_the_farm(
    invalid: tuple[TestClient, RefusingFarm],
) -> None:
    client, farm = invalid
    form = {
        "url": "https://a.test/",
        "action": "screenshot",
        "omitBackground": "1",
        "clip": "0, 10.5, 200, 100",
        "formToken": SUBMIT_FORMS.make(KEY),
    }

    client.post("/console/tasks", data=form)

    assert sent_spec(farm)["screenshot"] == {
        "omitBackground": True,
        "clip": {"y": 10.5, "width": 200.0, "height": 100.0},  # x 0 is proto3's default
    }


@pytest.mark.parametrize(
    ("action", "field", "value", "said"),
    [
        (
            "screenshot",
            "margin",
            "1cm",
            "pdf.margin: Margin only goes with pdf, not with screenshot",
        ),
        (
            "content",
            "pageRanges",
            "1",
            "pdf.pageRanges: Pages only goes with pdf, not with content",
        ),
        ("screenshot", "scale", "1", "pdf.scale: Scale only goes with pdf, not with screenshot"),
        (
            "pdf",
            "omitBackground",
            "1",
            "screenshot.omitBackground: Transparent background only goes with screenshot, "
            "not with pdf",
        ),
        ("pdf", "clip", "0,0,1,1", "screenshot.clip: Clip only goes with screenshot, not with pdf"),
        ("pdf", "scale", "big", "pdf.scale: must be a number, got &#39;big&#39;"),
        ("pdf", "scale", "nan", "pdf.scale: must be a number, got &#39;nan&#39;"),
        ("pdf", "margin", "1,2,3,4,5", "pdf.margin: must be 1 to 4 comma-separated lengths"),
        ("screenshot", "clip", "0,0,10", "screenshot.clip: must be X,Y,WIDTH,HEIGHT in CSS"),
        ("screenshot", "clip", "0,0,a,b", "screenshot.clip: must be X,Y,WIDTH,HEIGHT in CSS"),
    ],
    ids=[
        "margin-with-screenshot",
        "pages-with-content",
        "scale-with-screenshot",
        "background-with-pdf",
        "clip-with-pdf",
        "scale-word",
        "scale-nan",
        "margin-five-sides",
        "clip-three-numbers",
        "clip-words",
    ],
)
def test_an_option_the_console_cannot_send_is_refused_at_its_field_before_any_call(
    invalid: tuple[TestClient, RefusingFarm], action: str, field: str, value: str, said: str
) -> None:
    client, farm = invalid
    form = {"url": "https://a.test/", "action": action, field: value}

    answer = client.post("/console/tasks", data=form)

    assert answer.status_code == 400
    assert f'<p class="error" role="alert" id="{field}-error">{said}' in answer.text
    assert f'value="{value}"' in answer.text or 'value="1" checked' in answer.text
    assert farm.created == []
