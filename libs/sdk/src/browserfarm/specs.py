"""Requests from what callers write: a TaskSpec from a dict or keyword options.

A spec is the farm's JSON form (`{"url": ..., "screenshot": {"fullPage": true}}`),
with field names in either camelCase or snake_case, or a TaskSpec message. Enum values
may be written in full (`IMAGE_FORMAT_JPEG`) or by their last word (`"jpeg"`).
"""

import difflib
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeAlias, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from browserfarm.errors import InvalidArgument
from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2

SpecLike: TypeAlias = Mapping[str, Any] | tasks_pb2.TaskSpec
"""What run, submit and map take: the farm's JSON form of a TaskSpec, or the message."""

ACTIONS = ("screenshot", "pdf", "content", "extract")
"""The actions the shortcut methods (client.screenshot(url, ...), ...) name."""

Built = TypeVar("Built", bound=Message)


def _enum_name(enum: EnumDescriptor, value: Any, path: str) -> Any:
    """`value` as the enum's full value name when it is written by its last word.

    InvalidArgument, naming the field and its values, for a name the enum does not have.
    """
    if not isinstance(value, str) or value in enum.values_by_name:
        return value
    prefix = enum.values[0].name.removesuffix("UNSPECIFIED")
    written = f"{prefix}{value.upper()}"
    if written in enum.values_by_name:
        return written
    known = [each.name.removeprefix(prefix).lower() for each in enum.values[1:]]
    raise InvalidArgument(
        f"{path}: one of {', '.join(known)}, not {value!r}{suggestion(value, known)}"
    )


def _normalized(value: Any, field: FieldDescriptor, path: str) -> Any:
    """One field's value with short enum names made full, in nested messages too."""
    if isinstance(value, list) and field.is_repeated:
        return [_normalized_item(item, field, f"{path}[{n}]") for n, item in enumerate(value)]
    return _normalized_item(value, field, path)


_SCALAR_KINDS: Mapping[int, tuple[tuple[type, ...], str]] = {
    FieldDescriptor.CPPTYPE_STRING: ((str, bytes), "a string"),
    FieldDescriptor.CPPTYPE_BOOL: ((bool,), "true or false"),
    # JSON writes 64-bit numbers as strings too; json_format checks their digits and range.
    FieldDescriptor.CPPTYPE_INT32: ((int, float, str), "a whole number"),
    FieldDescriptor.CPPTYPE_INT64: ((int, float, str), "a whole number"),
    FieldDescriptor.CPPTYPE_UINT32: ((int, float, str), "a whole number"),
    FieldDescriptor.CPPTYPE_UINT64: ((int, float, str), "a whole number"),
    FieldDescriptor.CPPTYPE_FLOAT: ((int, float, str), "a number"),
    FieldDescriptor.CPPTYPE_DOUBLE: ((int, float, str), "a number"),
}


def _checked_scalar(value: Any, field: FieldDescriptor, path: str) -> Any:
    """`value` if it is of the scalar field's kind (or null), else InvalidArgument naming `path`.

    json_format would name the field without its index or parents
    ("Failed to parse click field: expected string or bytes-like object, got 'int'").
    """
    kinds, wanted = _SCALAR_KINDS[field.cpp_type]
    # A bool is an int to Python, never a number to the farm.
    fits = bool in kinds if isinstance(value, bool) else isinstance(value, kinds)
    if value is None or fits:
        return value
    raise InvalidArgument(f"{path}: must be {wanted}, got {value!r:.60}")


def _normalized_item(value: Any, field: FieldDescriptor, path: str) -> Any:
    if field.enum_type is not None:
        return _enum_name(field.enum_type, value, path)
    message = field.message_type
    if message is None:
        return _checked_scalar(value, field, path)
    if message.GetOptions().map_entry:
        return _checked_map(value, message, path)
    if isinstance(value, Mapping):
        return normalized(value, message, f"{path}.")
    if message.full_name == "google.protobuf.Timestamp" and isinstance(value, datetime):
        return _timestamp(value, path)
    if not message.full_name.startswith("google.protobuf."):
        # json_format would say only "'int' object is not iterable".
        fields = ", ".join(each.json_name for each in message.fields)
        raise InvalidArgument(f"{path}: must be an object ({fields}), got {value!r}")
    return value


def _checked_map(value: Any, entry: Descriptor, path: str) -> Any:
    """A map field's JSON object with each scalar value checked (`labels.team: must be …`)."""
    value_field = entry.fields_by_name["value"]
    if not isinstance(value, Mapping) or value_field.message_type is not None:
        return value
    return {
        key: _normalized_item(item, value_field, f"{path}.{key}") for key, item in value.items()
    }


