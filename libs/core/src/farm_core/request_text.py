"""Text the farm cannot keep: a NUL character, which no PostgreSQL text column holds.

PostgreSQL refuses a NUL in text (`invalid byte sequence for encoding "UTF8": 0x00`),
whether it is to be stored or only compared, so a request carrying one would fail
as a bug (INTERNAL) deep in a service, or, in an agent's report, never be stored.
Requests are refused at the door, naming the field; reported text has it replaced.
"""

import json
from typing import Any

from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

NUL = "\x00"
REPLACEMENT = "\ufffd"
"""What a NUL in text reported by a farm process (a page's error message) becomes."""


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The JSON path of `message`'s first text field holding a NUL (`labels["k"]`), or None.

    Keys and values of maps, items of lists and nested messages are looked into;
    bytes fields hold what they like.
    """
    for field, value in message.ListFields():
        path = f"{prefix}{field.json_name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            found = _in_map(field, value, path)
        elif field.is_repeated:
            found = next(
                (
                    hit
                    for index, item in enumerate(value)
                    if (hit := _in_value(field, item, f"{path}[{index}]")) is not None
                ),
                None,
            )
        else:
            found = _in_value(field, value, path)
        if found is not None:
            return found
    return None


def _in_map(field: FieldDescriptor, entries: Any, path: str) -> str | None:
    entry_type = field.message_type
    assert entry_type is not None  # a map field's entries are messages
    value_field = entry_type.fields_by_name["value"]
    for key, value in entries.items():
        entry = f"{path}[{json.dumps(key)}]"
        if isinstance(key, str) and NUL in key:
            return entry
        found = _in_value(value_field, value, entry)
        if found is not None:
            return found
    return None


def _in_value(field: FieldDescriptor, value: Any, path: str) -> str | None:
    if field.type == FieldDescriptor.TYPE_STRING:
        return path if NUL in value else None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return nul_field(value, f"{path}.")
    return None


def body_field_prefix(method: str) -> str:
    """The JSON name of `method`'s HTTP body field and a dot ("spec."); "" for none or "*".

    A path then starts as the caller wrote the body (`steps[0].click`, not
    `spec.steps[0].click`), as the services' own checks name fields.
    """
    try:
        found = descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))
    except KeyError:
        return ""
    body = found.GetOptions().Extensions[annotations_pb2.http].body
    return f"{found.input_type.fields_by_name[body].json_name}." if body not in ("", "*") else ""


def without_nul(text: str) -> str:
    """`text` with every NUL replaced by U+FFFD, so that any database can store it."""
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def scrub_nul(message: Message) -> None:
    """Replaces every NUL in `message`'s own text fields (not nested ones) by U+FFFD."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated and NUL in value:
            setattr(message, field.name, without_nul(value))
