"""The docs name every field a user writes or reads in tasks, session commands and sessions."""

from pathlib import Path
from typing import cast

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2

ROOT = Path(__file__).resolve().parents[2]
FIELD_DOCS = ("tasks.md", "api.md", "sessions.md")
"""tasks.md documents the vocabulary; api.md the basics; sessions.md the sessions."""
DOCS = "\n".join((ROOT / "docs" / name).read_text() for name in FIELD_DOCS)


def json_fields(message: Descriptor, seen: set[str] | None = None) -> list[str]:
    """`Message.jsonName` of every field of `message` and of the farm messages it holds."""
    seen = set() if seen is None else seen
    if message.full_name in seen:
        return []
    seen.add(message.full_name)
    found = []
    for field in message.fields:
        found.append(f"{message.name}.{field.json_name}")
        if field.message_type is not None and field.message_type.full_name.startswith("farm."):
            found.extend(json_fields(field.message_type, seen))
    return found


def is_documented(json_name: str) -> bool:
    """Named in code style (`name`, `name: …`) or as a JSON key ("name") in an example."""
    return any(form in DOCS for form in (f"`{json_name}`", f"`{json_name}", f'"{json_name}"'))


@pytest.mark.parametrize(
    "message",
    [
        tasks_pb2.TaskSpec,
        tasks_pb2.Task,
        sessions_pb2.SessionSpec,
        sessions_pb2.SessionCommand,
        sessions_pb2.Session,
    ],
    ids=lambda message: message.DESCRIPTOR.name,
)
def test_every_field_is_documented(message: type[Message]) -> None:
    # types-protobuf gives DESCRIPTOR as a union with upb's own class, as the SDK meets too.
    fields = json_fields(cast(Descriptor, message.DESCRIPTOR))
    missing = [name for name in fields if not is_documented(name.split(".")[1])]
    assert not missing, f"docs/{', docs/'.join(FIELD_DOCS)} do not name {missing}"
