"""auth's tables of JSON values, held to the farm's real Envoy transcoder.

farm_auth.json_values refuses a value only when the transcoder would refuse it too
(or garble it), and lets through what the transcoder reads leniently. Its unit
tests list each kind; here each is posted through Envoy (whose fake auth checks no
body), so a transcoder that reads a value otherwise (a new Envoy) fails this test
rather than a client's call.
"""

from typing import Any

import httpx
import pytest

from tests.integration.cli.conftest import EdgeUnderTest
from tests.transcoder_values import (
    GARBLED_BY_THE_TRANSCODER,
    LEFT_TO_THE_TRANSCODER,
    SPEC,
    TRANSCODER_REFUSES,
    TRANSCODER_TAKES,
)
from tests.unit.cli.fake_auth import GOOD_KEY

pytestmark = pytest.mark.integration


def transcoded(edge: EdgeUnderTest, fields: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        return client.post(
            "/v1/tasks",
            json={**SPEC, **fields},
            headers={"authorization": f"Bearer {GOOD_KEY}"},
        )


@pytest.mark.parametrize(
    "fields", [fields for fields, _ in TRANSCODER_REFUSES] + LEFT_TO_THE_TRANSCODER
)
def test_the_transcoder_refuses_it_in_its_own_words(
    edge: EdgeUnderTest, fields: dict[str, Any]
) -> None:
    response = transcoded(edge, fields)

    assert response.status_code == 400, response.text
    # The field by its proto path under the body's (spec.timeout_ms), or by none.
    assert response.json()["message"].startswith("spec"), response.text


@pytest.mark.parametrize("fields", TRANSCODER_TAKES)
def test_the_transcoder_reads_it(edge: EdgeUnderTest, fields: dict[str, Any]) -> None:
    response = transcoded(edge, fields)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("fields", "_"), GARBLED_BY_THE_TRANSCODER)
def test_the_transcoder_passes_it_on_as_bytes_no_service_reads(
    edge: EdgeUnderTest, fields: dict[str, Any], _: str
) -> None:
    seen = len(edge.fakes.calls.seen)

    response = transcoded(edge, fields)

    # The fake scheduler's gRPC server cannot parse the request: it never reaches CreateTask.
    assert response.status_code == 500, response.text
    assert "CreateTask" not in [method for method, _, _ in edge.fakes.calls.seen[seen:]]
