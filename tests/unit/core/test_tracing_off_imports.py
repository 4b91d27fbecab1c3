"""With tracing off, a service never loads the OpenTelemetry SDK, its exporter or psutil.

The SDK's half of tracing (farm_core.trace_export) is imported by
`configure_tracing` only when an OTLP endpoint is set: it costs every start CPU.
"""

import subprocess
import sys

import pytest

# Run in a fresh interpreter: this one has loaded the SDK for other tests.
REPORT = """
import sys
import farm_{service}.__main__
from farm_core.tracing import configure_tracing, shutdown_tracing
on = configure_tracing("{service}", {environ})
shutdown_tracing()
loaded = [name for name in ("opentelemetry.sdk", "opentelemetry.exporter") if name in sys.modules]
print(on, sorted(loaded))
"""
ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}


def loaded_after_configure(service: str, environ: dict[str, str]) -> str:
    """What the service's interpreter prints: tracing on, and the SDK modules it loaded."""
    code = REPORT.format(service=service, environ=environ)
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


@pytest.mark.parametrize("service", ["agent", "auth", "console", "mcp", "scheduler", "storage"])
def test_a_service_without_an_endpoint_leaves_the_sdk_unloaded(service: str) -> None:
    assert loaded_after_configure(service, {}) == "False []"


def test_an_endpoint_still_loads_the_sdk_and_turns_tracing_on() -> None:
    loaded = loaded_after_configure("scheduler", ENDPOINT)

    assert loaded == "True ['opentelemetry.exporter', 'opentelemetry.sdk']"
