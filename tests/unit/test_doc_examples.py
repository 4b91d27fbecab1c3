"""The docs' shell examples hold to the API: paths and verbs of RPCs, bodies that fit them.

A curl (or grpcurl) line in README.md or docs/*.md is copied as it stands, so each
must name a route the HTTP rules of the protos (`google.api.http`) have, with that
route's verb, send a body whose every field and enum value its RPC's message has,
and use only shell variables its page sets before. The examples run against a live
farm by hand; these checks hold them to the protos as the protos change.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor

from tests.unit.markdown import shell_blocks, shell_commands
from tests.unit.rpcs import ALL_METHODS

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Routes Envoy serves that are no RPC: a session's CDP socket and live view.
# A session's browser, served by its agent (no RPC): sockets, live page, DevTools discovery.
SOCKET_ROUTE = re.compile(r"/v1/sessions/[^/]+/(cdp|live(/frames)?|json/version/?)")
# Variables the reader's shell sets by itself.
ENVIRONMENT = {"PATH", "HOME"}


class Route(NamedTuple):
    """One HTTP rule of an RPC: its verb, the path it matches, and where its body goes."""

    verb: str
    path: re.Pattern[str]
    method: MethodDescriptor
    body: str


def routes() -> list[Route]:
    """Every HTTP rule of every RPC, additional bindings included."""
    found = []
    for method in ALL_METHODS:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        for binding in (rule, *rule.additional_bindings):
            verb = binding.WhichOneof("pattern")
            assert verb is not None
            template = re.escape(getattr(binding, verb))
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/?]+", template)
            found.append(Route(verb.upper(), re.compile(pattern), method, binding.body))
    return found


ROUTES = routes()


def matching(verb: str, path: str) -> list[Route]:
    """The routes that take `verb path` (a path as the docs write it, `…` and `{id}` too)."""
    return [route for route in ROUTES if route.verb == verb and route.path.fullmatch(path)]


class Call(NamedTuple):
    """A curl or grpcurl command of a doc: where, and what it asks."""

    doc: str
    words: list[str]


def calls() -> Iterator[Call]:
    """Every curl and grpcurl command in the docs' shell blocks."""
    for path in DOCS:
        for block in shell_blocks(path.read_text()):
            for words in shell_commands(block):
                if words[0].endswith("curl"):
                    yield Call(path.name, words)


def curl_route(words: list[str]) -> tuple[str, str] | None:
    """The verb and path of a curl command of the API, or None for another URL."""
    url = next((word for word in words if "/v1/" in word), None)
    if url is None:
        return None
    path = "/v1/" + url.split("/v1/", 1)[1].split("?", 1)[0]
    if "-X" in words:
        return words[words.index("-X") + 1], path
    return ("POST" if "-d" in words else "GET"), path


def request_message(call: Call) -> tuple[Descriptor, str] | None:
    """The message a call's `-d` body must fit, and where it points, or None without a body."""
    words = call.words
    if "-d" not in words:
        return None
    if words[0].endswith("grpcurl"):
        service, name = next(w for w in words if w.startswith("farm.")).rsplit("/", 1)
        method = next(m for m in ALL_METHODS if m.full_name == f"{service}.{name}")
        return method.input_type, f"{service}/{name}"
    route = curl_route(words)
    assert route is not None, f"{call.doc}: a body sent to no API path: {words}"
    (found, *_) = matching(*route)
    if found.body in ("*", ""):
        return found.method.input_type, found.method.full_name
    body = found.method.input_type.fields_by_name[found.body].message_type
    assert body is not None, f"{found.method.full_name}'s body field {found.body} is no message"
    return body, found.method.full_name


CURL_CALLS = [call for call in calls() if not call.words[0].endswith("grpcurl")]


@pytest.mark.parametrize("call", CURL_CALLS, ids=lambda call: f"{call.doc}:{call.words[1:4]}")
def test_each_curl_in_the_docs_names_an_rpc_route_with_its_verb(call: Call) -> None:
    route = curl_route(call.words)
    if route is None or SOCKET_ROUTE.fullmatch(route[1]):
        return
    assert matching(*route), f"{call.doc}: `{' '.join(route)}` is the route of no RPC"


PROSE_ROUTE = re.compile(r"`(GET|POST|PATCH|DELETE|PUT) (/v1/[^\s`?]*)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_each_verb_and_path_the_docs_name_is_an_rpc_route(doc: Path) -> None:
    unknown = [
        f"{verb} {path}"
        for verb, path in PROSE_ROUTE.findall(doc.read_text())
        if not SOCKET_ROUTE.fullmatch(path) and not matching(verb, path)
    ]
    assert not unknown, f"{doc.name} names routes no RPC has: {unknown}"


BODY_CALLS = [call for call in calls() if "-d" in call.words]


@pytest.mark.parametrize("call", BODY_CALLS, ids=lambda call: f"{call.doc}:{call.words[1:4]}")
def test_each_request_body_in_the_docs_fits_its_rpc(call: Call) -> None:
    found = request_message(call)
    assert found is not None
    message, rpc = found
    # A body the shell fills in (`"$url"`, `${size%x*}`) is checked with 0 for each value.
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "0", call.words[call.words.index("-d") + 1])
    body: Any = json.loads(text)
    try:
        json_format.ParseDict(body, message_factory.GetMessageClass(message)())
    except json_format.ParseError as wrong:
        pytest.fail(f"{call.doc}: the body sent to {rpc} does not fit {message.name}: {wrong}")


def undefined_variables(text: str) -> list[str]:
    """Shell variables a page's blocks use before any of its blocks sets them."""
    defined = set(ENVIRONMENT)
    missing = []
    for block in shell_blocks(text):
        code = "\n".join(line.split(" #")[0] for line in block.splitlines())
        code = re.sub(r"'[^']*'", "''", re.sub(r"^\s*#.*$", "", code, flags=re.M))
        for match in re.finditer(r"\b(\w+)=|\bfor (\w+) in\b|\$\{?([A-Za-z_]\w*)", code):
            set_here = match.group(1) or match.group(2)
            if set_here:
                defined.add(set_here)
            elif match.group(3) not in defined:
                missing.append(match.group(3))
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_each_shell_example_sets_the_variables_it_uses(doc: Path) -> None:
    missing = sorted(set(undefined_variables(doc.read_text())))
    assert not missing, f"{doc.name}'s shell examples use {missing} before setting them"