def _timestamp(value: datetime, path: str) -> str:
    """A datetime as a Timestamp's JSON; a naive one is refused, as its zone is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(
            f"{path}: a datetime with its time zone, such as datetime.now(UTC) + "
            f"timedelta(minutes=5), not the naive {value.isoformat()}"
        )
    return value.isoformat()


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(name) or next(
        (field for field in descriptor.fields if field.json_name == name), None
    )


def _folded(name: str) -> str:
    return name.replace("_", "").lower()


def suggestion(name: str, candidates: Iterable[str]) -> str:
    """A hint naming the candidate closest to `name` (case and underscores aside), or ""."""
    by_folded = {_folded(candidate): candidate for candidate in candidates}
    close = difflib.get_close_matches(_folded(name), list(by_folded), n=1, cutoff=0.7)
    return f"; did you mean {by_folded[close[0]]!r}?" if close else ""


def normalized(
    written: Mapping[str, Any], descriptor: Descriptor, path: str = ""
) -> dict[str, Any]:
    """`written` (a message's JSON form) with every short enum name made full.

    InvalidArgument names a field the message does not have, with the closest one.
    """
    result: dict[str, Any] = {}
    for name, value in written.items():
        field = _field(descriptor, name)
        if field is None:
            known = [each.json_name for each in descriptor.fields]
            raise InvalidArgument(
                f"{path}{name}: {descriptor.name} has no such field{suggestion(name, known)}"
            )
        result[name] = _normalized(value, field, f"{path}{name}")
    return result


def parsed(written: Mapping[str, Any], message: Built) -> Built:
    """`message` filled from its JSON form; InvalidArgument naming what does not fit."""
    try:
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        return json_format.ParseDict(normalized(written, descriptor), message)
    except json_format.ParseError as error:
        raise InvalidArgument(_parse_problem(str(error))) from error


_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")
_AT_FIELD = re.compile(r" at [\w.\[\]]+$")


def _parse_problem(text: str) -> str:
    """json_format's refusal as `field.path: problem` (its own form nests one clause a field)."""
    names = []
    while written := _FAILED_FIELD.match(text):
        names.append(written[1])
        text = text[written.end() :]
    problem = _AT_FIELD.sub("", text.rstrip(".")).rstrip(".")
    return f"{'.'.join(names)}: {problem}" if names else problem


def task_spec(spec: SpecLike) -> tasks_pb2.TaskSpec:
    """A TaskSpec of its own (the caller's is never changed) from `spec`."""
    if isinstance(spec, tasks_pb2.TaskSpec):
        copy = tasks_pb2.TaskSpec()
        copy.CopyFrom(spec)
        return copy
    if not isinstance(spec, Mapping):
        # Else a URL passed as the spec would fail as "'str' object has no attribute 'items'".
        raise InvalidArgument(
            "spec: must be a dict (the TaskSpec's JSON, such as {'url': ..., 'content': {}}) "
            f"or a farm.tasks.v1.TaskSpec, got {type(spec).__name__} {spec!r:.60}"
        )
    return parsed(spec, tasks_pb2.TaskSpec())


def extract_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """extract()'s fields as a dict; InvalidArgument for anything but a mapping.

    dict() of a list of strings would make {"h": "1"} of ["h1"] and run that.
    """
    if not isinstance(fields, Mapping):
        raise InvalidArgument(
            "fields: must be a dict of name -> selector, such as {'title': 'h1'}, "
            f"got {type(fields).__name__} {fields!r:.60}"
        )
    return dict(fields)


def with_idempotency_key(spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
    """`spec` with a new random idempotency key unless it has one.

    A retried create of it then returns the first task instead of making a second.
    """
    if not spec.idempotency_key:
        spec.idempotency_key = uuid.uuid4().hex
    return spec


def _with_action(
    base: Mapping[str, Any], action: str, options: Mapping[str, Any], message: Built
) -> Built:
    """`message` from `base` plus `action` with `options`.

    The options are split between the action's own fields (fullPage, format, ...) and
    the rest of the message (viewport, timeoutMs, ...).
    """
    if action not in ACTIONS:
        raise InvalidArgument(f"action: one of {', '.join(ACTIONS)}, not {action!r}")
    action_type = cast(Descriptor, message.DESCRIPTOR.fields_by_name[action].message_type)
    own = {name: value for name, value in options.items() if _field(action_type, name)}
    rest = {name: value for name, value in options.items() if name not in own}
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    for name in rest:
        if _field(descriptor, name) is None:
            known = [each.name for each in (*action_type.fields, *descriptor.fields)]
            raise InvalidArgument(
                f"{name}: neither a {action} option nor a {descriptor.name} field"
                f"{suggestion(name, known)}"
            )
    return parsed({**base, **rest, action: own}, message)


def action_spec(url: str, action: str, options: Mapping[str, Any]) -> tasks_pb2.TaskSpec:
    """The TaskSpec of one `action` on `url`, e.g. "screenshot" with {"full_page": True}."""
    return _with_action({"url": url}, action, options, tasks_pb2.TaskSpec())


def session_command(
    action: str | None, options: Mapping[str, Any], url: str | None = None
) -> sessions_pb2.SessionCommand:
    """A command for a session's page: steps, an optional navigation and at most one action."""
    base = {"url": url} if url else {}
    if action is None:
        return parsed({**base, **options}, sessions_pb2.SessionCommand())
    return _with_action(base, action, options, sessions_pb2.SessionCommand())
