"""The HTTP/JSON API's bindings as the transcoder matches them: verb, path template, request, body.

Every public RPC's google.api.http bindings (farm_core.public_api), each a verb and a
path template. A path is matched as Envoy's transcoder matches it: when its last
segment ends in `:<verb>` and some template has that custom verb, only the templates
with it match (`GET /v1/tasks/A:cancel` is not GetTask of "A:cancel"); otherwise the
templates without one do.

farm_auth.route_table finds a request's bindings among these once per request.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, ServiceDescriptor

from farm_core.public_api import PUBLIC_SERVICE_DESCRIPTORS

_VERBS = ("get", "put", "post", "delete", "patch")
JSON_API_PREFIX = "/v1/"
"""Where the HTTP/JSON API's paths start (envoy.yaml.j2's route for the transcoder)."""


@dataclass(frozen=True)
class HttpBinding:
    """One google.api.http binding of an RPC: its verb, its path, its request, its body."""

    method: str
    # The path template as the proto writes it (`/v1/tasks/{id}:cancel`), and its pattern.
    template: str
    path: re.Pattern[str]
    request: Descriptor
    # The request's field the body is, "*" for the whole request, "" for no body.
    body: str
    # The request's fields the path's variables set, by their proto paths ("id").
    path_fields: frozenset[str] = frozenset()


def _custom_verb(template: str) -> str:
    """The template's custom verb (`/v1/tasks/{id}:cancel` -> "cancel"), or ""."""
    _, colon, verb = template.rpartition(":")
    return verb if colon and not any(mark in verb for mark in "/{}") else ""


def _path_pattern(template: str, custom_verbs: frozenset[str]) -> re.Pattern[str]:
    """A regex for an http rule's path template (`/v1/tasks/{id}:cancel`)."""
    parts = re.split(r"(\{[^}]*\})", template)
    regex = "".join(
        ("[^/]+" if "=" not in part else ".+") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    if custom_verbs and not _custom_verb(template):
        # A path ending in a known custom verb is the verb's, never a variable's value.
        known = "|".join(re.escape(verb) for verb in sorted(custom_verbs))
        regex = rf"(?!.*:(?:{known})/?\Z)" + regex
    # Envoy's transcoder takes a path with a trailing slash for the path without one.
    return re.compile(regex + r"/?\Z")


def http_bindings(
    services: Iterable[ServiceDescriptor] = PUBLIC_SERVICE_DESCRIPTORS,
) -> tuple[HttpBinding, ...]:
    """Every HTTP binding of `services`' methods, from their google.api.http options."""
    rules = []
    for service in services:
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                if verb in _VERBS:
                    rules.append((verb.upper(), getattr(binding, verb), method.input_type, binding))
    custom_verbs = frozenset(filter(None, (_custom_verb(template) for _, template, _, _ in rules)))
    return tuple(
        HttpBinding(
            verb,
            template,
            _path_pattern(template, custom_verbs),
            request,
            binding.body,
            frozenset(re.findall(r"\{([^}=]+)", template)),
        )
        for verb, template, request, binding in rules
    )
