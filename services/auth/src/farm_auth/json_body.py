"""Unknown fields, wrong values and non-JSON in an HTTP/JSON body, named before the transcoder.

Envoy's grpc_json_transcoder ignores a JSON field the request message does not have
(it has no option to refuse one), so a misspelt `cacheTtlSecond` would do nothing
without a word; and it names a value it cannot convert by the field's proto path
(`spec.timeout_ms`), which the caller never wrote. Envoy sends the auth service the
body of each /v1/ call with its ext_authz check (envoy/envoy.yaml.j2), and this
module names the first unknown field or wrong value (json_values) of it, at any
depth, by its JSON path, so the check refuses the call with a 400 instead. A body
that is not JSON at all is refused as `body: not valid JSON: …` (json_value): the
transcoder's own words for it (`Unexpected token.`) named neither the body nor,
often, the place.
"""

import difflib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NoReturn

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from farm_auth.json_values import elements, message_problem, scalar_problem
from farm_auth.route_table import PathRoutes
from farm_core.item_refusals import ItemProblem

_JSON_KINDS = {
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}
log = logging.getLogger(__name__)
# Well-known types have their own JSON forms (a Timestamp is a string, a Struct any
# object): the transcoder checks those, nothing is dropped from them.
_WELL_KNOWN_PREFIX = "google.protobuf."


@dataclass(frozen=True)
class BodyRefusal:
    """Why a body is refused: its first unknown field, or a value of the wrong kind."""

    outcome: Literal["unknown_field", "bad_value", "bad_json"]
    message: str


@dataclass(frozen=True)
class RefusedItems:
    """A batch's body that passes, but for items with unknown fields, by index.

    Each item's first unknown field: its path within the item and the problem.
    """

    items: Mapping[int, ItemProblem]


# The batch RPCs whose items are refused one by one (the request message's field of them).
_ITEMS_FIELD = {"farm.tasks.v1.CreateTasksRequest": "requests"}


class BodyFields:
    """Finds a body's first field its RPC's message lacks, or value the transcoder refuses."""

    def __init__(self) -> None:
        self._fields: dict[str, dict[str, FieldDescriptor]] = {}

    def refusal(
        self, method: str, routes: PathRoutes, body: bytes
    ) -> BodyRefusal | RefusedItems | None:
        """The refusal naming what is wrong with the body, or None.

        A body that is not JSON is refused on any RPC's path (the transcoder reads the
        body of every call, GETs included); JSON that is no object, an unknown field or
        a bad value on an RPC's path whose body the transcoder takes. A path that names
        no RPC is left to the transcoder, which refuses it in its own words.
        """
        if not body or method not in routes.bindings:
            return None
        try:
            value = json_value(body)
        except NotJson as error:
            return BodyRefusal("bad_json", f"body: not valid JSON: {error}")
        except (ValueError, RecursionError):
            # Nested deeper than Python parses, or a number longer than it converts:
            # the transcoder's own limits judge those (a 5xx here would read as auth
            # being down).
            return None
        route = routes.bodies.get(method)
        if route is None or (value is None and route.takes_null):
            return None
        if not isinstance(value, dict):
            # The transcoder's own words for this start with an empty field path.
            kind = _JSON_KINDS.get(type(value), "a value")
            message = f"body: must be a JSON object ({route.message.name}), got {kind}"
            return BodyRefusal("bad_value", message)
        try:
            items_field = _ITEMS_FIELD.get(route.message.full_name)
            if items_field is not None:
                return self._check_batch(value, route.message, items_field)
            return self._check(value, route.message, "")
        except Exception:
            # The transcoder judges every body anyway: a fault here must not refuse a
            # call it would take (a 5xx from the check reads as auth being down).
            log.exception(
                "the body check of %s %s failed; left to the transcoder", method, routes.path
            )
            return None

    def _known(self, message: Descriptor) -> dict[str, FieldDescriptor]:
        """The message's fields by JSON name and by proto name, as the transcoder takes both."""
        known = self._fields.get(message.full_name)
        if known is None:
            known = {f.json_name: f for f in message.fields}
            known.update({f.name: f for f in message.fields})
            self._fields[message.full_name] = known
        return known

    def _check_batch(
        self, value: dict[str, object], message: Descriptor, items_field: str
    ) -> BodyRefusal | RefusedItems | None:
        """A batch: its own fields as any body's, each item's unknown fields as its own refusal.

        A wrong value anywhere still refuses the body: the transcoder would refuse it.
        An item is numbered as the scheduler numbers it (nulls skipped, as the
        transcoder skips them).
        """
        field = self._known(message)[items_field]
        whole = {name: item for name, item in value.items() if name != items_field}
        found = self._check(whole, message, "")
        if found is not None:
            return found
        refused: dict[int, ItemProblem] = {}
        for index, (at, item) in enumerate(elements(value.get(items_field), items_field)):
            unknown: list[BodyRefusal] = []
            found = self._check_value(item, field, at, unknown)
            if found is not None:
                return found
            if unknown:
                where, _, problem = unknown[0].message.partition(": ")
                refused[index] = (where.removeprefix(f"{at}."), problem)
        return RefusedItems(refused) if refused else None

    def _check(
        self,
        value: object,
        message: Descriptor,
        at: str,
        unknown: list[BodyRefusal] | None = None,
    ) -> BodyRefusal | None:
        """The first problem of `value`; with `unknown`, unknown fields go there, not returned."""
        if not isinstance(value, dict) or message.full_name.startswith(_WELL_KNOWN_PREFIX):
            return None
        known = self._known(message)
        for name, item in value.items():
            field = known.get(name)
            where = f"{at}.{name}" if at else name
            if field is None:
                refusal = BodyRefusal("unknown_field", _unknown(where, name, message))
                if unknown is None:
                    return refusal
                unknown.append(refusal)
                continue
            if item is None:  # null: the field's default, whatever its kind
                continue
            found = self._check_field(item, field, where, unknown)
            if found is not None:
                return found
        return None

    def _check_field(
        self,
        item: object,
        field: FieldDescriptor,
        where: str,
        unknown: list[BodyRefusal] | None = None,
    ) -> BodyRefusal | None:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            problem = message_problem(item, entry)
            if problem is not None or not isinstance(item, dict):
                return BodyRefusal("bad_value", f"{where}: {problem}")
            value_field = entry.fields_by_name["value"]
            items = [
                (f"{where}[{json.dumps(key)}]", value)
                for key, value in item.items()
                if value is not None
            ]
        elif field.is_repeated:
            items, value_field = list(elements(item, where)), field
        else:
            items, value_field = [(where, item)], field
        for at, value in items:
            found = self._check_value(value, value_field, at, unknown)
            if found is not None:
                return found
        return None

    def _check_value(
        self,
        value: object,
        field: FieldDescriptor,
        at: str,
        unknown: list[BodyRefusal] | None = None,
    ) -> BodyRefusal | None:
        """One value of `field` (a list's item, a map's value): its kind, then its fields."""
        if field.message_type is None:
            problem = scalar_problem(value, field)
            return None if problem is None else BodyRefusal("bad_value", f"{at}: {problem}")
        problem = message_problem(value, field.message_type)
        if problem is not None:
            return BodyRefusal("bad_value", f"{at}: {problem}")
        return self._check(value, field.message_type, at, unknown)


