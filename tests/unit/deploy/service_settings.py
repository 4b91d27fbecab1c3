"""The farm services' settings classes, the environment names they read, and the
settings a container's environment gives: what deployment files are checked against."""

import os
from collections.abc import Mapping

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from farm_agent.settings import AgentSettings
from farm_auth.settings import AuthSettings
from farm_console.settings import ConsoleSettings
from farm_core.settings import FarmSettings
from farm_mcp.settings import McpSettings
from farm_scheduler.settings import SchedulerSettings
from farm_storage.settings import StorageSettings

SETTINGS: Mapping[str, type[FarmSettings]] = {
    "auth": AuthSettings,
    "storage": StorageSettings,
    "scheduler": SchedulerSettings,
    "agent": AgentSettings,
    "mcp": McpSettings,
    "console": ConsoleSettings,
}
"""Each farm service (its compose and Kubernetes name) and its settings class."""

# The OpenTelemetry SDK reads these itself (farm_core.tracing).
SDK_PREFIX = "OTEL_"


def environment_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable `settings` reads: aliases, or prefix + field name."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def unknown_names(service: str, names: set[str]) -> set[str]:
    """The names in `names` that `service` does not read (the SDK's OTEL_* aside)."""
    known = environment_names(SETTINGS[service])
    return {name for name in names if name not in known and not name.startswith(SDK_PREFIX)}


def read_settings(service: str, environment: Mapping[str, str]) -> FarmSettings:
    """The settings `service` would run with in `environment` (and nothing else of ours)."""
    every_name = set().union(*(environment_names(cls) for cls in SETTINGS.values()))
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper() in every_name:
                patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, value)
        return SETTINGS[service]()
