"""docs/operations.md's settings tables and the code agree: names both ways, and defaults."""

import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from farm_agent.settings import AgentSettings
from farm_auth.settings import AuthSettings
from farm_cli.launcher.ports import FarmPorts
from farm_console.settings import ConsoleSettings
from farm_core.egress.allowlist import AllowList
from farm_core.settings import FarmSettings
from farm_mcp.settings import McpSettings
from farm_scheduler.settings import SchedulerSettings
from farm_storage.settings import StorageSettings

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETTINGS: list[type[BaseSettings]] = [
    FarmSettings,
    AuthSettings,
    StorageSettings,
    SchedulerSettings,
    AgentSettings,
    McpSettings,
    ConsoleSettings,
]
FARM_NAME = re.compile(r"\bFARM_[A-Z0-9_]*[A-Z0-9]\b")
# Read by the code but no setting of a user's: the agent passes its driver-idle-GC
# setting (FARM_AGENT_DRIVER_IDLE_GC_SECONDS, documented) to Playwright's node driver.
INTERNAL = {"FARM_DRIVER_IDLE_GC_MS"}
# Named in the docs as no longer read (operations.md's upgrade notes).
RETIRED = {"FARM_IDENTITY_SECRET"}
# Their values depend on the machine; the docs give their form.
COMPUTED_DEFAULTS = {"FARM_AGENT_ID"}
NOTHING = {"—", "unset", "empty", ""}


def field_variables(settings: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The environment variables a settings field is read from, the preferred first."""
    if isinstance(field.validation_alias, AliasChoices):
        return [str(choice) for choice in field.validation_alias.choices]
    return [f"{settings.model_config.get('env_prefix', '')}{name}".upper()]


def settings_fields() -> Iterator[tuple[str, FieldInfo]]:
    """(variable, field) of every setting, each variable once."""
    seen: set[str] = set()
    for settings in SETTINGS:
        for name, field in settings.model_fields.items():
            variable = field_variables(settings, name, field)[0]
            if variable not in seen:
                seen.add(variable)
                yield variable, field


def documented_defaults() -> dict[str, str]:
    """The default column of operations.md's tables, by each variable its row names."""
    defaults: dict[str, str] = {}
    for match in re.finditer(r"^\|\s*((?:`[A-Z0-9_]+`\s*/?\s*)+)\|([^|]*)\|", OPERATIONS, re.M):
        for variable in re.findall(r"`([A-Z0-9_]+)`", match.group(1)):
            defaults.setdefault(variable, match.group(2).strip())
    return defaults


def shown(value: object) -> str:
    """A default as the docs write it: `true`, `6,3,1`, `.farm`; empty values as ''."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    if value is None or value == AllowList():
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list | frozenset):
        return ",".join(str(item) for item in value)
    return str(value)


def same_default(documented: str, code_default: object) -> bool:
    """Whether a default column (`60.0`, `—`, `` `.farm` ``) says the code's default."""
    first_code = re.search(r"`([^`]*)`", documented)
    text = first_code.group(1) if first_code else documented.split(" (")[0].strip()
    expected = shown(code_default)
    if expected == "":
        return text in NOTHING
    if text == expected:
        return True
    try:
        return float(text) == float(expected)
    except ValueError:
        return False


def code_default(field: FieldInfo) -> object:
    """The field's default, made by its factory where it has one."""
    if field.default is not PydanticUndefined:
        return field.default
    assert field.default_factory is not None, "a setting without a default"
    return field.default_factory()  # type: ignore[call-arg]


# Ids by variable name alone: a field's text names its validators' addresses, which
# differ between xdist's workers, and they must collect the same ids.
@pytest.mark.parametrize(
    ("variable", "field"), [pytest.param(*item, id=item[0]) for item in settings_fields()]
)
def test_operations_doc_gives_each_setting_its_default(variable: str, field: FieldInfo) -> None:
    if variable in COMPUTED_DEFAULTS:
        pytest.skip(f"{variable}'s default depends on the machine")
    documented = documented_defaults().get(variable)
    assert documented is not None, f"docs/operations.md has no row for `{variable}`"
    default = code_default(field)
    assert same_default(documented, default), (
        f"docs/operations.md gives `{variable}` the default {documented!r}; "
        f"the code's is {shown(default)!r}"
    )


def code_variables() -> set[str]:
    """Every FARM_* variable the code reads: settings, ports, and names it spells out."""
    names = {
        variable
        for settings in SETTINGS
        for name, field in settings.model_fields.items()
        for variable in field_variables(settings, name, field)
    }
    names |= {FarmPorts.variable(field) for field in FarmPorts.__dataclass_fields__}
    for folder in ("libs", "services", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if "_pb2" not in path.name:
                names |= set(FARM_NAME.findall(path.read_text()))
    return names


def test_every_farm_name_in_the_docs_is_in_the_code() -> None:
    known = code_variables() | RETIRED
    unknown = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in DOCS
        for name in set(FARM_NAME.findall(path.read_text()))
        if name not in known
    )
    assert not unknown, f"the docs name variables the code never reads: {unknown}"


def test_every_farm_variable_the_code_spells_out_is_documented() -> None:
    docs = "\n".join(path.read_text() for path in DOCS)
    spelled = {
        name
        for folder in ("libs", "services")
        for path in (ROOT / folder).rglob("*.py")
        if "_pb2" not in path.name
        for name in re.findall(r"[\"'](FARM_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text())
    }
    missing = sorted(name for name in spelled - INTERNAL if f"`{name}`" not in docs)
    assert not missing, f"the code reads {missing}, which no doc names"
