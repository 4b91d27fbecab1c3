"""How often Envoy sends its spans and writes its access log: Envoy's defaults unless set."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.envoy import Endpoint, envoy_spec, local_envoy_settings, render_envoy_config
from farm_cli.main import main
from tests.unit.cli.envoy_render import COMPOSE_RENDER_ARGS, TEMPLATE, rendered, settings

COLLECTOR = Endpoint("127.0.0.1", 14317)
FLUSH_KEY = "tracing.opentelemetry.flush_interval_ms"


def runtime_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The keys of the configuration's static runtime layers; {} without a layered runtime."""
    layers = config.get("layered_runtime", {}).get("layers", [])
    return {key: value for layer in layers for key, value in layer["static_layer"].items()}


def test_envoy_sends_its_spans_at_its_own_pace_unless_told() -> None:
    assert "layered_runtime" not in rendered(otlp=COLLECTOR)
    assert runtime_keys(rendered(otlp=COLLECTOR, trace_flush_ms=150)) == {FLUSH_KEY: 150}
    # Without a collector there are no spans to send.
    assert "layered_runtime" not in rendered(trace_flush_ms=150)


def test_a_trace_flush_under_a_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 ms"):
        settings(otlp=COLLECTOR, trace_flush_ms=0)


def test_envoy_config_command_takes_the_trace_flush(tmp_path: Path) -> None:
    output = tmp_path / "envoy.yaml"
    assert main([*COMPOSE_RENDER_ARGS, "--trace-flush-ms", "250", "-o", str(output)]) == 0
    assert runtime_keys(yaml.safe_load(output.read_text())) == {FLUSH_KEY: 250}


def test_farm_up_takes_the_trace_flush_from_its_variable(tmp_path: Path) -> None:
    environ = {"FARM_HOME": str(tmp_path), "FARM_ENVOY_TRACE_FLUSH_MS": "300"}
    config = FarmConfig.from_environment(cwd=TEMPLATE.parent, environ=environ, traces=True)
    assert config.envoy_trace_flush_ms == 300
    assert local_envoy_settings(config, None, None).trace_flush_ms == 300
    unset = FarmConfig.from_environment(cwd=TEMPLATE.parent, environ={"FARM_HOME": str(tmp_path)})
    assert unset.envoy_trace_flush_ms is None
    with pytest.raises(ValueError, match="FARM_ENVOY_TRACE_FLUSH_MS must be a whole number"):
        FarmConfig.from_environment(
            cwd=TEMPLATE.parent, environ={**environ, "FARM_ENVOY_TRACE_FLUSH_MS": "0.5"}
        )


def test_envoy_writes_its_access_log_at_its_own_pace_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    assert "--file-flush-interval-msec" not in envoy_spec(path).argv
    argv = envoy_spec(path, log_flush_ms=100).argv
    assert argv[argv.index("--file-flush-interval-msec") + 1] == "100"


def test_envoy_accepts_both_flushes(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(render_envoy_config(TEMPLATE, settings(otlp=COLLECTOR, trace_flush_ms=100)))
    argv = [*envoy_spec(path, log_flush_ms=100).argv, "--mode", "validate"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
