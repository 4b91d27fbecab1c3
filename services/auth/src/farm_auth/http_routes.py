"""The HTTP/JSON API's routes as the transcoder matches them, and the methods each path takes.

Every public RPC's google.api.http bindings (farm_core.public_api), each a verb and a
path template. A path is matched as Envoy's transcoder matches it: when its last
segment ends in `:<verb>` and some template has that custom verb, only the templates
with it match (`GET /v1/tasks/A:cancel` is not GetTask of "A:cancel"); otherwise the
templates without one do.

The transcoder answers a known path asked with a method it does not take as it answers
a path it does not know at all: 404 `Could not resolve /v1/tasks to a method.` (it has
no option for anything else). So auth's check refuses such a call first, with 405, an
`Allow` header and a message naming the methods the path takes.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
            _path_pattern(template, custom_verbs),
            request,
            binding.body,
            frozenset(re.findall(r"\{([^}=]+)", template)),
        )
        for verb, template, request, binding in rules
    )


class _Routed(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def path(self) -> re.Pattern[str]: ...


Routed = TypeVar("Routed", bound=_Routed)


def route_for(routes: Iterable[Routed], method: str, path: str) -> Routed | None:
    """The first of `routes` whose verb is `method` and whose path template matches `path`."""
    return next(
        (route for route in routes if route.method == method and route.path.match(path)), None
    )


@dataclass(frozen=True)
class MethodRefusal:
    """A known path asked with a method it does not take: the message and the Allow header."""

    message: str
    allow: str


class HttpMethods:
    """Finds a call whose path names an RPC but whose method none of that path's RPCs take."""

    def __init__(self, bindings: Iterable[HttpBinding] | None = None) -> None:
        self._bindings = tuple(http_bindings() if bindings is None else bindings)

    def allowed(self, path: str) -> tuple[str, ...]:
        """The methods `path` (its query ignored) takes, in a stable order; () if none."""
        bare_path = path.partition("?")[0]
        methods = {binding.method for binding in self._bindings if binding.path.match(bare_path)}
        return tuple(sorted(methods))

    def refusal(self, method: str, path: str) -> MethodRefusal | None:
        """The refusal of `method` on `path`, or None: the path takes it, or names no RPC."""
        if not path.startswith(JSON_API_PREFIX):
            return None
        allowed = self.allowed(path)
        if not allowed or method in allowed:
            return None
        bare_path = path.partition("?")[0]
        message = f"method: {method} is not allowed on {bare_path}; it takes {', '.join(allowed)}"
        return MethodRefusal(message, ", ".join(allowed))
