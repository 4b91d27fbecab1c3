"""A service given a bad setting stops at once naming the variable, without a traceback.

Each service is started as an operator starts it (`python -m farm_<service>`); its
settings' own checks, without a process, are in tests/unit/core/test_settings_refusals.py.
"""

from pathlib import Path

import pytest

from farm_cli.launcher.tls import load_or_create_internal_tls
from farm_core.settings_load import BAD_SETTINGS_EXIT_CODE
from tests.service_start import SERVICES, start_service

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", SERVICES)
def test_a_port_that_is_no_number_is_refused_naming_its_variable(
    service: str, tmp_path: Path
) -> None:
    variable = f"FARM_{service.upper()}_PORT"

    refusal = start_service(service, tmp_path, {variable: "eighty"})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"{variable}='eighty'" in refusal.stderr
    assert "Traceback" not in refusal.stderr


def internal_tls(folder: Path) -> dict[str, str]:
    """The three internal TLS settings, for real files of a local CA under `folder`."""
    files = load_or_create_internal_tls(folder)
    return {
        "FARM_INTERNAL_TLS_CERT": str(files.cert),
        "FARM_INTERNAL_TLS_KEY": str(files.key),
        "FARM_INTERNAL_TLS_CA": str(files.ca),
    }


@pytest.mark.parametrize("service", ["auth", "scheduler"])
def test_a_missing_tls_file_is_named_at_start(service: str, tmp_path: Path) -> None:
    settings = internal_tls(tmp_path / "tls") | {"FARM_INTERNAL_TLS_CA": "/nowhere/ca.pem"}

    refusal = start_service(service, tmp_path, settings)

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert "FARM_INTERNAL_TLS_CA='/nowhere/ca.pem': cannot read it: No such file" in refusal.stderr
    assert "Traceback" not in refusal.stderr


def test_a_key_that_is_not_the_certificates_is_named_at_start(tmp_path: Path) -> None:
    settings = internal_tls(tmp_path / "tls")
    other_key = tmp_path / "other-key.pem"
    other_key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    settings["FARM_INTERNAL_TLS_KEY"] = str(other_key)

    refusal = start_service("storage", tmp_path, settings)

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert "FARM_INTERNAL_TLS_KEY=" in refusal.stderr
    assert "not a PEM certificate chain and its private key" in refusal.stderr


def test_a_nats_ca_that_is_no_certificate_is_named_at_start(tmp_path: Path) -> None:
    not_a_ca = tmp_path / "ca.pem"
    not_a_ca.write_text("hello\n")

    refusal = start_service("agent", tmp_path, {"NATS_CA_FILE": str(not_a_ca)})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"NATS_CA_FILE={str(not_a_ca)!r}: not a PEM CA certificate" in refusal.stderr


def test_the_consoles_missing_edge_ca_is_named_at_start(tmp_path: Path) -> None:
    refusal = start_service("console", tmp_path, {"FARM_CONSOLE_FARM_CA_FILE": "/nowhere.pem"})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert "FARM_CONSOLE_FARM_CA_FILE='/nowhere.pem': cannot read it" in refusal.stderr


@pytest.mark.parametrize("service", ["scheduler", "auth"])
def test_a_malformed_nats_url_is_refused_at_start(service: str, tmp_path: Path) -> None:
    refusal = start_service(service, tmp_path, {"NATS_URL": "htp:/nats-host"})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert "NATS_URL='htp:/nats-host': 'htp:/nats-host' is not a server URL" in refusal.stderr


@pytest.mark.parametrize("service", ["auth", "storage", "scheduler"])
def test_a_malformed_database_url_is_refused_at_start(service: str, tmp_path: Path) -> None:
    refusal = start_service(service, tmp_path, {"DATABASE_URL": "postgresql//farm:hush@db/farm"})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"FARM_{service.upper()}_DATABASE_URL / DATABASE_URL=" in refusal.stderr
    assert "not a database URL" in refusal.stderr
    assert "Traceback" not in refusal.stderr
    assert "hush" not in refusal.stderr


@pytest.mark.parametrize(
    ("service", "variable"),
    [("scheduler", "FARM_PUBLIC_URL"), ("mcp", "FARM_MCP_PUBLIC_URL")],
)
def test_an_edge_address_without_its_scheme_is_refused_at_start(
    service: str, variable: str, tmp_path: Path
) -> None:
    ports = {f"FARM_{service.upper()}_PORT": "0", f"FARM_{service.upper()}_METRICS_PORT": "0"}
    refusal = start_service(service, tmp_path, {variable: "farm.example.com", **ports})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"{variable}='farm.example.com': not an http:// or https:// URL" in refusal.stderr


@pytest.mark.parametrize(
    ("service", "variable"),
    [("mcp", "FARM_MCP_SCHEDULER_ADDRESS"), ("console", "FARM_CONSOLE_FARM_ADDRESS")],
)
def test_a_service_address_with_a_scheme_is_refused_at_start(
    service: str, variable: str, tmp_path: Path
) -> None:
    # Were it taken, the service would serve: on ports of its own, not the farm's.
    ports = {f"FARM_{service.upper()}_PORT": "0", f"FARM_{service.upper()}_METRICS_PORT": "0"}
    refusal = start_service(service, tmp_path, {variable: "http://edge:8080", **ports})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"{variable}='http://edge:8080': expected host:port" in refusal.stderr


def test_an_agent_without_its_chromium_is_refused_at_start_naming_the_setting(
    tmp_path: Path,
) -> None:
    settings = {
        "FARM_AGENT_CHROMIUM_PATH": str(tmp_path / "no-chromium"),
        "FARM_AGENT_PORT": "0",
        "FARM_AGENT_METRICS_PORT": "0",
        "FARM_AGENT_SESSION_PORT": "0",
    }

    refusal = start_service("agent", tmp_path, settings)

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"FARM_AGENT_CHROMIUM_PATH='{tmp_path / 'no-chromium'}': no executable" in refusal.stderr
    assert "Traceback" not in refusal.stderr
