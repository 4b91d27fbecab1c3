"""A field that takes one value, given twice in an HTTP call's query: named before the transcoder.

Envoy's grpc_json_transcoder sets a query parameter's field once for each value, so
for a field that is not repeated the last value wins without a word:
`GET /v1/tasks?status=TASK_STATUS_QUEUED&status=TASK_STATUS_RUNNING` lists the
RUNNING tasks only, where the caller may well have meant both. Envoy sends the auth
service each call's path with its query, and this refuses such a call with a 400
naming the parameter. A repeated field (`label`) takes every value, as it should.
"""

from collections import Counter
from urllib.parse import parse_qsl

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from farm_auth.route_table import PathRoutes


def _field(message: Descriptor, name: str) -> FieldDescriptor | None:
    """The field a parameter `name` ("pageSize", "page_size", "a.b") sets, or None."""
    field: FieldDescriptor | None = None
    within: Descriptor | None = message
    for part in name.split("."):
        if within is None:
            return None
        field = next((f for f in within.fields if part in (f.json_name, f.name)), None)
        if field is None:
            return None
        within = field.message_type
    return field


def repeated_parameter(method: str, routes: PathRoutes) -> str | None:
    """The message naming the first such parameter of the query of `routes`, or None.

    A parameter the request has no field for is left to the transcoder, which
    refuses it in its own words.
    """
    if not routes.query:
        return None
    binding = routes.bindings.get(method)
    if binding is None:
        return None
    counts = Counter(name for name, _ in parse_qsl(routes.query, keep_blank_values=True))
    for name, count in counts.items():
        field = _field(binding.request, name) if count > 1 else None
        if field is not None and not field.is_repeated:
            return f"{name}: takes one value, got {count}; give it once"
    return None
