"""A bad setting is refused naming its variable, a secret not shown (the checks themselves).

Services started with bad settings: tests/integration/core/test_setting_refusals_at_start.py.
"""

from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from farm_core.settings import FarmSettings, checked_host_port, checked_public_url
from farm_core.settings_load import BAD_SETTINGS_EXIT_CODE, load_settings, variable_name


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


def test_a_refused_urls_password_is_not_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NATS_URL", "nats://scheduler:hush@nats:4222/path")

    with pytest.raises(SystemExit):
        load_settings(FarmSettings, "scheduler")

    said = capsys.readouterr().err
    assert "NATS_URL='nats://…@nats:4222/path'" in said
    assert "hush" not in said


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
