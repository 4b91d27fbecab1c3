"""Unknown fields in an HTTP/JSON request body, found before Envoy's transcoder drops them.

Envoy's grpc_json_transcoder ignores a JSON field the request message does not have
(it has no option to refuse one), so a misspelt `cacheTtlSecond` would do nothing
without a word. Envoy sends the auth service the body of each /v1/ call with its
ext_authz check (envoy/envoy.yaml.j2), and this module names the first field of it
that the RPC's message does not know, at any depth, so the check refuses the call
with a 400 instead.
"""

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from farm_core.public_api import PUBLIC_SERVICE_DESCRIPTORS

_JSON_KINDS = {
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}
_VERBS = ("get", "put", "post", "delete", "patch")
# Well-known types have their own JSON forms (a Timestamp is a string, a Struct any
# object): the transcoder checks those, nothing is dropped from them.
_WELL_KNOWN_PREFIX = "google.protobuf."


@dataclass(frozen=True)
class BodyRoute:
    """One HTTP binding whose request has a body: where the body's JSON goes."""

    method: str
    path: re.Pattern[str]
    # The message the body's JSON is: the request's, or its field named by `body`.
    message: Descriptor


def _path_pattern(template: str) -> re.Pattern[str]:
    """A regex for an http rule's path template (`/v1/tasks/{id}:cancel`)."""
    parts = re.split(r"(\{[^}]*\})", template)
    regex = "".join(
        ("[^/]+" if "=" not in part else ".+") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    # Envoy's transcoder takes a path with a trailing slash for the path without one.
    return re.compile(regex + r"/?\Z")


def body_routes(services: Iterable[ServiceDescriptor]) -> tuple[BodyRoute, ...]:
    """The HTTP bindings with a body of `services`' methods, from their google.api.http."""
    routes = []
    for service in services:
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                if verb not in _VERBS or not binding.body:
                    continue
                message: Descriptor | None = method.input_type
                if binding.body != "*":
                    message = method.input_type.fields_by_name[binding.body].message_type
                if message is None:  # a scalar body field: nothing named in it
                    continue
                routes.append(
                    BodyRoute(verb.upper(), _path_pattern(getattr(binding, verb)), message)
                )
    return tuple(routes)


class BodyFields:
    """Finds the first JSON field of a request body that its RPC's message does not have."""

    def __init__(self, services: Iterable[ServiceDescriptor] = PUBLIC_SERVICE_DESCRIPTORS) -> None:
        self._routes = body_routes(services)
        self._fields: dict[str, dict[str, FieldDescriptor]] = {}

    def unknown_field(self, method: str, path: str, body: bytes) -> str | None:
        """The refusal's message naming the first unknown field, or None when there is none.

        JSON that is no object is refused too. A body that is not JSON, or a path that
        names no RPC with a body, is left to the transcoder, which refuses those in its
        own words.
        """
        route = self._route(method, path.partition("?")[0])
        if route is None or not body.strip():
            return None
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            # RecursionError: nested deeper than Python parses; the transcoder's own
            # depth limit refuses it (a 5xx here would read as auth being down).
            return None
        if not isinstance(value, dict):
            # The transcoder's own words for this start with an empty field path.
            kind = _JSON_KINDS.get(type(value), "a value")
            return f"body: must be a JSON object ({route.message.name}), got {kind}"
        return self._check(value, route.message, "")

    def _route(self, method: str, path: str) -> BodyRoute | None:
        for route in self._routes:
            if route.method == method and route.path.match(path):
                return route
        return None

    def _known(self, message: Descriptor) -> dict[str, FieldDescriptor]:
        """The message's fields by JSON name and by proto name, as the transcoder takes both."""
        known = self._fields.get(message.full_name)
        if known is None:
            known = {f.json_name: f for f in message.fields}
            known.update({f.name: f for f in message.fields})
            self._fields[message.full_name] = known
        return known

    def _check(self, value: object, message: Descriptor | None, at: str) -> str | None:
        if (
            message is None
            or not isinstance(value, dict)
            or message.full_name.startswith(_WELL_KNOWN_PREFIX)
        ):
            return None
        known = self._known(message)
        for name, item in value.items():
            field = known.get(name)
            where = f"{at}.{name}" if at else name
            if field is None:
                return _unknown(where, name, message)
            if field.message_type is None or item is None:
                continue
            found = self._check_field(item, field, where)
            if found is not None:
                return found
        return None

    def _check_field(self, item: object, field: FieldDescriptor, where: str) -> str | None:
        entry = field.message_type
        if entry is None:
            return None
        if entry.GetOptions().map_entry:
            value_type = entry.fields_by_name["value"].message_type
            if value_type is None or not isinstance(item, dict):
                return None
            items = [(f"{where}.{key}", value) for key, value in item.items()]
        elif field.is_repeated and isinstance(item, list):
            items = [(f"{where}[{index}]", value) for index, value in enumerate(item)]
            value_type = entry
        else:
            items, value_type = [(where, item)], entry
        for at, value in items:
            found = self._check(value, value_type, at)
            if found is not None:
                return found
        return None


def _unknown(where: str, name: str, message: Descriptor) -> str:
    """`where: unknown field`, with the nearest known name when one is close."""
    close = difflib.get_close_matches(name, [f.json_name for f in message.fields], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{where}: unknown field, {message.name} has no field {name!r}{hint}"
