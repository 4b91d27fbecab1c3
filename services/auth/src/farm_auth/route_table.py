"""Which RPCs an HTTP/JSON path names, found once per request from a table made at start.

The edge check asks three things of a /v1/ path: the methods it takes (the 405
below), the request its query sets (query_params), and where its body goes
(json_body). Asked by scanning every google.api.http binding's regular expression,
once for each, they cost auth about 30 µs a create. The table groups the bindings by
the first two segments of their templates (`/v1/tasks` and `/v1/tasks/{id}:cancel`
under ("v1", "tasks"), `/v1/tasks:run` under ("v1", "tasks:run")), so a path is
matched against its own few patterns, once, and the three answers read from that.

A template's pattern matches only paths whose first two segments are the template's
own, as long as those hold no variable; a template whose do is tried on every path.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from google.protobuf.descriptor import Descriptor, ServiceDescriptor

from farm_auth.http_routes import JSON_API_PREFIX, HttpBinding, http_bindings
from farm_core.public_api import PUBLIC_SERVICE_DESCRIPTORS


@dataclass(frozen=True)
class BodyRoute:
    """Where the JSON body of one HTTP binding's requests goes."""

    # The message the body's JSON is: the request's, or its field named by `body`.
    message: Descriptor
    # A body that is one field of the request may be null (that field's default, which
    # the transcoder takes); the whole request may not.
    takes_null: bool


def body_route(binding: HttpBinding) -> BodyRoute | None:
    """Where `binding`'s JSON body goes; None for a GET without one, or a scalar body field."""
    if not binding.body and binding.method == "GET":
        return None
    # A POST (DELETE, ...) whose rule names no body still has its JSON body read as
    # the whole request by the transcoder (a body's `id` other than the path's is
    # refused as conflicting), and any other field dropped without a word.
    message: Descriptor | None = binding.request
    if binding.body not in ("*", ""):
        message = binding.request.fields_by_name[binding.body].message_type
    if message is None:  # a scalar body field: nothing named in it
        return None
    return BodyRoute(message, binding.body != "*")


_Key = tuple[str, str]
_Placed = tuple[int, HttpBinding]
"""A binding and its place among all the bindings (the first of a method wins)."""

_EMPTY: Mapping[str, HttpBinding] = MappingProxyType({})
_NO_BODIES: Mapping[str, BodyRoute] = MappingProxyType({})


class PathRoutes(NamedTuple):
    """What one request's path is bound to: its bindings and body routes, by HTTP method."""

    # The path without its query, and the query ("" if none).
    path: str
    query: str
    # The first binding of each method whose template matches, in the protos' order.
    bindings: Mapping[str, HttpBinding] = _EMPTY
    # The first binding of each method whose JSON body the transcoder reads.
    bodies: Mapping[str, BodyRoute] = _NO_BODIES

    @property
    def allowed(self) -> tuple[str, ...]:
        """The methods the path takes, sorted; () if it names no RPC."""
        return tuple(sorted(self.bindings))


def _key(path: str) -> _Key:
    """A path's first two segments: ("v1", "tasks") for /v1/tasks/t1:cancel."""
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[0]:
        return ("", "")
    return (parts[1], parts[2])


def _routes_of(
    placed: Iterable[_Placed], bodies: Mapping[int, BodyRoute]
) -> tuple[Mapping[str, HttpBinding], Mapping[str, BodyRoute]]:
    """The first binding, and first body route, of each method among `placed`, in place order."""
    by_method: dict[str, HttpBinding] = {}
    body_by_method: dict[str, BodyRoute] = {}
    for index, binding in sorted(placed, key=lambda one: one[0]):
        by_method.setdefault(binding.method, binding)
        if index in bodies:
            body_by_method.setdefault(binding.method, bodies[index])
    return MappingProxyType(by_method), MappingProxyType(body_by_method)


@dataclass(frozen=True)
class _Pattern:
    """One distinct path pattern, its bindings, and the routes they give a path it matches."""

    pattern: re.Pattern[str]
    placed: tuple[_Placed, ...]
    bindings: Mapping[str, HttpBinding]
    bodies: Mapping[str, BodyRoute]


class RouteTable:
    """Every public RPC's HTTP bindings, grouped so a path is matched against its own few."""

    def __init__(self, services: Iterable[ServiceDescriptor] = PUBLIC_SERVICE_DESCRIPTORS) -> None:
        bindings = http_bindings(services)
        self._bodies: dict[int, BodyRoute] = {}
        groups: dict[_Key | None, dict[str, list[_Placed]]] = {}
        for index, binding in enumerate(bindings):
            route = body_route(binding)
            if route is not None:
                self._bodies[index] = route
            template_key = _key(binding.template)
            # A variable in the first two segments: any path may match it.
            key = None if "{" in "".join(template_key) or not all(template_key) else template_key
            by_pattern = groups.setdefault(key, {})
            by_pattern.setdefault(binding.path.pattern, []).append((index, binding))
        anywhere = groups.pop(None, {})
        self._anywhere = self._patterns(anywhere)
        self._groups = {
            key: self._patterns({**by_pattern, **anywhere})
            for key, by_pattern in groups.items()
            if key is not None
        }
        # A template without variables is a path of its own: its routes (and those of it
        # with a trailing slash) are looked up once here, the busiest calls' (POST
        # /v1/tasks) then found by one dict lookup.
        self._literal = {
            path: self._matched(path, "")
            for binding in bindings
            if "{" not in binding.template
            for path in (binding.template, binding.template + "/")
        }

    def _patterns(self, by_pattern: Mapping[str, list[_Placed]]) -> tuple[_Pattern, ...]:
        return tuple(
            _Pattern(placed[0][1].path, tuple(placed), *_routes_of(placed, self._bodies))
            for placed in by_pattern.values()
        )

    def lookup(self, path: str) -> PathRoutes:
        """The routes of `path` (its query set apart), as the transcoder would match it."""
        bare_path, _, query = path.partition("?")
        known = self._literal.get(bare_path)
        if known is not None:
            return PathRoutes(bare_path, query, known.bindings, known.bodies) if query else known
        return self._matched(bare_path, query)

    def _matched(self, bare_path: str, query: str) -> PathRoutes:
        """The routes of `bare_path` from the patterns of its first two segments."""
        candidates = self._groups.get(_key(bare_path), self._anywhere)
        matched = [found for found in candidates if found.pattern.match(bare_path)]
        if not matched:
            return PathRoutes(bare_path, query)
        if len(matched) == 1:
            return PathRoutes(bare_path, query, matched[0].bindings, matched[0].bodies)
        placed = [one for found in matched for one in found.placed]
        return PathRoutes(bare_path, query, *_routes_of(placed, self._bodies))


@dataclass(frozen=True)
class MethodRefusal:
    """A known path asked with a method it does not take: the message and the Allow header."""

    message: str
    allow: str


def method_refusal(method: str, routes: PathRoutes) -> MethodRefusal | None:
    """The refusal of `method` on the path of `routes`, or None: it takes it, or names no RPC.

    The transcoder answers a known path asked with a method it does not take as it
    answers a path it does not know at all: 404 `Could not resolve /v1/tasks to a
    method.` (it has no option for anything else). So auth's check refuses such a call
    first, with 405, an `Allow` header and a message naming the methods the path takes.
    """
    if not routes.path.startswith(JSON_API_PREFIX) or method in routes.bindings:
        return None
    allowed = routes.allowed
    if not allowed:
        return None
    message = f"method: {method} is not allowed on {routes.path}; it takes {', '.join(allowed)}"
    return MethodRefusal(message, ", ".join(allowed))
