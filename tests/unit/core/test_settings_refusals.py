"""A service given a bad setting stops at once naming the variable, without a traceback."""

from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from farm_cli.launcher.tls import load_or_create_internal_tls
from farm_core.settings import FarmSettings, checked_host_port, checked_public_url
from farm_core.settings_load import BAD_SETTINGS_EXIT_CODE, load_settings, variable_name
from tests.service_start import SERVICES, start_service


@pytest.mark.parametrize("service", SERVICES)
def test_a_port_that_is_no_number_is_refused_naming_its_variable(
    service: str, tmp_path: Path
) -> None:
    variable = f"FARM_{service.upper()}_PORT"

    refusal = start_service(service, tmp_path, {variable: "eighty"})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"{variable}='eighty'" in refusal.stderr
    assert "Traceback" not in refusal.stderr


class SecretSettings(BaseSettings):
    """Two settings, one secret, both refusing values under 8 characters."""

    model_config = SettingsConfigDict(env_prefix="FARM_TRIAL_")

    name: str = Field(default="farm-name", min_length=8)
    token: SecretStr = Field(default=SecretStr("secret-token"), min_length=8)


def test_a_refused_secret_is_named_but_not_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_TRIAL_NAME", "short")
    monkeypatch.setenv("FARM_TRIAL_TOKEN", "hush")

    with pytest.raises(SystemExit) as stop:
        load_settings(SecretSettings, "trial")

    said = capsys.readouterr().err
    assert stop.value.code == BAD_SETTINGS_EXIT_CODE
    assert "trial cannot start: 2 bad setting(s)" in said
    assert "FARM_TRIAL_NAME='short'" in said
    assert "FARM_TRIAL_TOKEN:" in said
    assert "hush" not in said


def test_a_shared_name_is_named_with_its_service_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from farm_storage.settings import StorageSettings

    monkeypatch.setenv("FARM_STORAGE_S3_THREADS", "many")
    monkeypatch.setenv("FARM_NATS_REPLICAS", "9")

    with pytest.raises(SystemExit):
        load_settings(StorageSettings, "storage")

    said = capsys.readouterr().err
    assert "FARM_STORAGE_S3_THREADS='many'" in said
    assert "FARM_NATS_REPLICAS='9': Input should be less than or equal to 5" in said


def port_settings() -> list[tuple[type[BaseSettings], str]]:
    """(settings class, field) of every port setting of every service."""
    from farm_agent.settings import AgentSettings
    from farm_auth.settings import AuthSettings
    from farm_console.settings import ConsoleSettings
    from farm_mcp.settings import McpSettings
    from farm_scheduler.settings import SchedulerSettings
    from farm_storage.settings import StorageSettings

    classes: list[type[BaseSettings]] = [
        AuthSettings,
        StorageSettings,
        SchedulerSettings,
        AgentSettings,
        McpSettings,
        ConsoleSettings,
    ]
    return [
        (settings, name)
        for settings in classes
        for name in settings.model_fields
        if name == "port" or name.endswith("_port")
    ]


@pytest.mark.parametrize(
    ("settings", "name"), port_settings(), ids=lambda item: getattr(item, "__name__", item)
)
@pytest.mark.parametrize("value", ["65536", "70000", "-1"])
def test_a_port_out_of_range_is_refused(
    settings: type[BaseSettings],
    name: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    variable = variable_name(settings, name)
    monkeypatch.setenv("FARM_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)

    with pytest.raises(SystemExit):
        load_settings(settings, "service")

    assert f"{variable}='{value}'" in capsys.readouterr().err


def test_every_service_has_its_ports_checked() -> None:
    assert len(port_settings()) == 14


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


def test_a_refused_urls_password_is_not_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NATS_URL", "nats://scheduler:hush@nats:4222/path")

    with pytest.raises(SystemExit):
        load_settings(FarmSettings, "scheduler")

    said = capsys.readouterr().err
    assert "NATS_URL='nats://…@nats:4222/path'" in said
    assert "hush" not in said


@pytest.mark.parametrize("service", ["auth", "storage", "scheduler"])
def test_a_malformed_database_url_is_refused_at_start(service: str, tmp_path: Path) -> None:
    refusal = start_service(service, tmp_path, {"DATABASE_URL": "postgresql//farm:hush@db/farm"})

    assert refusal.returncode == BAD_SETTINGS_EXIT_CODE, refusal.stderr
    assert f"FARM_{service.upper()}_DATABASE_URL / DATABASE_URL=" in refusal.stderr
    assert "not a database URL" in refusal.stderr
    assert "Traceback" not in refusal.stderr
    assert "hush" not in refusal.stderr


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "https://farm.example.com", "https://edge.example/farm/"]
)
def test_edge_addresses_are_taken(url: str) -> None:
    assert checked_public_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("farm.example.com", "not an http:// or https:// URL"),
        ("127.0.0.1:8080", "not an http:// or https:// URL"),
        ("ws://farm.example.com", "not an http:// or https:// URL"),
        ("https://farm.example.com:99999", "bad port"),
        ("https://farm.example.com/?x=1", "a query"),
    ],
)
def test_other_edge_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        checked_public_url(url)


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


@pytest.mark.parametrize("address", ["scheduler:7103", "10.0.0.5:7103", "[::1]:7103"])
def test_service_addresses_are_taken(address: str) -> None:
    assert checked_host_port(address) == address


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("http://scheduler:7103", "without a scheme or path"),
        ("scheduler", "expected host:port"),
        ("scheduler:71030", "not in 1-65535"),
        ("scheduler:0", "not in 1-65535"),
    ],
)
def test_other_service_addresses_are_refused(address: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        checked_host_port(address)


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
