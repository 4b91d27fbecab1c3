"""The HTTP/JSON API's paths as the transcoder matches them, and the methods each takes."""

import re

import pytest
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

from farm_auth.http_routes import HttpBinding, http_bindings
from farm_auth.route_table import (
    BodyRoute,
    PathRoutes,
    RouteTable,
    body_route,
    method_refusal,
)

ROUTES = RouteTable()
BINDINGS = http_bindings()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/tasks", "GET, POST"),
        ("PUT", "/v1/tasks?pageSize=5", "GET, POST"),
        ("GET", "/v1/tasks:batchCreate", "POST"),
        ("GET", "/v1/tasks:run", "POST"),
        ("POST", "/v1/tasks/tsk_1", "GET"),
        ("GET", "/v1/tasks/tsk_1:cancel", "POST"),
        ("POST", "/v1/tasks/tsk_1:watch", "GET"),
        ("POST", "/v1/whoami", "GET"),
        ("GET", "/v1/apiKeys/key_1", "DELETE, PATCH"),
        ("HEAD", "/v1/sessions/ses_1", "GET"),
    ],
)
def test_a_known_path_asked_with_another_method_is_refused_naming_those_it_takes(
    method: str, path: str, allow: str
) -> None:
    refused = method_refusal(method, ROUTES.lookup(path))
    assert refused is not None
    assert refused.allow == allow
    bare_path = path.partition("?")[0]
    assert refused.message == f"method: {method} is not allowed on {bare_path}; it takes {allow}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("POST", "/v1/tasks/tsk_1:cancel/"),
        ("PATCH", "/v1/tenants/acme/limits"),
        # No RPC has that path: the transcoder's 404 says so.
        ("GET", "/v1/nothing"),
        ("DELETE", "/v1/tasks/tsk_1/more"),
        # Not the JSON API (gRPC calls, the console).
        ("GET", "/farm.tasks.v1.TaskService/CreateTask"),
        ("DELETE", "/console/tasks"),
    ],
)
def test_a_method_the_path_takes_or_a_path_of_no_rpc_is_let_through(method: str, path: str) -> None:
    assert method_refusal(method, ROUTES.lookup(path)) is None


def test_a_known_custom_verb_is_the_verbs_and_an_unknown_one_part_of_the_id() -> None:
    # As the transcoder matches: GET /v1/tasks/A:cancel is not GetTask of "A:cancel".
    assert "GET" not in ROUTES.lookup("/v1/tasks/tsk_1:cancel").bindings
    cancel = ROUTES.lookup("/v1/tasks/tsk_1:cancel").bindings["POST"]
    assert cancel.request.name == "CancelTaskRequest"
    get = ROUTES.lookup("/v1/tasks/tsk_1:bogus").bindings["GET"]
    assert get.request.name == "GetTaskRequest"


def scanned(path: str, bindings: tuple[HttpBinding, ...] = BINDINGS) -> PathRoutes:
    """The routes of `path` found as the check found them before the table: every pattern."""
    bare_path, _, query = path.partition("?")
    matching = [binding for binding in bindings if binding.path.match(bare_path)]
    first: dict[str, HttpBinding] = {}
    bodies: dict[str, BodyRoute] = {}
    for binding in matching:
        first.setdefault(binding.method, binding)
        route = body_route(binding)
        if route is not None:
            bodies.setdefault(binding.method, route)
    return PathRoutes(bare_path, query, first, bodies)


def sample_path(template: str) -> str:
    """A path `template` matches: each variable a value (one of several segments for `=`)."""
    return re.sub(r"\{[^}=]*\}", "x_1", re.sub(r"\{[^}]*=[^}]*\}", "a/b", template))


def paths_near(template: str) -> list[str]:
    """Paths a transcoder tells apart around `template`'s: verbs, slashes, queries, ids."""
    path = sample_path(template)
    bare, colon, verb = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    return [
        path,
        path + "/",
        path + "?pageSize=5&pageSize=6",
        bare,
        bare + ":bogus",
        bare + ":cancel",
        bare + "/more",
        bare.rsplit("/", 1)[0],
        path.replace("/v1/", "/v2/"),
        path.upper(),
        f"{bare}{colon}{verb}x",
    ]


def same(found: PathRoutes, expected: PathRoutes) -> None:
    assert (found.path, found.query, found.allowed) == (
        expected.path,
        expected.query,
        expected.allowed,
    )
    assert dict(found.bindings) == dict(expected.bindings)
    assert dict(found.bodies) == dict(expected.bodies)


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: f"{b.method} {b.template}")
def test_every_binding_is_found_for_its_path_as_every_pattern_scanned_found_it(
    binding: HttpBinding,
) -> None:
    path = sample_path(binding.template)
    found = ROUTES.lookup(path)
    # The binding's own RPC answers its path, with its body's message where it has one.
    assert found.bindings[binding.method].request is binding.request
    assert found.bodies.get(binding.method) == body_route(binding)
    for near in paths_near(binding.template):
        same(ROUTES.lookup(near), scanned(near))


@pytest.mark.parametrize(
    "path",
    ["", "/", "v1/tasks", "/v1", "/v1/", "//v1/tasks", "/v1//tasks", "/v1/:run", "/?x=1"],
)
def test_odd_paths_are_routed_as_every_pattern_scanned_routes_them(path: str) -> None:
    same(ROUTES.lookup(path), scanned(path))


def _service_with_variables_up_front() -> ServiceDescriptor:
    """A service whose templates put a variable in the first two segments (none of ours do)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="route_table_test/up_front.proto",
        package="route_table_test",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    file.message_type.add(name="Req").field.add(
        name="name", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    service = file.service.add(name="UpFront")
    for rpc, verb, template in (
        ("GetThing", "get", "/v1/{name=things/*}"),
        ("ListThings", "get", "/{version}/things"),
        ("MakeThing", "post", "/v1/things"),
    ):
        method = service.method.add(
            name=rpc, input_type=".route_table_test.Req", output_type=".route_table_test.Req"
        )
        rule = method.options.Extensions[annotations_pb2.http]
        setattr(rule, verb, template)
        rule.body = "*" if verb == "post" else ""
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName("route_table_test.UpFront")
    except KeyError:
        pool.Add(file)
        return pool.FindServiceByName("route_table_test.UpFront")


@pytest.mark.parametrize(
    "path", ["/v1/things/t1", "/v2/things", "/v1/things", "/v1/things/", "/v1/other/t1", "/x/y"]
)
def test_a_variable_in_the_first_segments_is_matched_on_every_path(path: str) -> None:
    service = _service_with_variables_up_front()
    table = RouteTable([service])
    same(table.lookup(path), scanned(path, http_bindings([service])))


def test_the_table_finds_a_template_with_a_variable_up_front() -> None:
    table = RouteTable([_service_with_variables_up_front()])
    assert table.lookup("/v1/things/t1").bindings["GET"].request.name == "Req"
    # Two templates match: both methods are the path's.
    assert table.lookup("/v1/things").allowed == ("GET", "POST")
