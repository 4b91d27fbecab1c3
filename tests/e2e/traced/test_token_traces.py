"""No span keeps a `token=` query: Envoy traces every request's URL without its query.

On the package's traced farm (conftest.py), reading the sink's files.
"""

import secrets

import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_cli.traces.spans import SpanRecord, read_trace
from farm_core.trace_context import TRACEPARENT, new_traceparent, trace_id_of
from tests.e2e.conftest import Client, http_client
from tests.helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]


def ingress_span(farm: LocalFarm, traceparent: str) -> SpanRecord:
    """Envoy's span of the request sent with `traceparent`, once the sink has it."""
    trace_id = trace_id_of(traceparent)

    def found() -> SpanRecord | None:
        spans = read_trace(farm.config.traces_folder, trace_id)
        return next((span for span in spans if span.name == "ingress"), None)

    # Envoy sends its spans every 5 s.
    return eventually(found, within=20, message=f"Envoy's span of trace {trace_id}")


def test_a_token_placed_on_any_path_reaches_no_span_and_no_query_is_traced(
    traced_farm: LocalFarm, client: Client
) -> None:
    marker = f"leak{secrets.token_hex(8)}"
    # A token where none is taken: with a key (the call refuses the field) and without.
    with_key, without_key = new_traceparent(), new_traceparent()
    plain, bare = new_traceparent(), new_traceparent()
    answer = client.http.get(
        f"/v1/tasks?pageSize=1&token={marker}", headers={TRACEPARENT: with_key}
    )
    assert answer.status_code == 400, answer.text
    with http_client(traced_farm, None) as anonymous:
        refused = anonymous.get(f"/v1/whoami?token={marker}", headers={TRACEPARENT: without_key})
        assert refused.status_code == 401, refused.text
        # A session's paths are not traced at all (their tokens are real ones).
        session_path = f"/v1/sessions/ses_0000000000000000/cdp?token={marker}"
        assert anonymous.get(session_path, headers={TRACEPARENT: new_traceparent()}).is_error
    answer = client.http.get("/v1/tasks?pageSize=1", headers={TRACEPARENT: plain})
    assert answer.status_code == 200, answer.text
    assert client.http.get("/v1/whoami", headers={TRACEPARENT: bare}).status_code == 200

    urls = {
        name: ingress_span(traced_farm, traceparent).attributes["http.url"]
        for name, traceparent in {
            "with": with_key,
            "without": without_key,
            "plain": plain,
            "bare": bare,
        }.items()
    }
    assert urls["with"].endswith("/v1/tasks?(query withheld)"), urls
    assert urls["without"].endswith("/v1/whoami?(query withheld)"), urls
    # Any query: a key put in one by mistake, spelt any way, is kept by no trace either.
    assert urls["plain"].endswith("/v1/tasks?(query withheld)"), urls
    assert urls["bare"] == f"{traced_farm.envoy_url}/v1/whoami", urls
    # Nor does any other span of the farm's (the check's, the services').
    for traceparent in (with_key, without_key):
        for span in read_trace(traced_farm.config.traces_folder, trace_id_of(traceparent)):
            assert marker not in repr(span), span
    leaked = [
        path.name
        for path in traced_farm.config.traces_folder.iterdir()
        if marker in path.read_text(encoding="utf-8")
    ]
    assert leaked == []
