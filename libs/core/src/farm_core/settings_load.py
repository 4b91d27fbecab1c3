"""Reading a service's settings at start: a bad value stops it with the setting named.

pydantic names a refused field by its Python name (`port`), and a traceback buries
it; an operator has only the environment variable (`FARM_AUTH_PORT`) to go on.
"""

import re
import sys
from typing import TypeVar, get_args

from pydantic import AliasChoices, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from farm_core.settings import FarmSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

BAD_SETTINGS_EXIT_CODE = 2
"""The exit status of a process refused its settings (as a usage error's)."""

# A value of these is never echoed back: it may be a secret.
_SECRET_NAME = re.compile(r"password|secret|pepper|credential|_key$|^key_", re.IGNORECASE)
# A URL's user and password (nats://user:password@host, postgresql://user:password@host).
_USERINFO = re.compile(r"//[^/@\s]*@")


def load_settings(settings_class: type[SettingsT], service: str) -> SettingsT:
    """The settings read from the environment and the files they name are usable; else exits 2.

    Each refused variable is named on a line of its own on stderr.
    """
    try:
        settings = settings_class()
    except ValidationError as error:
        print(settings_error_text(settings_class, error, service), file=sys.stderr)
        raise SystemExit(BAD_SETTINGS_EXIT_CODE) from None
    problems = settings.file_problems() if isinstance(settings, FarmSettings) else []
    if problems:
        lines = [f"{service} cannot start: {len(problems)} bad setting(s)"]
        print("\n  ".join(lines + problems), file=sys.stderr)
        raise SystemExit(BAD_SETTINGS_EXIT_CODE)
    return settings


def settings_error_text(
    settings_class: type[BaseSettings], error: ValidationError, service: str
) -> str:
    """One line per refused setting, each naming its environment variable."""
    lines = [f"{service} cannot start: {error.error_count()} bad setting(s)"]
    for detail in error.errors():
        message = detail["msg"].removeprefix("Value error, ")
        name = detail["loc"][0] if detail["loc"] else None
        if name is None:
            lines.append(f"  {message}")
            continue
        variable = variable_name(settings_class, str(name))
        if is_secret(settings_class, str(name)):
            lines.append(f"  {variable}: {message}")
        else:
            value = _USERINFO.sub("//…@", repr(detail["input"]))
            lines.append(f"  {variable}={value}: {message}")
    return "\n".join(lines)


def variable_name(settings_class: type[BaseSettings], name: str) -> str:
    """The environment variable(s) a field (or an alias pydantic reports) is read from."""
    field = _field(settings_class, name)
    if field is None:
        return name
    if isinstance(field.validation_alias, AliasChoices):
        return " / ".join(str(choice) for choice in field.validation_alias.choices)
    return f"{settings_class.model_config.get('env_prefix', '')}{name}".upper()


def _field(settings_class: type[BaseSettings], name: str) -> FieldInfo | None:
    """The field named `name`, or whose aliases include it (pydantic reports the first)."""
    field = settings_class.model_fields.get(name)
    if field is not None:
        return field
    return next(
        (
            candidate
            for candidate in settings_class.model_fields.values()
            if isinstance(candidate.validation_alias, AliasChoices)
            and name in candidate.validation_alias.choices
        ),
        None,
    )


def is_secret(settings_class: type[BaseSettings], name: str) -> bool:
    """Whether a field's value must stay out of logs."""
    field = _field(settings_class, name)
    if field is not None:
        annotation = field.annotation
        if annotation is SecretStr or SecretStr in get_args(annotation) or not field.repr:
            return True
    return bool(_SECRET_NAME.search(name))
