"""A field that takes one value, given twice in an HTTP call's query: named before the transcoder.

Envoy's grpc_json_transcoder sets a query parameter's field once for each value, so
for a field that is not repeated the last value wins without a word:
`GET /v1/tasks?status=TASK_STATUS_QUEUED&status=TASK_STATUS_RUNNING` lists the
RUNNING tasks only, where the caller may well have meant both. Envoy sends the auth
service each call's path with its query, and this refuses such a call with a 400
naming the parameter. A repeated field (`label`) takes every value, as it should.

A parameter for a field the path sets (`GET /v1/tasks/A?id=B`) is refused too: the
transcoder lets the query win, so the call acted on B while its path, and Envoy's
access log, said A (the body's like is refused by the transcoder itself,
`reject_binding_body_field_collisions`).
"""

from collections import Counter
from urllib.parse import parse_qsl

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from farm_auth.route_table import PathRoutes


def _fields(message: Descriptor, name: str) -> list[FieldDescriptor]:
    """The fields a parameter `name` ("pageSize", "page_size", "a.b") walks to; [] if none."""
    fields: list[FieldDescriptor] = []
    within: Descriptor | None = message
    for part in name.split("."):
        if within is None:
            return []
        field = next((f for f in within.fields if part in (f.json_name, f.name)), None)
        if field is None:
            return []
        fields.append(field)
        within = field.message_type
    return fields


def query_refusal(method: str, routes: PathRoutes) -> str | None:
    """The message naming the first refused parameter of the query of `routes`, or None.

    Refused: a parameter for a field the path sets, or one given more than once for a
    field that takes one value. A parameter the request has no field for is left to the
    transcoder, which refuses it in its own words.
    """
    if not routes.query:
        return None
    binding = routes.bindings.get(method)
    if binding is None:
        return None
    counts = Counter(name for name, _ in parse_qsl(routes.query, keep_blank_values=True))
    for name, count in counts.items():
        fields = _fields(binding.request, name)
        if not fields:
            continue
        proto_path = ".".join(field.name for field in fields)
        if any(
            proto_path == bound or proto_path.startswith(f"{bound}.")
            for bound in binding.path_fields
        ):
            return f"{name}: is given by the path {routes.path}; do not give it in the query too"
        if count > 1 and not fields[-1].is_repeated:
            return f"{name}: takes one value, got {count}; give it once"
    return None
