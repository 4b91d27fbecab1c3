"""A service given a bad setting stops at once naming the variable, without a traceback.

Each service is started as an operator starts it (`python -m farm_<service>`); its
settings' own checks, without a process, are in tests/unit/core/test_settings_refusals.py.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from farm_cli.launcher.tls import load_or_create_internal_tls
from farm_core.settings_load import BAD_SETTINGS_EXIT_CODE
from tests.service_start import SERVICES, start_service

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class BadSetting:
    """A variable given a value the service refuses, and what its refusal must (not) say."""

    variable: str
    value: str
    said: tuple[str, ...]
    unsaid: tuple[str, ...] = ()


def port_that_is_no_number(service: str) -> BadSetting:
    """The service's port as a word: refused naming its variable and value."""
    variable = f"FARM_{service.upper()}_PORT"
    return BadSetting(variable, "eighty", (f"{variable}='eighty'",))


MALFORMED_NATS_URL = BadSetting(
    "NATS_URL",
    "htp:/nats-host",
    ("NATS_URL='htp:/nats-host': 'htp:/nats-host' is not a server URL",),
)


def malformed_database_url(service: str) -> BadSetting:
    """A database URL without its `:`: refused naming both variables, its password hidden."""
    return BadSetting(
        "DATABASE_URL",
        "postgresql//farm:hush@db/farm",
        (f"FARM_{service.upper()}_DATABASE_URL / DATABASE_URL=", "not a database URL"),
        ("hush",),
    )


def edge_address_without_its_scheme(variable: str) -> BadSetting:
    """The edge's public address as a bare host name."""
    said = f"{variable}='farm.example.com': not an http:// or https:// URL"
    return BadSetting(variable, "farm.example.com", (said,))


def service_address_with_a_scheme(variable: str) -> BadSetting:
    """A service's host:port given as a URL."""
    return BadSetting(
        variable, "http://edge:8080", (f"{variable}='http://edge:8080': expected host:port",)
    )


# Pydantic checks every field before it gives up, so one start shows all of a service's
# refusals of a value's form at once: one process for each service, not one for each.
REFUSED_TOGETHER: dict[str, tuple[BadSetting, ...]] = {
    "auth": (port_that_is_no_number("auth"), MALFORMED_NATS_URL, malformed_database_url("auth")),
    "storage": (port_that_is_no_number("storage"), malformed_database_url("storage")),
    "scheduler": (
        port_that_is_no_number("scheduler"),
        MALFORMED_NATS_URL,
        malformed_database_url("scheduler"),
        edge_address_without_its_scheme("FARM_PUBLIC_URL"),
    ),
    "agent": (port_that_is_no_number("agent"),),
    "mcp": (
        port_that_is_no_number("mcp"),
        edge_address_without_its_scheme("FARM_MCP_PUBLIC_URL"),
        service_address_with_a_scheme("FARM_MCP_SCHEDULER_ADDRESS"),
    ),
    "console": (
        port_that_is_no_number("console"),
        service_address_with_a_scheme("FARM_CONSOLE_FARM_ADDRESS"),
    ),
}


@pytest.mark.parametrize("service", SERVICES)
def test_malformed_settings_are_each_refused_naming_their_variable(
    service: str, tmp_path: Path
) -> None:
    bad = REFUSED_TOGETHER[service]

    refusal = start_service(service, tmp_path, {each.variable: each.value for each in bad})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"{service} cannot start: {len(bad)} bad setting(s)" in refusal.stderr
    for each in bad:
        for text in each.said:
            assert text in refusal.stderr
        for text in each.unsaid:
            assert text not in refusal.stderr
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