def too_many(refused: RefusedItems) -> str:
    """The whole batch's refusal when its items' unknown fields are too many to name one by one."""
    first = min(refused.items)
    where, problem = refused.items[first]
    others = len(refused.items) - 1
    return (
        f"requests[{first}].{where}: {problem} (and {others} more items have unknown fields "
        "of their own, too many to answer item by item; nothing was queued)"
    )


class NotJson(ValueError):
    """A body that is not one JSON value in UTF-8; says where it stops being JSON."""


# A \\u escape of a UTF-16 surrogate: only then can a string hold half of a pair.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def json_value(body: bytes) -> object:
    """The one JSON value `body` holds, read as strictly as RFC 8259 asks; raises NotJson.

    Strict where the transcoder is too (UTF-8 only, no NaN, no BOM, nothing after the
    value, no lone surrogate) and where it is lenient only by accident (single quotes,
    a trailing comma, an unknown escape: a body it reads so is one whose fields this
    check could not see). Raw control characters in a string pass, as it takes them.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotJson(
            f"not UTF-8 (byte 0x{body[error.start]:02x} at offset {error.start})"
        ) from error
    if not text.strip():
        raise NotJson("empty (only white space); send a JSON object, or no body")
    if text.startswith("\ufeff"):
        raise NotJson("starts with a byte order mark (BOM); send UTF-8 without one")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as error:
        reason = error.msg[0].lower() + error.msg[1:]
        raise NotJson(f"{reason} at line {error.lineno} column {error.colno}") from error
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            lone = error.object[error.start : error.end]
            raise NotJson(f"a string holds a lone UTF-16 surrogate ({lone!a})") from error
    return value


def _not_json(constant: str) -> NoReturn:
    raise NotJson(f"{constant} is not a JSON value")


# What json.loads(text, parse_constant=_not_json, strict=False) would build anew for
# every body.
_DECODER = json.JSONDecoder(parse_constant=_not_json, strict=False)


def _unknown(where: str, name: str, message: Descriptor) -> str:
    """`where: unknown field`, with the nearest known name when one is close."""
    close = difflib.get_close_matches(name, [f.json_name for f in message.fields], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{where}: unknown field, {message.name} has no field {name!r}{hint}"
