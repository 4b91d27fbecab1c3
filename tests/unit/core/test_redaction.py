"""URLs' user-info, query values and fragments are redacted in spans and log lines."""

import io
import json
import logging
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from farm_core.logs import configure_logging
from farm_core.redaction import redact_urls
from farm_core.span_redaction import RedactingSpanExporter


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        pytest.param(
            "net::ERR_EMPTY_RESPONSE at http://h:81/x?token=s3cret (cannot connect)",
            "net::ERR_EMPTY_RESPONSE at http://h:81/x?token=REDACTED (cannot connect)",
            id="query-value",
        ),
        pytest.param(
            "the page answered HTTP 404 (https://h/missing?a=1&sig=s3cret) and",
            "the page answered HTTP 404 (https://h/missing?a=REDACTED&sig=REDACTED) and",
            id="query-in-parentheses",
        ),
        pytest.param(
            "at https://me:s3cret@h/p failed",
            "at https://REDACTED:REDACTED@h/p failed",
            id="password",
        ),
        pytest.param(
            "to https://h/cb#access_token=s3cret.", "to https://h/cb#REDACTED.", id="fragment"
        ),
        pytest.param(
            'goto "https://h/?s3cret&&b=2"', 'goto "https://h/?REDACTED&&b=REDACTED"', id="bare"
        ),
        pytest.param(
            "sends traces to http://127.0.0.1:4317/v1 as farm-auth",
            "sends traces to http://127.0.0.1:4317/v1 as farm-auth",
            id="nothing-to-redact",
        ),
        pytest.param("no address at all", "no address at all", id="no-url"),
    ],
)
def test_a_urls_secrets_are_redacted_and_the_rest_kept(text: str, redacted: str) -> None:
    assert redact_urls(text) == redacted


class Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += spans
        return SpanExportResult.SUCCESS


def test_an_exported_span_keeps_no_secret_of_a_url_in_its_status_events_or_attributes() -> None:
    kept = Kept()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(kept)))
    tracer = provider.get_tracer("test")
    with (
        pytest.raises(RuntimeError),
        tracer.start_as_current_span(
            "page.navigate", attributes={"farm.host": "h", "n": 3}
        ) as span,
    ):
        span.set_attribute("http.url", "https://h/p?token=s3cret")
        raise RuntimeError("net::ERR_FAILED at https://me:s3cret@h/p?token=s3cret")
    with tracer.start_as_current_span("plain", attributes={"a": "b"}):
        pass

    failed, plain = kept.spans
    assert "s3cret" not in json.dumps(json.loads(failed.to_json()))
    assert failed.status.description == (
        "RuntimeError: net::ERR_FAILED at https://REDACTED:REDACTED@h/p?token=REDACTED"
    )
    assert failed.attributes == {
        "farm.host": "h",
        "n": 3,
        "http.url": "https://h/p?token=REDACTED",
    }
    assert failed.events[0].name == "exception"
    assert failed.context == span.get_span_context()
    assert plain.attributes == {"a": "b"}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_log_line_keeps_no_secret_of_a_url_in_its_message_or_traceback(log_format: str) -> None:
    stream = io.StringIO()
    configure_logging("agent", stream=stream, log_format=log_format)
    log = logging.getLogger("farm.test")
    log.info("task %s failed at %s", "t1", "https://h/p?token=s3cret")
    try:
        raise ValueError("https://me:s3cret@h/")
    except ValueError:
        log.exception("upload failed")

    text = stream.getvalue()
    assert "s3cret" not in text
    assert "https://h/p?token=REDACTED" in text
    assert "https://REDACTED:REDACTED@h/" in text
