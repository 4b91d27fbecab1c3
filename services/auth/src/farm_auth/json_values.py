"""JSON values of the wrong kind for their field, named by their JSON path before the transcoder.

Envoy's transcoder refuses a value it cannot convert (`"timeoutMs": "abc"`) but names
the field by its proto path (`spec.timeout_ms: invalid value "abc" for type
TYPE_INT32`, or only `spec: Proto field is not repeating, cannot start list.`). Each
rule here refuses only values the transcoder refuses too (tried against it, kind by
kind: docs/api.md "Errors"), so what passes the transcoder still passes; what it is
lenient about (`"fullPage": "yes"`, a number as a string, one value for a list) is
left to it.

Not google.protobuf.json_format.ParseDict: it reads JSON as protobuf's Python
library does, not as the transcoder. Of the values the transcoder takes
(tests/transcoder_values.py) it refuses about half (`"yes"` for a boolean,
one value or nested lists for a repeated field, a null in a list, `{}` for a
Timestamp, C's hexadecimal doubles); it takes some the transcoder refuses (`"1e4"`
for an int32, `true` or `1.5` for an enum); and its messages name no map key.
So the rules walk the descriptors themselves, held to the real transcoder by
tests/integration/cli/test_envoy_json_values.py.
"""

import json
import math
import re
from collections.abc import Iterator

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
# The strings the transcoder reads as a boolean, in any case (protobuf's safe_strtob).
_BOOLEANS = frozenset({"true", "t", "yes", "y", "1", "false", "f", "no", "n", "0"})
# The transcoder's names for a double that is no plain number.
_SPECIAL_DOUBLES = frozenset({"NaN", "Infinity", "-Infinity"})
# A double as C's strtod reads it (decimal or hexadecimal) in the C locale, with C's
# whitespace around it; its "inf" and "nan" are no finite number, which the transcoder wants.
_C_SPACE = r"[ \t\n\v\f\r]*"
_DECIMAL = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_HEX = r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
_C_DOUBLE = re.compile(f"{_C_SPACE}(?P<number>[+-]?(?:(?P<hex>{_HEX})|{_DECIMAL})){_C_SPACE}")
_INT32 = (-(2**31), 2**31 - 1)
_INTEGER_RANGES: dict[int, tuple[str, int, int]] = {
    FieldDescriptor.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: ("uint64", 0, 2**64 - 1),
}
# A float's narrower range is left to the transcoder: no field of the API is one to try it on.
_DOUBLES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
TIMESTAMP = "google.protobuf.Timestamp"
_SHOWN_CHARS = 40


def shown(value: object) -> str:
    """How a refusal quotes a JSON value: containers by kind, others as JSON, cut short."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = json.dumps(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def elements(value: object, where: str) -> Iterator[tuple[str, object]]:
    """The items of a repeated field's JSON, with their paths.

    As the transcoder: nested arrays are flattened, a lone value is a list of one, and
    a null item is no item.
    """
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from elements(item, f"{where}[{index}]")
    elif value is not None:
        yield where, value


def message_problem(value: object, message: Descriptor) -> str | None:
    """Why `value` cannot be the JSON of `message` (an object, or a Timestamp's string)."""
    if message.full_name == TIMESTAMP:
        if isinstance(value, str | dict):  # the string's form is the transcoder's to judge
            return None
        return (
            'must be a time as an RFC 3339 string such as "2030-01-01T00:00:00Z", '
            f"got {shown(value)}"
        )
    if message.full_name.startswith("google.protobuf."):
        return None  # other well-known types have JSON forms of their own
    if isinstance(value, dict):
        return None
    if message.GetOptions().map_entry:
        return f"must be an object of names and their values, got {shown(value)}"
    return f"must be an object ({message.name}), got {shown(value)}"


def scalar_problem(value: object, field: FieldDescriptor) -> str | None:
    """Why `value` (not null) cannot be one value of the scalar or enum `field`, or None."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_BYTES:
        return None
    if isinstance(value, dict | list):
        return f"must be {_one_value(field)}, got {shown(value)}"
    if kind == FieldDescriptor.TYPE_STRING:
        return None if isinstance(value, str) else f"must be a string, got {shown(value)}"
    if kind == FieldDescriptor.TYPE_BOOL:
        # The transcoder reads strings such as "true", "no" or "1" as booleans.
        taken = isinstance(value, bool) or (isinstance(value, str) and value.lower() in _BOOLEANS)
        return None if taken else f"must be true or false, got {shown(value)}"
    if kind in _INTEGER_RANGES:
        return _integer_problem(value, *_INTEGER_RANGES[kind])
    if kind in _DOUBLES:
        return None if _is_number(value) else f"must be a number, got {shown(value)}"
    if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        return _enum_problem(value, field.enum_type)
    return None


def _one_value(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_STRING:
        return "a string"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true or false"
    if field.type == FieldDescriptor.TYPE_ENUM:
        return "one name"
    return "a number"


def _integer_problem(value: object, kind: str, lowest: int, highest: int) -> str | None:
    whole: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        whole = int(value)
    elif isinstance(value, str):
        whole = _whole_string(value)
    if whole is None:
        return f"must be a whole number ({kind}), got {shown(value)}"
    if not lowest <= whole <= highest:
        return f"must be a whole number from {lowest} to {highest} ({kind}), got {shown(value)}"
    return None


def _whole_string(value: str) -> int | None:
    """The whole number a string is as the transcoder reads it ("+5000", "05000"), or None."""
    if not _WHOLE_NUMBER.fullmatch(value):
        return None
    # However many zeros lead; past 20 digits no type holds it (and int() takes at most 4300).
    digits = value.lstrip("+-").lstrip("0")[:21] or "0"
    return -int(digits) if value.startswith("-") else int(digits)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    return value in _SPECIAL_DOUBLES or _is_c_double(value)


def _is_c_double(value: str) -> bool:
    """Whether the transcoder reads `value` as a finite double.

    As its strtod: C's whitespace around the number, but not a space first or last (the
    transcoder refuses those before strtod), and nothing read past a NUL character.
    """
    if value.startswith(" ") or value.endswith(" "):
        return False
    match = _C_DOUBLE.fullmatch(value.split("\0", 1)[0])
    if match is None:
        return False
    try:
        if match["hex"]:
            return math.isfinite(float.fromhex(match["number"]))
        return math.isfinite(float(match["number"]))
    except OverflowError:  # fromhex past the largest double, where strtod gives infinity
        return False


def _enum_problem(value: object, enum: EnumDescriptor) -> str | None:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is not None and _INT32[0] <= number <= _INT32[1]:
        return None  # any int32: the service checks that the number is one of the enum's
    if isinstance(value, str) and value in enum.values_by_name:
        return None
    # A number as a string only if the enum has it, as the transcoder reads it. The range
    # first: upb's values_by_number wraps its key to 32 bits (4294967297 finds 1).
    whole = _whole_string(value) if isinstance(value, str) else None
    if whole is not None and _INT32[0] <= whole <= _INT32[1] and whole in enum.values_by_number:
        return None
    names = [name for name in enum.values_by_name if not name.endswith("_UNSPECIFIED")]
    return f"must be one of {', '.join(names)}, got {shown(value)}{_meant(value, names)}"


def _meant(value: object, names: list[str]) -> str:
    """A hint for an enum name given short (HIGH) or in the wrong case (priority_high)."""
    if not isinstance(value, str) or not value:
        return ""
    wanted = value.upper()
    close = [name for name in names if name == wanted or name.endswith(f"_{wanted}")]
    return f"; did you mean {close[0]!r}?" if len(close) == 1 else ""
